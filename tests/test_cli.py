"""The command line: exit codes, one-line errors, passwords never on argv, stress and demo."""

from __future__ import annotations

import io
import json
import sys

import pytest

from workbench.cli import main
from workbench.demo import PROJECT, ensure_demo
from workbench.domain import Actor


def _run(capsys, *argv, stdin: str | None = None, monkeypatch=None) -> tuple[int, str, str]:
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_user_add_reads_the_password_from_stdin(db_url, capsys, monkeypatch, wb):
    code, out, _ = _run(
        capsys,
        "--database-url",
        db_url,
        "user",
        "add",
        "ann",
        "--role",
        "reviewer",
        "--password-stdin",
        stdin="a long passphrase\n",
        monkeypatch=monkeypatch,
    )
    assert code == 0 and "added ann (reviewer)" in out
    assert wb.users.authenticate("ann", "a long passphrase").role == "reviewer"
    code, _, err = _run(
        capsys,
        "--database-url",
        db_url,
        "user",
        "add",
        "ann",
        "--password-stdin",
        stdin="another passphrase\n",
        monkeypatch=monkeypatch,
    )
    assert code == 1 and err.strip() == "workbench: error: user 'ann' already exists"


def test_usage_errors_exit_2_and_user_errors_exit_1(db_url, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["user", "add"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        main(["user", "add", "x", "--password", "on-argv"])  # there is no such option, by design
    assert exc.value.code == 2
    code, _, err = _run(capsys, "--database-url", db_url, "project", "create", "p", "--kind", "text", "--labels", "a,a")
    assert code == 1 and "duplicate labels" in err and "Traceback" not in err
    code, out, _ = _run(capsys, "--database-url", db_url, "init")
    assert code == 0 and "database ready" in out


def test_every_command_has_help(capsys):
    for verb in (
        "init",
        "user",
        "project",
        "import",
        "export",
        "serve",
        "demo",
        "worker",
        "retrain",
        "version",
        "stress",
        "bench",
        "simulate",
    ):
        with pytest.raises(SystemExit) as exc:
            main([verb, "--help"])
        assert exc.value.code == 0, verb
        assert "usage:" in capsys.readouterr().out


def test_stress_command_checks_every_invariant(db_url, capsys, tmp_path):
    out_file = tmp_path / "stress.json"
    code, out, _ = _run(
        capsys,
        "--database-url",
        db_url,
        "stress",
        "--annotators",
        "4",
        "--items",
        "40",
        "--think-ms",
        "0",
        "2",
        "--json",
        str(out_file),
    )
    report = json.loads(out_file.read_text())
    assert code == 0, out
    inv = report["invariants"]
    assert inv["ok"] and inv["items"] == 40 and inv["items_left_incomplete_but_labelable"] == 0
    assert inv["lost_submits"] == 0 and inv["database_locked_errors"] == 0
    assert inv["acknowledged_submits"] >= 2 * inv["items_complete"] > 0
    assert "invariants: ALL HOLD" in out


def test_demo_builds_the_digits_project(wb, home):
    passwords = ensure_demo(wb, home)
    assert set(passwords) == {"admin", "reviewer", "alice", "bob"}
    assert wb.users.authenticate("alice", passwords["alice"]).role == "annotator"
    project = wb.projects.get(PROJECT, actor=Actor.operator())
    counts = wb.projects.progress(PROJECT, actor=Actor.operator())
    assert project.kind == "image" and project.labels == tuple(str(d) for d in range(10))
    assert counts.total() == 1797 and counts.total("pool") + counts.total("eval") == 1797
    assert len(list((home / "demo" / "digits").glob("*.png"))) == 1797
    again = ensure_demo(wb, home)  # a second run keeps the project and renews the passwords
    assert again["alice"] != passwords["alice"]
    assert wb.projects.progress(PROJECT, actor=Actor.operator()).total() == 1797
    lease = wb.queue.claim(PROJECT, actor=wb.users.authenticate("alice", again["alice"]))
    assert lease.reason in ("ranked", "eval", "control")  # eval and control picks are random draws
    ranking = wb.rounds.run_rescore(PROJECT, actor=Actor.operator())
    assert ranking.strategy == "cold_start" and ranking.ranked == 100  # 10 seeds per label
    assert ranking.project_strategy == "margin" and ranking.model_free


HEAVY_MODULES = (
    "sklearn",
    "pandas",
    "torch",
    "streamlit",
    "scipy",
    "strategies",
    "sqlalchemy",
    "alembic",
    "numpy",
    "pyarrow",
    "PIL",
)


def _modules_loaded_by(code: str) -> set[str]:
    """The top-level packages a fresh interpreter has loaded after running `code`."""
    import subprocess

    probe = code + "\nimport sys, json; print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def test_building_the_parser_imports_no_heavy_package():
    """`workbench --help` builds the whole parser (every command module); none of them may pull in
    the ML stack, the database layer or the app. Checked in a fresh interpreter, so it cannot pass
    because another test already imported something."""
    loaded = _modules_loaded_by("import workbench.cli; workbench.cli.build_parser()")
    assert "workbench" in loaded  # the probe ran
    assert loaded.isdisjoint(HEAVY_MODULES), sorted(loaded & set(HEAVY_MODULES))
    # And the help of a benchmark (parsed lazily) still works, loading only its own module.
    loaded = _modules_loaded_by(
        "import workbench.cli, contextlib, io\n"
        "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
        "    workbench.cli.main(['bench', 'startup', '--help'])"
    )
    assert loaded.isdisjoint(HEAVY_MODULES), sorted(loaded & set(HEAVY_MODULES))


def test_the_services_facade_and_project_listing_skip_the_ml_stack(db_url, wb):
    """Importing workbench.services, and listing projects, needs SQL only: no scikit-learn,
    pandas, torch, SciPy, the strategies, Streamlit or Alembic (on an up-to-date database)."""
    from workbench.domain import Actor

    wb.projects.create("p", "text", ["a", "b"], actor=Actor.operator())
    ml = {"sklearn", "pandas", "torch", "scipy", "strategies", "streamlit", "alembic"}
    loaded = _modules_loaded_by(
        "from workbench.services import Workbench\n"
        "from workbench.cli import main\n"
        "import contextlib, io\n"
        "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
        f"    assert main(['--database-url', {db_url!r}, 'project', 'list']) == 0\n"
        "assert out.getvalue().startswith('p\\ttext'), out.getvalue()\n"
    )
    assert "sqlalchemy" in loaded  # it really opened the database
    assert loaded.isdisjoint(ml), sorted(loaded & ml)


def test_startup_bench_times_every_command(capsys):
    from workbench.bench.startup import bench_startup, format_table

    result = bench_startup(repeat=1)
    assert set(result["commands"]) == {"python -c pass", "workbench --help", "workbench project list"}
    for row in result["commands"].values():
        assert 0 < row["best_s"] <= row["median_s"] <= row["worst_s"]
    assert "workbench project list" in format_table(result)


def test_project_guidelines_saves_then_prints_them(db_url, capsys, wb, tmp_path):
    wb.projects.create("g", "text", ["pos", "neg"], actor=Actor.operator())
    code, out, _ = _run(capsys, "--database-url", db_url, "project", "guidelines", "g")
    assert code == 0 and "g has no guidelines yet" in out
    guide = tmp_path / "guide.md"
    guide.write_text("# Tone\nSarcasm is neg.", encoding="utf-8")
    code, out, _ = _run(capsys, "--database-url", db_url, "project", "guidelines", "g", "--file", str(guide))
    assert code == 0 and "saved guidelines version 1 for g" in out
    code, out, _ = _run(capsys, "--database-url", db_url, "project", "guidelines", "g")
    assert code == 0 and "# version 1 (" in out and "Sarcasm is neg." in out
