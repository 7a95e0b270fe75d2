"""The Workbench's Python API end to end (docs/api.md): create a project, import items, label them
as two annotators through the queue, run a retrain round, read its metrics, and export.

    python docs/examples/api_example.py [DATABASE_URL] [OUT_DIR]

Without a URL it uses $WORKBENCH_DATABASE_URL, else the SQLite database under $WORKBENCH_HOME
(~/.workbench). It creates a project named "api-example" (an existing one is an error) and writes
its exports to OUT_DIR (default: a temporary folder).
"""

from __future__ import annotations

import csv
import sys
import tempfile
from pathlib import Path

from workbench.domain import Actor, JobState
from workbench.errors import WorkbenchError
from workbench.services import Workbench
from workbench.worker import run_worker

PROJECT = "api-example"
WORDS = {"spam": ["win", "prize", "free", "cash", "claim"], "ham": ["lunch", "meeting", "mum", "later", "thanks"]}


def write_items(folder: Path) -> Path:
    """40 short messages with ids, in a CSV the import reads (id and text columns)."""
    path = folder / "messages.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "text"])
        for i in range(40):
            label = "spam" if i % 2 else "ham"
            words = WORDS[label]
            writer.writerow([f"m{i}", f"{words[i % 5]} {words[(i + 2) % 5]} message {i}"])
    return path


def guess(text: str) -> str:
    """What our two scripted annotators answer: spam when a spam word is in the text."""
    return "spam" if any(word in text.split() for word in WORDS["spam"]) else "ham"


def main(url: str | None, out: Path) -> int:
    wb = Workbench.open(url)  # migrates a new database; one engine for every call below
    operator = Actor.operator()  # the local operator: admin rights, no user row

    # 1. A project and its items (import is all-or-nothing: a bad row refuses the whole file).
    wb.projects.create(PROJECT, "text", ["ham", "spam"], settings={"featurizer": {"method": "tfidf"}}, actor=operator)
    report = wb.imports.run(PROJECT, write_items(out), seed=7, actor=operator)
    if not report.ok:
        print("\n".join(report.lines()), file=sys.stderr)
        return 1
    print(f"imported {report.imported} items ({report.n_pool} pool, {report.n_eval} eval)")

    # 2. Two annotators label through the queue: claim (a lease), then submit the label.
    people = []
    for name in ("ada", "ben"):
        wb.users.add(name, "annotator", "a-long-password", actor=operator)
        wb.members.add(PROJECT, name, actor=operator)  # annotators see only the projects they belong to
        people.append(wb.users.authenticate(name, "a-long-password"))  # a user actor (role annotator)
    submitted = 0
    for person in people:
        while (claimed := wb.queue.claim(PROJECT, actor=person)) is not None:
            wb.queue.submit(claimed.lease_id, guess(claimed.content["text"]), actor=person)
            submitted += 1
    progress = wb.projects.progress(PROJECT, actor=operator)
    print(f"submitted {submitted} labels; final items: {progress.in_state('final')}")

    # 3. A retrain round: queue it, then let a worker run the queue (here, in this process, until
    #    it is empty). `workbench worker` or `workbench serve` does the same in the background.
    job = wb.rounds.start(PROJECT, actor=operator)
    run_worker(url, once=True)
    job = wb.jobs.get(job.id, actor=operator)
    if job.state != JobState.DONE:
        print(f"round {job.state}: {job.error}", file=sys.stderr)
        return 1
    print(f"round done: version {job.result.version}, model run {job.result.run_id}")

    # 4. Metrics of the latest model run, and inter-annotator agreement.
    run = wb.rounds.runs(PROJECT, actor=operator)[0]
    m = run.metrics
    low, high = m.accuracy_ci95
    print(f"eval accuracy {m.accuracy:.3f} (95% CI {low:.3f}-{high:.3f}) on {m.n} items, macro F1 {m.macro_f1:.3f}")
    agreement = wb.agreement.report(PROJECT, actor=operator)
    print(f"agreement: {agreement.percent_agreement:.2f} on {agreement.n_paired_items} items")

    # 5. Exports: the dataset version as a Hugging Face folder, every annotation as Label Studio tasks.
    version = wb.exports.version(PROJECT, job.result.version, "hf", out / "hf", actor=operator)
    tasks = wb.exports.items(PROJECT, "label-studio", out / "tasks.json", actor=operator)
    print(f"exported {version.rows} version rows to {version.path} and {tasks.rows} tasks to {tasks.path}")
    wb.engine.dispose()
    return 0


if __name__ == "__main__":
    url = sys.argv[1] if len(sys.argv) > 1 and sys.argv[1] else None
    out = Path(sys.argv[2]) if len(sys.argv) > 2 else Path(tempfile.mkdtemp(prefix="wb-api-"))
    try:
        sys.exit(main(url, out))
    except WorkbenchError as exc:  # a refusal (an existing project, a bad label): one line
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
