"""Hostile corpus: each hostile or broken file is refused with one line, within bounded memory.

    python -m workbench.bench.hostile [--line-gb 2] [--keep DIR]

Every case runs `workbench import` (or, for the pages' path, a rendition) in its own child
process on a fresh SQLite database under a temporary folder. The child reports its own peak
resident memory (VmHWM of /proc/self/status, as it exits), so each figure is that case's alone
(ru_maxrss from wait4 would carry over the parent's peak across fork and exec). The files are
made in the temporary folder, the 2 GB line included, and removed afterwards.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

LIMIT_MB = 500


@dataclass
class Outcome:
    case: str
    exit_code: int
    stderr_lines: list[str]
    peak_mb: float
    seconds: float
    nothing_written: bool

    @property
    def ok(self) -> bool:
        return (
            self.exit_code == 1
            and len(self.stderr_lines) == 1
            and self.peak_mb < LIMIT_MB
            and "Traceback" not in " ".join(self.stderr_lines)
            and self.nothing_written
        )


def _peak_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def _child(argv: list[str]) -> int:
    """In the child: run `workbench ARGS` (or a rendition), then write this process's peak RSS."""
    out, what, *args = argv
    try:
        if what == "cli":
            from workbench.cli import main as cli

            return cli(args)
        from workbench.importing.images import ImageRefused, rendition

        try:
            rendition(Path(args[0]), Path(args[1]))
        except ImageRefused as exc:
            print(f"workbench: error: the image cannot be shown: {exc}", file=sys.stderr)
            return 1
        return 0
    finally:
        Path(out).write_text(str(_peak_kib()))


def _run(args: list[str], env: dict[str, str]) -> tuple[int, str, float, float]:
    """Run a child; (exit code, stderr, peak RSS in MB, seconds)."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        peak_file = Path(scratch) / "peak"
        err_file = Path(scratch) / "stderr"
        with open(err_file, "wb") as err:
            code = subprocess.run(
                [sys.executable, "-m", "workbench.bench.hostile", "--child", str(peak_file), *args],
                stdout=subprocess.DEVNULL,
                stderr=err,
                env=env,
            ).returncode
        stderr = err_file.read_text("utf-8", "replace")
        peak = int(peak_file.read_text()) / 1024 if peak_file.exists() else float("nan")
    return code, stderr, peak, time.perf_counter() - started


def _png_bytes(side: int) -> bytes:
    import numpy as np
    from PIL import Image

    buffer = io.BytesIO()
    pixels = np.random.default_rng(0).integers(0, 255, (side, side, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def make_corpus(root: Path, line_bytes: int) -> dict[str, tuple[str, Path]]:
    """case -> (project kind, file or folder to import)."""
    from PIL import Image

    cases: dict[str, tuple[str, Path]] = {}

    def folder(name: str) -> Path:
        path = root / name
        path.mkdir()
        return path

    bomb = folder("bomb")
    Image.new("1", (30000, 30000)).save(bomb / "bomb.png")  # 900 MP in ~110 KB
    cases["decompression bomb (30000x30000 PNG)"] = ("image", bomb)
    fake = folder("fake")
    (fake / "fake.png").write_text("this is a text file named like a PNG\n" * 20)
    cases["non-image .png"] = ("image", fake)
    truncated = folder("truncated")
    data = _png_bytes(512)
    (truncated / "truncated.png").write_bytes(data[: len(data) // 2])
    cases["truncated PNG"] = ("image", truncated)
    svg = folder("svg")
    (svg / "vector.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg' width='10' height='10'/>")
    (svg / "images.csv").write_text("id,image\n1,vector.svg\n")
    cases["SVG"] = ("image", svg / "images.csv")
    empty_png = folder("empty_png")
    (empty_png / "empty.png").write_bytes(b"")
    cases["0-byte .png"] = ("image", empty_png)
    empty_csv = root / "empty.csv"
    empty_csv.write_bytes(b"")
    cases["0-byte .csv"] = ("text", empty_csv)
    deep = root / "deep.jsonl"
    deep.write_text(
        json.dumps({"id": 1, "text": "fine"}) + "\n" + '{"id": 2, "text": ' + "[" * 100_000 + "]" * 100_000 + "}\n"
    )
    cases["JSONL nested 100,000 deep"] = ("text", deep)
    line = root / "one-line.csv"
    with open(line, "wb") as f:
        f.write(b"id,text\n1,")
        chunk = b"x" * (1 << 24)
        left = line_bytes
        while left > 0:
            f.write(chunk[: min(left, len(chunk))])
            left -= len(chunk)
        f.write(b"\n")
    cases[f"{line_bytes / 1e9:.1f} GB single-line CSV"] = ("text", line)
    return cases


def _items(url: str) -> int:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.connect() as conn:
        n = conn.execute(text("SELECT count(*) FROM item")).scalar_one()
    engine.dispose()
    return n


def run(line_bytes: int, keep: Path | None = None) -> list[Outcome]:
    root = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="wb-hostile-"))
    root.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "WORKBENCH_HOME": str(root / "home")}
    env.pop("WORKBENCH_DATABASE_URL", None)
    url = f"sqlite:///{root / 'hostile.db'}"
    base = ["--database-url", url]
    try:
        cases = make_corpus(root, line_bytes)
        for kind in ("text", "image"):
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "workbench.cli",
                    *base,
                    "project",
                    "create",
                    kind,
                    "--kind",
                    kind,
                    "--labels",
                    "a,b",
                ],
                check=True,
                env=env,
                stdout=subprocess.DEVNULL,
            )
        outcomes = []
        for case, (kind, path) in cases.items():
            target = ["--folder", str(path)] if path.is_dir() else [str(path)]
            code, stderr, peak, seconds = _run(["cli", *base, "import", kind, *target, "--no-progress"], env)
            lines = [line for line in stderr.splitlines() if line.strip()]
            outcomes.append(Outcome(case, code, lines, peak, seconds, _items(url) == 0))
        # The pages' path: a rendition of the bomb (as the label page would ask for it).
        code, stderr, peak, seconds = _run(
            ["rendition", str(root / "bomb" / "bomb.png"), str(root / "home" / "renditions")], env
        )
        outcomes.append(
            Outcome(
                "decompression bomb, rendition for a page",
                code,
                [line for line in stderr.splitlines() if line.strip()],
                peak,
                seconds,
                True,
            )
        )
        return outcomes
    finally:
        if keep is None:
            shutil.rmtree(root, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        return _child(argv[1:])
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--line-gb", type=float, default=2.0, help="size of the single-line CSV (default 2 GB)")
    parser.add_argument("--keep", type=Path, help="make the corpus here and keep it")
    parser.add_argument("--json", type=Path, help="also write the outcomes as JSON")
    args = parser.parse_args(argv)
    outcomes = run(int(args.line_gb * 1e9), args.keep)
    print(f"{'case':44} {'exit':>4} {'peak RSS':>9} {'time':>7}  one line on stderr")
    for o in outcomes:
        message = o.stderr_lines[0] if len(o.stderr_lines) == 1 else f"{len(o.stderr_lines)} lines: {o.stderr_lines}"
        print(
            f"{o.case:44} {o.exit_code:>4} {o.peak_mb:>6.0f} MB {o.seconds:>6.1f}s  "
            f"{'ok ' if o.ok else 'BAD'} {message}"
        )
    if args.json:
        args.json.write_text(json.dumps([{**o.__dict__, "ok": o.ok} for o in outcomes], indent=2))
    bad = [o.case for o in outcomes if not o.ok]
    print(
        f"{len(outcomes) - len(bad)}/{len(outcomes)} refused with one line, exit 1, under {LIMIT_MB} MB, "
        "nothing written" + (f"; NOT: {', '.join(bad)}" if bad else "")
    )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
