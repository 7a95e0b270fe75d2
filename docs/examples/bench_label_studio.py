"""Label Studio round trip at scale: N synthetic tasks with two annotations each are imported, then
exported (label-studio, prodigy, csv) and the export imported again; a CSV import of the same items
(no annotations) in the same run is the reference.

    python docs/examples/bench_label_studio.py N DATABASE_URL OUT_DIR
"""

import json
import sys
import time
from pathlib import Path

from workbench.domain import Actor
from workbench.services import Workbench

n = int(sys.argv[1])
url = sys.argv[2]
out = Path(sys.argv[3])
op = Actor.operator()
wb = Workbench.open(url)
for name in ("ada", "ben", "cy"):
    wb.users.add(name, "annotator", "a-long-password", actor=op)
labels = ["pos", "neg", "meh"]


def ch(label: str) -> list[dict]:
    return [{"from_name": "label", "to_name": "text", "type": "choices", "value": {"choices": [label]}}]


tasks = []
for i in range(n):
    a, b = ("ada", "ben") if i % 2 else ("ben", "cy")
    la = labels[i % 3]
    lb = la if i % 5 else labels[(i + 1) % 3]
    tasks.append(
        {
            "data": {"text": f"text {i}", "src": "x"},
            "meta": {"external_id": f"t{i}"},
            "annotations": [
                {"completed_by": {"email": f"{a}@workbench.invalid"}, "result": ch(la), "lead_time": 1.5},
                {"completed_by": {"email": f"{b}@workbench.invalid"}, "result": ch(lb), "lead_time": 2.0},
            ],
        }
    )
src = out / "in.json"
src.write_text(json.dumps(tasks))
wb.projects.create("a", "text", labels, settings={"health_at_import": False}, actor=op)
t = time.perf_counter()
r = wb.imports.run("a", src, actor=op, seed=1)
t_imp = time.perf_counter() - t
assert r.ok, r.lines()[:5]
t = time.perf_counter()
e = wb.exports.items("a", "label-studio", out / "out.json", actor=op)
t_exp = time.perf_counter() - t
t = time.perf_counter()
p = wb.exports.annotations("a", "prodigy", out / "p.jsonl", actor=op)
t_pro = time.perf_counter() - t
t = time.perf_counter()
c = wb.exports.items("a", "csv", out / "items.csv", actor=op)
t_csv = time.perf_counter() - t
print(
    f"{n} tasks, {r.annotations} annotations: LS import {t_imp:.2f} s, LS export {t_exp:.2f} s, "
    f"prodigy export {t_pro:.2f} s, csv items export {t_csv:.2f} s (same run)"
)
wb.projects.create("b", "text", labels, settings={"health_at_import": False}, actor=op)
t = time.perf_counter()
r2 = wb.imports.run("b", out / "items.csv", id_col="external_id", context_cols=["src"], actor=op, seed=1)
t_csvimp = time.perf_counter() - t
assert r2.ok, r2.lines()[:3]
wb.projects.create("c", "text", labels, settings={"health_at_import": False}, actor=op)
t = time.perf_counter()
r3 = wb.imports.run("c", out / "out.json", actor=op, seed=1)
t_rt = time.perf_counter() - t
assert r3.ok and r3.annotations == r.annotations
print(
    f"reference: csv import of the same {n} items without annotations {t_csvimp:.2f} s; "
    f"re-import of the LS export {t_rt:.2f} s; LS import / csv import = {t_imp / t_csvimp:.1f}x"
)
