"""The review page: the disagreement queue side by side, adjudication with a reason, pair filter,
agreement dashboard and history."""

from __future__ import annotations

from tests.test_ui_support import (  # noqa: F401 - fixtures
    actor,
    errors,
    go,
    infos,
    open_tab,
    seed_basic,
    sign_in,
    texts,
    ui_url,
    uwb,
)


def _label_all(uwb, who: str, answer) -> None:
    person = actor(uwb, who)
    while (claim := uwb.queue.claim("demo", actor=person)) is not None:
        uwb.queue.submit(claim.lease_id, answer(claim), actor=person)


def _disagree(uwb, n_items=4):
    """ann1 says pos everywhere; ann2 says neg on item-0 and neutral on item-1, pos elsewhere."""
    seed_basic(uwb, n_items=n_items)
    _label_all(uwb, "ann1", lambda c: "pos")
    _label_all(uwb, "ann2", lambda c: {"item-0": "neg", "item-1": "neutral"}.get(c.external_id, "pos"))


def _adjudicate(at, case: int):
    at.button(key=f"adjudicate_{case}").click().run()
    return at


def test_answers_side_by_side_and_adjudication_with_a_reason(uwb):
    _disagree(uwb)
    at = go(sign_in("rev"), "review")
    assert not errors(at)
    assert at.metric[0].value == "2"  # waiting
    shown = texts(at)
    assert "Annotator: ann1" in shown and "Annotator: ann2" in shown
    assert "Label: pos" in shown and ("Label: neg" in shown or "Label: neutral" in shown)
    case = at.session_state["review_pick"]
    # the decision has no default: nothing is pre-selected that could anchor the reviewer
    assert at.radio(key=f"adj_decision_{case}").value is None
    assert at.selectbox(key=f"adj_label_{case}").value is None
    _adjudicate(at, case)
    assert "Choose a decision" in errors(at)[0]
    at.radio(key=f"adj_decision_{case}").set_value("label")
    at.selectbox(key=f"adj_label_{case}").select("neutral")
    _adjudicate(at, case)  # without a reason the service refuses and nothing changes
    assert "needs a reason" in errors(at)[0]
    at.text_input(key=f"adj_reason_{case}").input("guideline 3: sarcasm counts as neutral")
    _adjudicate(at, case)
    assert not errors(at)
    assert "settled: neutral" in infos(at)[0]
    assert at.metric[0].value == "1"
    history = uwb.review.history("demo", actor=actor(uwb, "rev"))
    assert [(h.item_id, h.label, h.reason) for h in history] == [
        (case, "neutral", "guideline 3: sarcasm counts as neutral")
    ]


def test_the_case_selector_names_the_case_shown_after_each_adjudication(uwb):
    _disagree(uwb, n_items=4)
    at = go(sign_in("rev"), "review")
    first = at.session_state["review_pick"]
    named = at.selectbox(key="review_pick")
    assert named.value == first
    shown_id = next(c.value for c in at.caption if c.value.startswith("Item "))
    assert uwb.review.queue("demo", actor=actor(uwb, "rev"))[0].external_id in shown_id.replace("\\", "")
    at.radio(key=f"adj_decision_{first}").set_value("ambiguous")
    at.text_input(key=f"adj_reason_{first}").input("both readings hold")
    _adjudicate(at, first)
    second = at.selectbox(key="review_pick").value
    assert second != first and at.session_state["review_pick"] == second
    (left,) = uwb.review.queue("demo", actor=actor(uwb, "rev"))
    assert left.item_id == second
    caption = next(c.value for c in at.caption if c.value.startswith("Item ")).replace("\\", "")
    assert left.external_id in caption
    assert at.radio(key=f"adj_decision_{second}").value is None  # no carried-over decision


def test_ambiguous_and_excluded_decisions(uwb):
    _disagree(uwb)
    at = go(sign_in("rev"), "review")
    for decision in ("ambiguous", "excluded"):
        case = at.session_state["review_pick"]
        at.radio(key=f"adj_decision_{case}").set_value(decision)
        at.text_input(key=f"adj_reason_{case}").input(f"marked {decision}")
        _adjudicate(at, case)
        assert not errors(at)
    states = sorted(h.decision.value for h in uwb.review.history("demo", actor=actor(uwb, "rev")))
    assert states == ["ambiguous", "excluded"]
    assert "No disagreements waiting" in at.success[0].value


def test_history_uses_external_ids_and_skips_are_shown_with_who_and_when(uwb):
    seed_basic(uwb, n_items=3)
    ann2 = actor(uwb, "ann2")
    uwb.queue.skip(uwb.queue.claim("demo", actor=ann2).lease_id, "cannot tell", actor=ann2)
    _label_all(uwb, "ann1", lambda c: "pos")
    _label_all(uwb, "ann2", lambda c: "neg")
    at = go(sign_in("rev"), "review")
    case = at.session_state["review_pick"]
    at.radio(key=f"adj_decision_{case}").set_value("excluded")
    at.text_input(key=f"adj_reason_{case}").input("off topic")
    _adjudicate(at, case)
    open_tab(at, "review_tabs", "Adjudication history")
    history = [d for d in at.dataframe if "reviewer" in d.value.columns][0].value
    assert history["item"].tolist()[0].startswith("item-") and "item id" not in history.columns
    open_tab(at, "review_tabs", "Skips")
    counts = [d for d in at.dataframe if "skips" in d.value.columns][0].value
    assert counts.to_dict("records") == [{"reason": "cannot tell", "skips": 1}]
    latest = [d for d in at.dataframe if "who" in d.value.columns][0].value
    assert latest["who"].tolist() == ["ann2"] and latest["reason"].tolist() == ["cannot tell"]
    assert uwb.review.skip_counts("demo", actor=actor(uwb, "rev")) == {"cannot tell": 1}


def test_filter_by_label_pair(uwb):
    _disagree(uwb)
    at = go(sign_in("rev"), "review")
    at.selectbox(key="review_pair_a").select("pos")
    at.selectbox(key="review_pair_b").select("neutral").run()
    table = at.dataframe[0].value
    assert table["item"].tolist() == ["item-1"]
    at.selectbox(key="review_pair_b").select("pos").run()
    assert "two different labels" in at.warning[0].value


def test_admin_who_labelled_an_item_is_refused_by_the_service(uwb):
    seed_basic(uwb, n_items=1)
    _label_all(uwb, "ann1", lambda c: "pos")
    _label_all(uwb, "admin", lambda c: "neg")  # admins may label too
    at = go(sign_in("admin"), "review")
    case = at.session_state["review_pick"]
    at.radio(key=f"adj_decision_{case}").set_value("label")
    at.selectbox(key=f"adj_label_{case}").select("pos")
    at.text_input(key=f"adj_reason_{case}").input("mine")
    _adjudicate(at, case)
    assert "items they labeled themselves" in errors(at)[0]
    assert uwb.review.count_waiting("demo", actor=actor(uwb, "rev")) == 1


def test_agreement_dashboard(uwb):
    _disagree(uwb, n_items=6)
    rev = actor(uwb, "rev")
    case = uwb.review.queue("demo", actor=rev)[0]
    uwb.review.adjudicate(case.item_id, "label", actor=rev, label="pos", reason="r")
    at = open_tab(go(sign_in("rev"), "review"), "review_tabs", "Agreement")
    metrics = {m.label: m.value for m in at.metric}
    report = uwb.agreement.report("demo", actor=rev)
    assert metrics["Krippendorff's alpha"] == f"{report.krippendorff_alpha:.3f}"
    assert metrics["Percent agreement"] == f"{report.percent_agreement:.1%}"
    frames = [df.value for df in at.dataframe]
    kappa = next(f for f in frames if "kappa" in f.columns)
    assert kappa[["annotator A", "annotator B"]].values.tolist() == [["ann1", "ann2"]]
    assert abs(kappa["kappa"].iloc[0] - report.cohen_kappa[0].kappa) < 1e-12
    vs = next(f for f in frames if "adjudicated items" in f.columns)
    assert vs.set_index("annotator")["agreement"].to_dict() == {"ann1": 1.0, "ann2": 0.0}
    assert len(at.get("vega_lite_chart")) >= 3
    open_tab(at, "review_tabs", "Adjudication history")
    history = next(df.value for df in at.dataframe if "reviewer" in df.value.columns)
    assert history["reason"].tolist() == ["r"]


def test_annotator_gets_no_review_data(uwb):
    _disagree(uwb)
    at = go(sign_in("ann1"), "review")
    assert "needs the reviewer role" in errors(at)[0]
    assert "Label: neg" not in texts(at) and not at.dataframe
