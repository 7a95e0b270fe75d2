"""Every image is opened and decoded at import: broken and hostile files are refused row by row;
folder import takes odd file names as they are and reports what it skipped."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from workbench.db.engine import make_engine
from workbench.domain import Actor
from workbench.importing.images import ImageRefused, inspect_image, rendition
from workbench.services import Workbench

OPERATOR = Actor.operator()


@pytest.fixture
def sqlite_wb(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'w.db'}")
    yield Workbench(engine)
    engine.dispose()


def _png(size=(32, 24), color=(200, 10, 10)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


def _noise_png(side: int = 256) -> bytes:
    import numpy as np

    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (side, side, 3), dtype=np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture
def hostile(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    (folder / "good.png").write_bytes(_png())
    (folder / "back\\slash.png").write_bytes(_png())
    (folder / "fake.png").write_text("this is a text file, not a PNG")
    (folder / "empty.png").write_bytes(b"")
    noise = _noise_png()
    (folder / "truncated.png").write_bytes(noise[: len(noise) // 2])
    Image.new("1", (30000, 30000)).save(folder / "bomb.png")  # ~110 KB on disk, 900 MP
    (folder / "disguised.jpg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    (folder / "vector.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    (folder / ".DS_Store").write_bytes(b"\x00\x01")
    (folder / ".thumbs").mkdir()
    (folder / ".thumbs" / "x.png").write_bytes(_png())
    return folder


def test_inspect_image_reasons(hostile):
    assert inspect_image(hostile / "good.png").format == "PNG"
    reasons = {}
    for name in ("fake.png", "empty.png", "truncated.png", "bomb.png", "disguised.jpg"):
        with pytest.raises(ImageRefused) as info:
            inspect_image(hostile / name)
        reasons[name] = str(info.value)
        assert str(hostile) not in reasons[name]  # no server path in a reason
    assert "not an image" in reasons["fake.png"]
    assert "empty" in reasons["empty.png"]
    assert "truncated" in reasons["truncated.png"]
    assert "900,000,000 pixels" in reasons["bomb.png"]
    assert "SVG" in reasons["disguised.jpg"]


def test_folder_import_refuses_bad_images_row_by_row(sqlite_wb, hostile):
    sqlite_wb.projects.create("im", "image", ["a", "b"], actor=OPERATOR)
    report = sqlite_wb.imports.run_folder("im", hostile, actor=OPERATOR)
    assert not report.ok and report.imported == 0
    bad = {error.message.split("'")[1]: error.message for error in report.errors}
    assert set(bad) == {"fake.png", "empty.png", "truncated.png", "bomb.png", "disguised.jpg"}
    assert all(error.kind == "bad image" for error in report.errors)
    warnings = "\n".join(report.warnings)
    assert "'vector.svg'" in warnings and "SVG" in warnings
    assert "'.DS_Store'" in warnings and "'.thumbs/'" in warnings


def test_backslash_name_imports(sqlite_wb, tmp_path):
    folder = tmp_path / "ok"
    folder.mkdir()
    (folder / "back\\slash.png").write_bytes(_png())
    (folder / "plain.png").write_bytes(_png())
    sqlite_wb.projects.create("im", "image", ["a", "b"], actor=OPERATOR)
    report = sqlite_wb.imports.run_folder("im", folder, actor=OPERATOR, eval_fraction=0.0)
    assert report.ok, report.lines()
    assert report.imported == 2
    assert {s["external_id"] for s in report.sample} == {"back\\slash.png", "plain.png"}


def test_csv_image_column_is_verified(sqlite_wb, tmp_path):
    (tmp_path / "good.png").write_bytes(_png())
    (tmp_path / "fake.png").write_text("nope")
    path = tmp_path / "images.csv"
    path.write_text("id,image\n1,good.png\n2,fake.png\n")
    sqlite_wb.projects.create("im", "image", ["a", "b"], actor=OPERATOR)
    report = sqlite_wb.imports.run("im", path, actor=OPERATOR)
    assert not report.ok
    assert [(e.row, e.kind) for e in report.errors] == [(2, "bad image")]


def test_rendition_is_bounded_and_cached(tmp_path):
    big = tmp_path / "big.png"
    Image.new("RGB", (4000, 1000), (1, 2, 3)).save(big)
    small = tmp_path / "digit.png"
    Image.new("L", (8, 8), 128).save(small)
    cache = tmp_path / "cache"
    out = rendition(big, cache)
    with Image.open(out) as image:
        assert max(image.size) == 1600 and image.size == (1600, 400)
    assert rendition(big, cache) == out  # the cached file, by content hash
    with Image.open(rendition(small, cache)) as image:
        assert image.size == (256, 256)
    with pytest.raises(ImageRefused):
        bomb = tmp_path / "bomb.png"
        Image.new("1", (20000, 20000)).save(bomb)
        rendition(bomb, cache)
