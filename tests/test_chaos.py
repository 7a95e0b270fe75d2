"""`workbench chaos` on a small scale: its kills land and its checks come back clean; a check
that must fail does fail."""

from __future__ import annotations

import pytest

from workbench.chaos import Chaos, run_chaos


@pytest.mark.slow
@pytest.mark.explicit_members  # chaos enrols its own annotators, as a real run does
def test_chaos_annotate_and_import_points_report_no_failure(db_url, tmp_path):
    report = run_chaos(1, database_url=db_url, points=("annotate", "import"), rows=3000, home=tmp_path)
    assert report.runs == {"annotate": 1, "import": 1}
    assert report.killed["annotate"] == 1 and report.acknowledged > 0
    assert report.failures == 0, report.notes


def test_the_half_published_check_catches_a_model_run_without_its_file(wb, tmp_path, db_url):
    from sqlmodel import Session

    from workbench.db.models import DatasetVersion, ModelRun

    chaos = Chaos(db_url, tmp_path, seed=0, rows=10)
    try:
        name, project_id = chaos.project("round", 0)
        with Session(chaos.wb.engine) as session, session.begin():
            version = DatasetVersion(
                project_id=project_id, number=1, content_hash="0" * 64, n_items=0, trigger="t", manifest={}
            )
            session.add(version)
            session.flush()
            session.add(
                ModelRun(
                    project_id=project_id,
                    version_id=version.id,
                    artifact_path="artifacts/gone.skops",
                    artifact_sha256="0" * 64,
                )
            )
        chaos.check_half_published(project_id, "test")
        assert chaos.report.half_published == 1
        (tmp_path / "artifacts").mkdir()
        (tmp_path / "artifacts" / ".model-x.skops.1.tmp").write_bytes(b"x")
        chaos.check_orphans()
        assert chaos.report.orphans_swept == 1 and chaos.report.orphan_files == 0
    finally:
        chaos.wb.engine.dispose()


def test_the_report_is_saved_whole_after_every_run(tmp_path):
    import json

    from workbench.chaos import ChaosReport

    report = ChaosReport(database="sqlite", runs={"import": 3}, stuck_jobs=1, notes=["one late recovery"])
    path = tmp_path / "chaos.json"
    report.save(path)
    saved = json.loads(path.read_text())
    assert saved["runs"] == {"import": 3} and saved["failures"] == 1 and saved["notes"] == ["one late recovery"]
    assert [p.name for p in tmp_path.iterdir()] == ["chaos.json"]  # no partial file left beside it
