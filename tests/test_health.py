"""Data health: duplicates and leakage on real SMS, MinHash against datasketch, PII precision and
recall on a planted corpus, drift on adult census, subgroup metrics against fairlearn, and the
service and command on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import shared_dataset
from tests.helpers import add_text_items, read_sms
from workbench.domain import Actor, Role
from workbench.health import duplicates as dup
from workbench.health.pii import PiiMode, PiiType, find_pii, pseudonym, scrub

OPERATOR = Actor.operator()


def _sms_texts() -> list[str]:
    return [text for _, text in read_sms(shared_dataset("sms_spam_collection") / "SMSSpamCollection")]


# -- duplicates ------------------------------------------------------------------------------
def test_sms_exact_duplicates_match_the_dataset_notes():
    """PROVENANCE: 403 rows repeat an earlier text exactly; 281 texts have more than one copy."""
    texts = _sms_texts()
    pairs = dup.text_duplicates(texts)
    exact = [p for p in pairs if p.exact]
    assert len(exact) == 403
    assert len({p.first for p in exact}) == 281
    assert all(texts[p.first] == texts[p.second] for p in exact)
    near = [p for p in pairs if not p.exact]
    assert len(near) >= 50  # e.g. the same message with other punctuation or case
    assert all(texts[p.first] != texts[p.second] for p in near)
    assert any(texts[p.first].rstrip(".") == texts[p.second].rstrip(".") for p in near)


def test_minhash_estimates_jaccard_as_well_as_datasketch():
    from datasketch import MinHash

    rng = np.random.default_rng(0)
    vocabulary = [f"w{i}" for i in range(400)]
    base = [" ".join(rng.choice(vocabulary, 60)) for _ in range(40)]
    variants = []
    for text in base:
        words = text.split()
        k = int(rng.integers(0, 25))
        for position in rng.choice(len(words), k, replace=False):
            words[position] = str(rng.choice(vocabulary))
        variants.append(" ".join(words))
    ours = dup.minhash_signatures(base + variants, num_perm=128)
    errors_ours, errors_ds = [], []
    for i in range(len(base)):
        a = set(zip(base[i].split(), base[i].split()[1:]))
        b = set(zip(variants[i].split(), variants[i].split()[1:]))
        truth = len(a & b) / len(a | b)
        errors_ours.append(abs(dup.estimated_jaccard(ours[i], ours[len(base) + i]) - truth))
        m1, m2 = MinHash(num_perm=128, seed=1), MinHash(num_perm=128, seed=1)
        for x in a:
            m1.update(" ".join(x).encode())
        for x in b:
            m2.update(" ".join(x).encode())
        errors_ds.append(abs(m1.jaccard(m2) - truth))
    assert np.mean(errors_ours) < 0.06
    assert np.mean(errors_ours) < 1.5 * np.mean(errors_ds) + 0.01, (np.mean(errors_ours), np.mean(errors_ds))


def test_near_duplicates_above_the_threshold_only():
    texts = [
        "the quick brown fox jumps over the lazy dog near the river bank today",
        "the quick brown fox jumps over the lazy dog near the river bank today!",  # same words
        "the quick brown fox jumps over the lazy cat near the river bank today",  # one word off
        "completely different words about a spreadsheet and its many formulas here",
    ]
    pairs = {(p.first, p.second): p for p in dup.text_duplicates(texts, threshold=0.9)}
    assert (0, 1) in pairs and not pairs[(0, 1)].exact
    assert all(3 not in key for key in pairs)
    loose = {(p.first, p.second) for p in dup.text_duplicates(texts, threshold=0.6)}
    assert (0, 2) in loose or (1, 2) in loose


def test_tabular_and_image_duplicates(tmp_path):
    pairs = dup.row_duplicates([[1, "a"], [2, "b"], [1, "a"], [1, " a"]])
    assert [(p.first, p.second) for p in pairs] == [(0, 2), (0, 3)]
    from PIL import Image

    rng = np.random.default_rng(0)
    blocks = [rng.integers(0, 256, (8, 8), dtype=np.uint8) for _ in range(2)]
    picture = Image.fromarray(blocks[0]).resize((64, 64), Image.NEAREST)
    picture.save(tmp_path / "a.png")
    picture.resize((128, 128), Image.BILINEAR).save(tmp_path / "b.png")  # the same picture, larger
    Image.fromarray(blocks[1]).resize((64, 64), Image.NEAREST).save(tmp_path / "c.png")  # another one
    hashes = [dup.perceptual_hash(str(tmp_path / n)) for n in ("a.png", "b.png", "c.png")]
    found = {(p.first, p.second) for p in dup.image_duplicates(hashes)}
    assert found == {(0, 1)}


# -- personal data ---------------------------------------------------------------------------
PLANTED = {
    PiiType.EMAIL: ["jane.doe@example.com", "x_y+tag@mail.example.co.uk"],
    PiiType.PHONE: ["+1 212 555 0142", "(415) 555-2671", "+44 20 7946 0958"],
    PiiType.CARD: ["4111 1111 1111 1111", "5500-0000-0000-0004", "378282246310005"],
    PiiType.IBAN: ["GB82 WEST 1234 5698 7654 32", "DE89370400440532013000"],
    PiiType.IP: ["192.168.10.42", "2001:db8::8a2e:370:7334"],
    PiiType.URL: ["https://example.org/path?q=1", "www.example.net/page"],
    PiiType.PERSON: ["Alice Johnson", "Dr Patel", "Michael Brown"],
}
NEAR_MISSES = [
    "card 4111 1111 1111 1112 fails Luhn",  # invalid card number
    "meet on 2023-10-12 at 10:30",  # a date and time that look like a phone number
    "IBAN GB00 WEST 1234 5698 7654 32 has bad check digits",
    "version 999.300.1.1 is not an address",
    "send it to john at example dot com",
    "Happy Birthday and Merry Christmas",  # capitalised words, no person
    "order 12345 shipped",
]


def test_pii_detection_precision_and_recall_per_type():
    found_per_type = {kind: 0 for kind in PLANTED}
    for kind, values in PLANTED.items():
        for value in values:
            findings = find_pii(f"Please note: {value} is what they gave us.")
            assert [(f.type, f.value) for f in findings] == [(kind, value)], (kind, value, findings)
            found_per_type[kind] += 1
    assert found_per_type == {kind: len(values) for kind, values in PLANTED.items()}  # recall 1.0
    for text in NEAR_MISSES:
        assert find_pii(text) == [], (text, find_pii(text))  # precision on the near misses


def test_pseudonyms_are_stable_keyed_and_hide_the_value():
    text = "Mail jane.doe@example.com or call +1 212 555 0142; again: jane.doe@example.com"
    one = scrub(text, PiiMode.PSEUDONYMIZE, secret=b"project-secret").text
    assert "jane.doe" not in one and "555" not in one
    token = pseudonym(PiiType.EMAIL, "jane.doe@example.com", b"project-secret")
    assert one.count(token) == 2 and token.startswith("<EMAIL_")
    other = scrub(text, PiiMode.PSEUDONYMIZE, secret=b"another-secret").text
    assert token not in other
    assert scrub(text, PiiMode.MASK).text == "Mail <EMAIL> or call <PHONE>; again: <EMAIL>"
    assert scrub(text, PiiMode.FLAG).text == text


# -- drift and subgroups ---------------------------------------------------------------------
ADULT_COLUMNS = (
    "age workclass fnlwgt education education-num marital-status occupation relationship race "
    "sex capital-gain capital-loss hours-per-week native-country income"
).split()
NUMERIC = ["age", "fnlwgt", "education-num", "capital-gain", "capital-loss", "hours-per-week"]
CATEGORICAL = [
    "workclass",
    "education",
    "marital-status",
    "occupation",
    "relationship",
    "race",
    "sex",
    "native-country",
]


def _adult(name: str):
    import pandas as pd

    frame = pd.read_csv(
        shared_dataset("adult_census_income") / name, names=ADULT_COLUMNS, skipinitialspace=True, na_values="?"
    )
    frame["income"] = frame["income"].str.rstrip(".")
    return frame


def _contents(frame) -> list[dict]:
    records = frame[NUMERIC + CATEGORICAL].astype(object).where(frame.notna(), None).to_dict("records")
    return [{"features": r} for r in records]


@pytest.mark.slow
def test_drift_on_adult_is_small_between_train_and_test_and_found_on_shifted_age():
    from workbench.domain import ProjectKind
    from workbench.services.health import drift_between

    train, test = _adult("adult.data"), _adult("adult.test")
    same = drift_between(ProjectKind.TABULAR, _contents(train), _contents(test))
    assert same.drifted_features == ()
    assert same.domain_auc is not None and same.domain_auc < 0.55
    shifted = test.assign(age=test["age"] + 10)
    moved = drift_between(ProjectKind.TABULAR, _contents(train), _contents(shifted))
    assert moved.drifted_features == ("age",)
    assert moved.domain_auc > 0.65
    age_tests = {t.test: t for t in moved.tests if t.feature == "age"}
    assert age_tests["ks"].p_adjusted < 1e-6 and age_tests["anderson_darling"].drifted


def test_holm_correction():
    from workbench.health.drift import holm

    assert np.allclose(holm([0.01, 0.04, 0.03, 0.5]), [0.04, 0.09, 0.09, 0.5])


def test_subgroup_metrics_match_fairlearn_on_adult_predictions():
    from fairlearn.metrics import MetricFrame, demographic_parity_ratio, equalized_odds_difference
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score

    from workbench.health.subgroups import subgroup_metrics

    train, test = _adult("adult.data"), _adult("adult.test").iloc[:4000]
    X_train, X_test = train[NUMERIC].to_numpy(float), test[NUMERIC].to_numpy(float)
    model = LogisticRegression(max_iter=1000).fit((X_train - X_train.mean(0)) / X_train.std(0), train["income"])
    predicted = model.predict((X_test - X_train.mean(0)) / X_train.std(0))
    labels = ["<=50K", ">50K"]
    for column in ("sex", "race"):
        report = subgroup_metrics(column, test["income"], predicted, test[column], labels)
        direct = MetricFrame(
            metrics=accuracy_score, y_true=test["income"], y_pred=predicted, sensitive_features=test[column]
        )
        for group in report.groups:
            assert group.accuracy == pytest.approx(direct.by_group[group.group])
            assert group.size == int((test[column] == group.group).sum())
        positive = (test["income"] == ">50K").astype(int), (predicted == ">50K").astype(int)
        assert report.disparate_impact[">50K"] == pytest.approx(
            demographic_parity_ratio(*positive, sensitive_features=test[column])
        )
        assert report.equalized_odds_difference[">50K"] == pytest.approx(
            equalized_odds_difference(*positive, sensitive_features=test[column])
        )
        assert report.worst_accuracy == pytest.approx(direct.group_min())
    race = subgroup_metrics("race", test["income"], predicted, test["race"], labels)
    assert "Other" in race.small_groups or any(g.size < 30 for g in race.groups) or race.small_groups == ()


# -- the service and the command --------------------------------------------------------------
def test_health_check_flags_duplicates_and_leakage_and_stores_them(wb):
    texts = _sms_texts()[:1500]
    info = wb.projects.create("sms-health", "text", ["ham", "spam"], actor=OPERATOR)
    add_text_items(wb.engine, info.id, texts, eval_fraction=0.3)
    report = wb.health.check("sms-health", actor=OPERATOR)
    exact_rows = sum(1 for i, t in enumerate(texts) if t in texts[:i])
    assert report.n_batch == 1500 and report.exact_duplicates == exact_rows
    assert report.leakage_pairs > 0
    assert any(d.leakage for d in report.duplicates)
    flags = wb.health.flags("sms-health", actor=OPERATOR, kind="leakage")
    assert flags and all("split" in f.reason for f in flags)
    duplicates = wb.health.flags("sms-health", actor=OPERATOR, kind="duplicate")
    assert len(duplicates) == len({p for p in (f.item_id for f in duplicates)})
    annotator = Actor(id=999, name="ann", role=Role.ANNOTATOR)
    from workbench.errors import PermissionDenied

    with pytest.raises(PermissionDenied):
        wb.health.flags("sms-health", actor=annotator)
    with pytest.raises(PermissionDenied):
        wb.health.check("sms-health", actor=Actor(id=998, name="rev", role=Role.REVIEWER))
    # Checking again replaces the flags rather than adding to them.
    wb.health.check("sms-health", actor=OPERATOR)
    assert len(wb.health.flags("sms-health", actor=OPERATOR, kind="duplicate")) == len(duplicates)


def test_health_command_prints_and_writes_json(db_url, home, tmp_path):
    from workbench.db.engine import make_engine
    from workbench.services import Workbench

    wb = Workbench(make_engine(db_url))
    info = wb.projects.create("cli-health", "text", ["a", "b"], actor=OPERATOR)
    add_text_items(
        wb.engine,
        info.id,
        [
            "write to jane.doe@example.com today",
            "hello there friend",
            "hello there friend",
            "a plain sentence about labels",
        ],
    )
    wb.engine.dispose()
    out = tmp_path / "health.json"
    done = subprocess.run(
        [sys.executable, "-m", "workbench.cli", "--database-url", db_url, "health", "cli-health", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "1 exact" in done.stdout and "1 email" in done.stdout
    payload = json.loads(out.read_text())
    assert payload["exact_duplicates"] == 1 and payload["pii_counts"] == {"EMAIL": 1}


def test_import_pseudonymizes_before_anything_is_stored(db_url, home, tmp_path):
    """With pii=pseudonymize, no planted value reaches the database, the files under
    $WORKBENCH_HOME or an export; the same value gets the same token in every row."""
    import csv

    from workbench.db.engine import make_engine
    from workbench.services import Workbench

    wb = Workbench(make_engine(db_url))
    wb.projects.create("pii", "text", ["a", "b"], actor=OPERATOR, settings={"pii": "pseudonymize"})
    planted = [v for values in PLANTED.values() for v in values]
    path = tmp_path / "pii.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "text", "note"])
        for i, value in enumerate(planted):
            writer.writerow([f"r{i}", f"Row {i}: contact {value} please.", f"also {value}"])
        writer.writerow(["again", f"Repeat {planted[0]} here.", ""])
    report = wb.imports.run("pii", path, actor=OPERATOR)
    assert report.ok and report.imported == len(planted) + 1
    assert report.health is not None and sum(report.health.pii_counts.values()) == 0  # none left to find
    out = tmp_path / "export.csv"
    wb.exports.items("pii", "csv", out, actor=OPERATOR)
    from sqlalchemy import select

    from workbench.db.models import Item

    with wb.engine.connect() as conn:
        contents = [json.dumps(c) for c in conn.execute(select(Item.content)).scalars()]
    wb.engine.dispose()
    stored = "\n".join(contents)
    for value in planted:
        assert value not in stored, value
    token = pseudonym(PiiType.EMAIL, PLANTED[PiiType.EMAIL][0], b"")  # not the project's key
    assert token not in stored
    first = next(c for c in contents if "Row 0:" in c)
    again = next(c for c in contents if "Repeat" in c)
    import re

    assert re.search(r"<EMAIL_[0-9a-f]{6}>", first).group() == re.search(r"<EMAIL_[0-9a-f]{6}>", again).group()
    for file in home.rglob("*"):
        if file.is_file():
            data = file.read_bytes()
            for value in planted:
                assert value.encode() not in data, (file, value)
    text = out.read_text(encoding="utf-8")
    assert "<EMAIL_" in text
    for value in planted:
        assert value not in text


@pytest.mark.slow
def test_round_subgroups_on_adult_match_fairlearn_on_the_stored_predictions(wb, home, tmp_path):
    """A tabular round on adult with `sex` and `race` declared sensitive: they are not features,
    and the per-group figures equal fairlearn's on the predictions the round stored."""
    from fairlearn.metrics import MetricFrame, demographic_parity_ratio, equalized_odds_difference
    from sklearn.metrics import accuracy_score
    from sqlalchemy import select

    from tests.helpers import set_final_labels
    from workbench.db.models import EvalPrediction, Item, ModelRun

    frame = _adult("adult.data").iloc[:3000].copy()
    frame.insert(0, "id", [f"a{i}" for i in range(len(frame))])
    path = tmp_path / "adult.csv"
    frame.to_csv(path, index=False)
    info = wb.projects.create(
        "adult",
        "tabular",
        ["<=50K", ">50K"],
        actor=OPERATOR,
        settings={"sensitive_cols": ["sex", "race"], "eval_fraction": 0.3},
    )
    report = wb.imports.run("adult", path, actor=OPERATOR, seed=1)
    assert report.ok, report.lines()[:3]
    set_final_labels(wb.engine, info.id, dict(zip(frame["id"], frame["income"])))
    result = wb.rounds.run_retrain("adult", actor=OPERATOR)
    with wb.engine.connect() as conn:
        run = conn.execute(select(ModelRun).order_by(ModelRun.id.desc())).first()
        rows = conn.execute(
            select(Item.external_id, Item.content, EvalPrediction.predicted)
            .join(EvalPrediction, EvalPrediction.item_id == Item.id)
            .where(EvalPrediction.model_run_id == run.id)
        ).all()
    assert '"exclude_columns":["race","sex"]' in run.featurizer  # sensitive columns are not features
    reports = {r.column: r for r in wb.health.subgroups("adult", actor=OPERATOR)}
    truth = dict(zip(frame["id"], frame["income"]))
    y_true = [truth[r.external_id] for r in rows]
    y_pred = [r.predicted for r in rows]
    for column in ("sex", "race"):
        groups = [r.content["features"][column] for r in rows]
        direct = MetricFrame(metrics=accuracy_score, y_true=y_true, y_pred=y_pred, sensitive_features=groups)
        got = reports[column]
        for group in got.groups:
            assert group.accuracy == pytest.approx(direct.by_group[group.group])
        t = [int(v == ">50K") for v in y_true]
        p = [int(v == ">50K") for v in y_pred]
        assert got.disparate_impact[">50K"] == pytest.approx(demographic_parity_ratio(t, p, sensitive_features=groups))
        assert got.equalized_odds_difference[">50K"] == pytest.approx(
            equalized_odds_difference(t, p, sensitive_features=groups)
        )
    assert reports["race"].small_groups  # some races have fewer than 30 eval items in 900
    assert result.metrics is not None and result.metrics.accuracy > 0.75
