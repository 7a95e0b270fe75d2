"""Regenerate the import test corpus: `python tests/bad_files/make_corpus.py`.

Each file is tiny. Good files hold the same three text rows in every format and encoding; each bad
file has exactly one kind of problem, at a known row. The outputs are committed; this script is
how the binary ones (UTF-16, cp1252, NUL, Parquet, PNG, the symlink) were made.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

HERE = Path(__file__).resolve().parent

# (id, text, source, label): label "" means no prelabel.
ROWS = [
    ("g1", "Hello, world", "web", "pos"),
    ("g2", "Café über naïve — 日本語 🎉", "mail", "neg"),
    ("g3", 'She said "hi"', "chat", ""),
]
HEADER = ["id", "text", "source", "label"]


def csv_text(rows, header=HEADER, *, newline="\n") -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator=newline)
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def write(name: str, data: bytes | str) -> None:
    path = HERE / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)


def png(path: Path, shade: int) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("L", (2, 2), shade).save(path, optimize=True)


def main() -> None:
    text = csv_text(ROWS)
    # -- good files: the same rows in every format and encoding --
    write("good.csv", text)
    write("good_crlf.csv", csv_text(ROWS, newline="\r\n"))
    write("good_utf8_bom.csv", b"\xef\xbb\xbf" + text.encode("utf-8"))
    write("good_utf16le.csv", b"\xff\xfe" + text.encode("utf-16-le"))
    write("good_utf16be.csv", b"\xfe\xff" + text.encode("utf-16-be"))
    write("good.tsv", "".join("\t".join(row) + "\n" for row in [HEADER, *ROWS]))
    write("good.jsonl", "".join(json.dumps(dict(zip(HEADER, row)), ensure_ascii=False) + "\n" for row in ROWS))
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({name: [row[i] for row in ROWS] for i, name in enumerate(HEADER)})
    pq.write_table(table, HERE / "good.parquet")
    write(
        "good_multiline.csv",
        csv_text([("m1", "line one\nline two", "web", "pos"), ("m2", 'a, b and "c"', "web", "neg")]),
    )
    write("good_no_id.csv", csv_text([(t, s, lab) for _, t, s, lab in ROWS], ["text", "source", "label"]))
    write(
        "good_tabular.csv",
        csv_text(
            [
                ("t1", "39", "red", "02134", "1.5", ">50K"),
                ("t2", "?", "blue", "10001", "-2", "<=50K"),
                ("t3", "51", "", "02139", "NaN", ""),
                ("t4", "28", "green", "94110", "3e2", ">50K"),
            ],
            ["id", "age", "color", "zip", "score", "income"],
        ),
    )

    # -- bad files: one problem each --
    write("ragged.csv", text.replace("g2,", "g2,extra,", 1))  # row 2: 5 fields
    write("unknown_label.csv", csv_text([ROWS[0], ("u2", "typo label", "web", "pos.")]))  # row 2
    write("empty_text.csv", csv_text([ROWS[0], ROWS[1], ("e3", "   ", "web", "pos")]))  # row 3
    write("duplicate_id.csv", csv_text([ROWS[0], ("d2", "second", "web", ""), ("g1", "again", "web", "")]))
    write("duplicate_existing.csv", csv_text([("x1", "new", "web", ""), ("g2", "clash", "web", "")]))  # vs good.csv
    write(
        "cp1252.csv", csv_text([ROWS[0], ("c2", "plain", "web", ""), ("c3", "café crème", "web", "")]).encode("cp1252")
    )  # row 3 (line 4) has byte 0xe9
    write("nul_byte.csv", text.replace("Hello, world", "Hel\x00lo, world").encode("utf-8"))  # row 1
    write("utf16_no_bom.csv", text.encode("utf-16-le"))
    write("utf32.csv", text.encode("utf-32"))
    write("missing_column.csv", csv_text([("g1", "no text column", "web", "pos")], ["id", "body", "source", "label"]))
    write("empty.csv", "")
    write("bad_json.jsonl", json.dumps(dict(zip(HEADER, ROWS[0]))) + '\n{"id": "j2", "text": \n')  # row 2

    # -- images: a root with files, and one CSV per image problem --
    for name, shade in [("a.png", 0), ("b.png", 128), ("sub/c.png", 255)]:
        png(HERE / "images" / name, shade)
    for name, shade in [("pos/p1.png", 10), ("pos/p2.png", 20), ("neg/n1.png", 30), ("loose.png", 40)]:
        png(HERE / "image_folder" / name, shade)
    png(HERE / "image_folder_bad_label" / "maybe" / "m1.png", 50)
    link = HERE / "images" / "link_out.png"
    if link.is_symlink() or link.exists():
        link.unlink()
    os.symlink("../good.csv", link)  # inside the root by name, outside it in fact
    image_header = ["id", "image", "label"]
    write(
        "good_images.csv",
        csv_text([("i1", "a.png", "pos"), ("i2", "b.png", "neg"), ("i3", "sub/c.png", "")], image_header),
    )
    write("image_missing.csv", csv_text([("i1", "a.png", ""), ("i2", "nope.png", "")], image_header))  # row 2
    write("image_absolute.csv", csv_text([("i1", "/etc/passwd", "")], image_header))  # row 1
    write("image_escapes.csv", csv_text([("i1", "a.png", ""), ("i2", "../good.csv", "")], image_header))  # row 2
    write("image_symlink.csv", csv_text([("i1", "link_out.png", "")], image_header))  # row 1


if __name__ == "__main__":
    main()
