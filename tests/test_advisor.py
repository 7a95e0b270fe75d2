"""The strategy advisor: which strategies it replays, when a round queues it (once), who may see or
queue it, the advise job end to end through a real worker on SQLite and PostgreSQL (the project's
strategy unchanged after the advice), the CLI, and the Rounds page."""

from __future__ import annotations

import random

import pytest
from sqlalchemy import update
from sqlmodel import Session

from tests.helpers import add_text_items, annotators, set_final_labels
from tests.test_ui_support import ui_url, uwb  # noqa: F401 - fixtures
from workbench.cli import main
from workbench.db.models import Job
from workbench.domain import Actor, JobKind, JobState
from workbench.domain.advice import Advice, CurvePoint, StrategyAdvice, Verdict, recommend
from workbench.errors import PermissionDenied, WorkbenchError
from workbench.services import advisor as advisor_module
from workbench.services.advisor import REFRESH_LABELS, candidate_strategies, queue_if_due
from workbench.worker import run_worker

OP = Actor.operator()
WORDS = {
    "spam": "win cash prize offer claim free now urgent",
    "ham": "see you lunch today home later thanks call",
}


def _texts(n: int, seed: int = 0) -> tuple[list[str], dict[str, str]]:
    """Two labels whose words overlap a little, so a model learns but not from the first labels."""
    rng = random.Random(seed)
    texts, gold = [], {}
    for i in range(n):
        label = "spam" if i % 3 == 0 else "ham"
        other = "ham" if label == "spam" else "spam"
        words = WORDS[label].split() * 2 + WORDS[other].split()
        texts.append(" ".join(rng.choice(words) for _ in range(7)) + f" w{i}")
        gold[f"t{i}"] = label
    return texts, gold


def _project(wb, name: str = "adv", n: int = 240, labeled: int = 200, **settings):
    info = wb.projects.create(
        name, "text", ["ham", "spam"], strategy="entropy", settings={"random_share": 0.0, **settings}, actor=OP
    )
    texts, gold = _texts(n)
    add_text_items(wb.engine, info.id, texts, eval_fraction=0.2)
    set_final_labels(wb.engine, info.id, {k: gold[k] for k in list(gold)[:labeled]})
    return info, gold


def _advice(current: str = "margin", **diffs: tuple[float, float, float]) -> Advice:
    curve = (CurvePoint(20, 0.6, 0.01), CurvePoint(60, 0.8, 0.02))
    rows = [StrategyAdvice("random", curve, 0.7, Verdict.BASELINE)]
    for name, (mean, low, high) in diffs.items():
        verdict = Verdict.ABOVE if low > 0 else Verdict.BELOW if high < 0 else Verdict.NO_DIFFERENCE
        rows.append(StrategyAdvice(name, curve, 0.7 + mean, verdict, mean, low, high, (mean,) * 3))
    strategies = tuple(rows)
    recommended, sentence = recommend(strategies, current)
    return Advice(
        n_labels=200,
        n_pool=160,
        n_eval=40,
        seeds=(0, 1, 2),
        batch_size=24,
        initial=20,
        current_strategy=current,
        strategies=strategies,
        recommended=recommended,
        sentence=sentence,
    )


# -- pure pieces ---------------------------------------------------------------------------------


def test_recommends_the_best_strategy_whose_interval_is_above_zero():
    advice = _advice(margin=(0.05, -0.01, 0.11), entropy=(0.03, 0.01, 0.05), margin_batch=(0.02, 0.005, 0.035))
    assert advice.recommended == "entropy"  # margin's mean is larger, but its interval holds zero
    assert advice.sentence.startswith("Consider entropy: AUBC +0.030 over random (95% interval +0.010 to +0.050)")
    assert "the project uses margin" in advice.sentence
    kept = _advice(current="entropy", entropy=(0.03, 0.01, 0.05))
    assert kept.recommended == "entropy" and kept.sentence.startswith("Keep entropy: it beats random")


def test_no_strategy_beats_random_keeps_the_current_one():
    advice = _advice(margin=(0.05, -0.01, 0.11), entropy=(-0.03, -0.05, -0.01))
    assert advice.recommended is None
    assert advice.sentence == "No strategy beats random yet; keep margin."


def test_advice_round_trips_through_json_and_ignores_unknown_keys():
    advice = _advice(margin=(0.05, 0.01, 0.09))
    data = advice.to_json()
    assert data["strategies"][1]["verdict"] == "above"
    data["from_a_later_release"] = 1
    data["strategies"][0]["also_new"] = True
    assert Advice.from_json(data) == advice


def test_candidates_follow_the_model_and_merge_margin_rankers_for_two_labels(wb):
    two = wb.projects.create("two", "text", ["a", "b"], strategy="entropy", actor=OP)
    names, aliases, skipped = candidate_strategies(two)
    assert names[0] == "random" and "cold_start" not in names
    assert {"margin_batch", "margin_density", "margin_diversity"} <= set(names)
    # With two labels these three rank alike: the project's own one is replayed for all of them.
    assert "entropy" in names and aliases == {"least_confidence": "entropy", "margin": "entropy"}
    assert not any(name.startswith(("bald", "qbc")) for name in names)
    assert any(line.startswith("cold_start") for line in skipped)
    three = wb.projects.create("three", "text", ["a", "b", "c"], actor=OP)
    names, aliases, _ = candidate_strategies(three)
    assert aliases == {} and {"least_confidence", "margin", "entropy"} <= set(names)
    committee = wb.projects.create(
        "committee", "text", ["a", "b", "c"], settings={"model": {"type": "committee", "size": 3}}, actor=OP
    )
    assert {"qbc_vote", "qbc_consensus", "qbc_kl"} <= set(candidate_strategies(committee)[0])


# -- when it is queued ---------------------------------------------------------------------------


def test_queued_after_a_round_once_past_the_threshold_and_once_per_refresh(wb, db_url):
    info, gold = _project(wb, labeled=150, advisor_min_labels=200)
    assert queue_if_due(wb.engine, info.id) is None  # 150 < 200
    status = wb.advisor.status("adv", actor=OP)
    assert status.needed == 50 and status.advice is None and status.active is None
    set_final_labels(wb.engine, info.id, {k: gold[k] for k in list(gold)[150:200]})
    job_id = queue_if_due(wb.engine, info.id)
    assert job_id is not None
    assert queue_if_due(wb.engine, info.id) is None  # one queued: no second
    assert wb.advisor.queue("adv", actor=OP).id == job_id  # nor from the button
    with Session(wb.engine) as s:
        job = s.get(Job, job_id)
        assert job.kind == JobKind.ADVISE and job.payload == {"labels": 200}
    # Once it has run, the next advice waits for REFRESH_LABELS new labels.
    with Session(wb.engine) as s, s.begin():
        s.execute(update(Job).where(Job.id == job_id).values(state=JobState.DONE))
    assert queue_if_due(wb.engine, info.id) is None
    set_final_labels(wb.engine, info.id, {k: gold[k] for k in list(gold)[200 : 200 + REFRESH_LABELS - 61]})
    assert queue_if_due(wb.engine, info.id) is None  # 39 new labels
    wb.projects.update_settings("adv", advisor_min_labels=0, actor=OP)
    assert queue_if_due(wb.engine, info.id) is None  # 0 turns it off


def test_the_setting_is_checked_and_defaults_to_200(wb, monkeypatch):
    monkeypatch.delenv(advisor_module.MIN_LABELS_ENV, raising=False)
    _project(wb, "plain", n=30, labeled=10)
    assert wb.projects.get("plain", actor=OP).settings["advisor_min_labels"] == 200
    assert wb.advisor.status("plain", actor=OP).min_labels == 200
    assert wb.advisor.status("plain", actor=OP).needed == 190
    with pytest.raises(WorkbenchError, match="advisor_min_labels must be within 0..1e"):
        wb.project_settings.update("plain", settings={"advisor_min_labels": -1}, actor=OP)
    wb.project_settings.update("plain", settings={"advisor_min_labels": 5}, actor=OP)
    assert wb.advisor.status("plain", actor=OP).needed == 0


# -- who may -------------------------------------------------------------------------------------


@pytest.mark.explicit_members
def test_admins_queue_reviewers_of_the_project_read_annotators_never(wb):
    _project(wb, n=30, labeled=25)
    ann, rev, outsider = (
        *annotators(wb, 1, "annotator", "ann"),
        *annotators(wb, 1, "reviewer", "rev"),
        *annotators(wb, 1, "reviewer", "out"),
    )
    wb.members.add("adv", "ann0", actor=OP)
    wb.members.add("adv", "rev0", actor=OP)
    assert wb.advisor.status("adv", actor=rev).n_labels == 25
    with pytest.raises(PermissionDenied, match="reviewer"):
        wb.advisor.status("adv", actor=ann)
    with pytest.raises(PermissionDenied, match="not a member"):
        wb.advisor.status("adv", actor=outsider)
    for who in (ann, rev):
        with pytest.raises(PermissionDenied, match="admin"):
            wb.advisor.queue("adv", actor=who)
        with pytest.raises(PermissionDenied, match="admin"):
            wb.advisor.run("adv", actor=who)
    with pytest.raises(PermissionDenied, match="no actor"):
        wb.advisor.status("adv", actor=None)


# -- the job end to end --------------------------------------------------------------------------


def test_a_round_queues_the_advice_and_a_real_worker_runs_it(wb, db_url, home, monkeypatch):
    monkeypatch.setattr(advisor_module, "SEEDS", (0, 1))  # two paired seeds keep the test short
    info, _ = _project(wb, n=150, labeled=120, advisor_min_labels=100)
    strategy_before = wb.projects.get("adv", actor=OP).strategy
    wb.rounds.start("adv", actor=OP)
    assert run_worker(db_url, once=True) == 2  # the round, then the advice it queued
    status = wb.advisor.status("adv", actor=OP)
    assert status.active is None and status.failed is None and status.advice is not None
    advice = status.advice
    assert advice.n_labels == 120 and advice.n_pool + advice.n_eval == 120 and advice.seeds == (0, 1)
    names = [s.strategy for s in advice.strategies]
    assert names[0] == "random" and {"entropy", "margin", "least_confidence", "margin_batch"} <= set(names)
    by_name = {s.strategy: s for s in advice.strategies}
    assert by_name["margin"].same_as == "entropy" and by_name["entropy"].is_current
    for s in advice.strategies:
        assert s.curve and s.curve[0].labels == advice.initial and 0 <= s.aubc <= 1
        assert [p.labels for p in s.curve] == sorted(p.labels for p in s.curve)
        if s.strategy != "random":
            assert len(s.diffs_by_seed) == 2 and s.diff_mean == pytest.approx(sum(s.diffs_by_seed) / 2)
    assert advice.recommended in (None, *names)
    assert advice.sentence.startswith(("Keep", "Consider", "No strategy beats random yet; keep entropy."))
    # The advice never changes the project: same strategy, and the job's result reads back typed.
    assert wb.projects.get("adv", actor=OP).strategy == strategy_before == "entropy"
    assert isinstance(wb.jobs.get(status.advice_job_id, actor=OP).result, Advice)
    # 120 labels advised; the next round does not queue it again until REFRESH_LABELS more.
    assert queue_if_due(wb.engine, info.id) is None


def test_too_few_labels_fail_the_job_with_a_reason(wb, db_url, home):
    _project(wb, n=30, labeled=10)
    job = wb.advisor.queue("adv", actor=OP)
    assert run_worker(db_url, once=True) == 1
    failed = wb.jobs.get(job.id, actor=OP)
    assert failed.state == JobState.FAILED and "at least 20 final labels" in failed.error
    assert wb.advisor.status("adv", actor=OP).failed.id == job.id


def test_cli_queues_once_and_wait_without_a_worker_says_so(wb, db_url, capsys):
    _project(wb, n=40, labeled=30)
    assert main(["--database-url", db_url, "advise", "adv"]) == 0
    first = capsys.readouterr().out
    assert main(["--database-url", db_url, "advise", "adv"]) == 0
    assert capsys.readouterr().out == first  # the same queued job, not a second one
    assert main(["--database-url", db_url, "advise", "adv", "--wait"]) == 1
    assert "no worker is running" in capsys.readouterr().err


def test_format_advice_prints_every_strategy_and_the_sentence():
    from workbench.commands.advise import format_advice

    text = format_advice(_advice(margin=(0.05, 0.01, 0.09)))
    assert "margin" in text and "+0.0100 to +0.0900" in text and text.endswith("(95% interval +0.010 to +0.090).")


# -- the Rounds page -----------------------------------------------------------------------------


def _store_advice(wb, advice: Advice) -> int:
    job = wb.advisor.queue("sent", actor=OP)
    claimed = wb.jobs.claim_next("test-worker", actor=OP)
    assert claimed.id == job.id
    wb.jobs.finish(job.id, advice, actor=OP)
    return job.id


def test_rounds_page_shows_advice_to_reviewers_and_the_button_to_admins(uwb, monkeypatch):
    from tests.test_ui_rounds import _seed
    from tests.test_ui_support import go, infos, plain, sign_in

    monkeypatch.delenv(advisor_module.MIN_LABELS_ENV, raising=False)  # the product default, 200
    _seed(uwb)
    at = go(sign_in("rev"), "rounds")
    assert any("200 final labels: 200 more needed (0 so far)" in text for text in infos(at))
    assert "No advice yet." in [c.value for c in at.caption]
    assert not [b for b in at.button if b.key == "advisor_run"]  # reviewers cannot queue it
    _store_advice(uwb, _advice(current="margin", entropy=(0.03, 0.01, 0.05), margin=(0.01, -0.02, 0.04)))
    at.run()
    assert any(plain(s.value).startswith("Consider entropy: AUBC +0.030 over random") for s in at.success)
    table = next(df.value for df in at.dataframe if "AUBC − random" in df.value.columns)
    assert table["strategy"].tolist() == ["random", "entropy", "margin"]
    assert table["95% low"].tolist()[1:] == [0.01, -0.02]
    assert uwb.projects.get("sent", actor=OP).strategy == "margin"  # the page never switches it

    admin = go(sign_in("admin"), "rounds")
    admin.button(key="advisor_run").click().run()
    assert not admin.exception
    status = uwb.advisor.status("sent", actor=OP)
    assert status.active is not None and status.active.kind == JobKind.ADVISE
    assert uwb.projects.get("sent", actor=OP).strategy == "margin"


def test_an_annotator_cannot_open_the_rounds_page(uwb):
    from tests.test_ui_rounds import _seed
    from tests.test_ui_support import errors, sign_in

    _seed(uwb)
    at = sign_in("ann1")
    at.switch_page("views/rounds.py").run()
    assert any("needs the reviewer role" in e for e in errors(at))
    assert not [b for b in at.button if b.key == "advisor_run"]
    assert not [df for df in at.dataframe if "AUBC − random" in df.value.columns]
