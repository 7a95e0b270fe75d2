"""Drift between a reference sample (the items of a dataset version) and a new one (a batch).

Per numeric column: two-sample Kolmogorov–Smirnov (largest gap between the empirical CDFs) and
k-sample Anderson–Darling (weights the tails more), both from scipy.stats. Per categorical column:
chi-square on the contingency table of category by sample. Text: the same tests on length in
words, plus the Jensen–Shannon distance between the two word distributions. Every kind: a domain
classifier (logistic regression telling reference from new rows on the project's features); its
cross-validated ROC AUC is 0.5 when the samples cannot be told apart.

p-values are corrected for the number of tests with Holm's step-down method (Holm 1979): sort the
m p-values, multiply the i-th smallest by (m − i + 1), and carry the running maximum, so the
family-wise error rate stays at α.

Prediction drift (issue 15): the latest model's predicted labels on a new batch against its
predictions on the eval split. The 2 × K table of counts (sample by predicted label) goes to
Pearson's chi-square test of homogeneity (scipy.stats.chi2_contingency; Yates' correction when
K = 2): statistic Σ (observed − expected)² / expected, expected = row total × column total / n,
with K − 1 degrees of freedom. The batch is flagged when p < α.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, cast

import numpy as np

ALPHA = 0.05
MAX_ROWS = 20_000  # per sample: tests and the classifier run on a random subsample this large


@dataclass(frozen=True)
class DriftTest:
    feature: str
    test: str  # ks | anderson_darling | chi2 | js_distance
    statistic: float
    p_value: float | None
    p_adjusted: float | None
    drifted: bool


@dataclass(frozen=True)
class Histogram:
    """Shares of each sample per bin (numeric) or per category, for a chart of a drifted feature."""

    feature: str
    bins: tuple[str, ...]
    reference: tuple[float, ...]
    new: tuple[float, ...]


@dataclass(frozen=True)
class DriftReport:
    n_reference: int
    n_new: int
    tests: tuple[DriftTest, ...]
    domain_auc: float | None  # cross-validated AUC of a reference-vs-new classifier
    drifted_features: tuple[str, ...]
    histograms: tuple[Histogram, ...] = ()  # one per drifted feature

    @property
    def drifted(self) -> bool:
        return bool(self.drifted_features) or (self.domain_auc is not None and self.domain_auc > 0.6)


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm-adjusted p-values, in the input order."""
    p = np.asarray(p_values, dtype=float)
    m = len(p)
    if m == 0:
        return p
    order = np.argsort(p)
    adjusted = np.minimum(1.0, np.maximum.accumulate(p[order] * (m - np.arange(m))))
    out = np.empty(m)
    out[order] = adjusted
    return out


def _subsample(values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return values if len(values) <= MAX_ROWS else values[rng.choice(len(values), MAX_ROWS, replace=False)]


def numeric_tests(name: str, reference: np.ndarray, new: np.ndarray) -> list[tuple[str, str, float, float]]:
    from scipy import stats

    a, b = reference[np.isfinite(reference)], new[np.isfinite(new)]
    if len(a) < 2 or len(b) < 2:
        return []
    ks = stats.ks_2samp(a, b)
    out = [(name, "ks", float(ks.statistic), float(ks.pvalue))]
    if np.ptp(np.concatenate([a, b])) > 0:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # p-values outside [0.001, 0.25] are capped, and said so
            ad = stats.anderson_ksamp(
                [a, b],
                method=stats.PermutationMethod(n_resamples=199, random_state=0) if len(a) + len(b) < 400 else None,
            )
        out.append((name, "anderson_darling", float(ad.statistic), float(ad.pvalue)))
    return out


def categorical_test(
    name: str, reference: Sequence[object], new: Sequence[object]
) -> list[tuple[str, str, float, float]]:
    from scipy import stats

    categories = sorted({str(v) for v in reference} | {str(v) for v in new})
    if len(categories) < 2:
        return []
    index = {c: i for i, c in enumerate(categories)}
    table = np.zeros((2, len(categories)))
    for row, values in enumerate((reference, new)):
        for v in values:
            table[row, index[str(v)]] += 1
    table = table[:, table.sum(axis=0) > 0]
    result = stats.chi2_contingency(table)
    return [(name, "chi2", float(result.statistic), float(result.pvalue))]


def text_tests(reference: Sequence[str], new: Sequence[str]) -> list[tuple[str, str, float, float | None]]:
    from collections import Counter

    from scipy.spatial.distance import jensenshannon

    lengths = [np.asarray([len(t.split()) for t in sample], dtype=float) for sample in (reference, new)]
    out: list[tuple[str, str, float, float | None]] = list(numeric_tests("text_length", *lengths))
    counts = [Counter(w for t in sample for w in t.lower().split()) for sample in (reference, new)]
    vocabulary = sorted(set(counts[0]) | set(counts[1]))
    if vocabulary:
        p = np.asarray([counts[0][w] for w in vocabulary], dtype=float)
        q = np.asarray([counts[1][w] for w in vocabulary], dtype=float)
        out.append(("vocabulary", "js_distance", float(jensenshannon(p, q, base=2)), None))
    return out


def domain_auc(reference: np.ndarray, new: np.ndarray, *, seed: int = 0) -> float | None:
    """Cross-validated ROC AUC of a logistic regression telling the two samples apart."""
    from scipy import sparse
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import cross_val_predict
    from sklearn.preprocessing import StandardScaler

    if min(reference.shape[0], new.shape[0]) < 10:
        return None
    X = sparse.vstack([reference, new]) if sparse.issparse(reference) else np.vstack([reference, new])
    if not sparse.issparse(X):
        X = StandardScaler().fit_transform(np.nan_to_num(np.asarray(X, dtype=float)))
    y = np.r_[np.zeros(reference.shape[0]), np.ones(new.shape[0])]
    folds = int(min(5, reference.shape[0], new.shape[0]))
    proba = cross_val_predict(LogisticRegression(max_iter=500, C=1.0), X, y, cv=folds, method="predict_proba")[:, 1]
    return float(roc_auc_score(y, proba))


def compare(
    reference: dict[str, Sequence[object]],
    new: dict[str, Sequence[object]],
    *,
    numeric: Sequence[str] = (),
    categorical: Sequence[str] = (),
    text: str | None = None,
    features: tuple[np.ndarray, np.ndarray] | None = None,
    alpha: float = ALPHA,
    seed: int = 0,
) -> DriftReport:
    """Drift between two samples given column-wise (name -> values); `features` is the pair of
    feature matrices the domain classifier uses (reference rows, new rows)."""
    rng = np.random.default_rng(seed)
    raw: list[tuple[str, str, float, float | None]] = []
    for name in numeric:
        a = _subsample(np.asarray(reference[name], dtype=float), rng)
        b = _subsample(np.asarray(new[name], dtype=float), rng)
        raw += numeric_tests(name, a, b)
    for name in categorical:
        raw += categorical_test(name, list(reference[name]), list(new[name]))
    if text is not None:  # the text column holds strings
        raw += text_tests(cast("list[str]", list(reference[text])), cast("list[str]", list(new[text])))
    tested = [(i, p) for i, (_, _, _, p) in enumerate(raw) if p is not None]
    adjusted = dict(zip([i for i, _ in tested], holm([p for _, p in tested])))
    tests = tuple(
        DriftTest(
            name,
            test,
            stat,
            p,
            float(adjusted[i]) if i in adjusted else None,
            bool(i in adjusted and adjusted[i] < alpha),
        )
        for i, (name, test, stat, p) in enumerate(raw)
    )
    auc = None
    if features is not None:
        a, b = features
        if a.shape[0] > MAX_ROWS:
            a = a[np.sort(rng.choice(a.shape[0], MAX_ROWS, replace=False))]
        if b.shape[0] > MAX_ROWS:
            b = b[np.sort(rng.choice(b.shape[0], MAX_ROWS, replace=False))]
        auc = domain_auc(a, b, seed=seed)
    drifted = tuple(dict.fromkeys(t.feature for t in tests if t.drifted))
    histograms = tuple(
        _histogram(name, reference, new, numeric=name in numeric or name == "text_length", text=text)
        for name in drifted
    )
    n_ref = len(next(iter(reference.values()))) if reference else 0
    n_new = len(next(iter(new.values()))) if new else 0
    return DriftReport(n_ref, n_new, tests, auc, drifted, histograms)


def _histogram(
    name: str,
    reference: dict[str, Sequence[object]],
    new: dict[str, Sequence[object]],
    *,
    numeric: bool,
    text: str | None,
    bins: int = 20,
) -> Histogram:
    if name == "text_length" and text is not None:
        a = np.asarray([len(str(t).split()) for t in reference[text]], dtype=float)
        b = np.asarray([len(str(t).split()) for t in new[text]], dtype=float)
    elif numeric:
        a = np.asarray(reference[name], dtype=float)
        b = np.asarray(new[name], dtype=float)
    else:
        from collections import Counter

        ca, cb = Counter(map(str, reference[name])), Counter(map(str, new[name]))
        top = [c for c, _ in (ca + cb).most_common(20)]
        return Histogram(
            name,
            tuple(top),
            tuple(ca[c] / max(1, sum(ca.values())) for c in top),
            tuple(cb[c] / max(1, sum(cb.values())) for c in top),
        )
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    both = np.concatenate([a, b])
    edges = np.histogram_bin_edges(both, bins=bins) if len(both) else np.array([0.0, 1.0])
    ha, _ = np.histogram(a, bins=edges)
    hb, _ = np.histogram(b, bins=edges)
    labels = tuple(f"{edges[i]:.4g}" for i in range(len(edges) - 1))
    return Histogram(name, labels, tuple((ha / max(1, ha.sum())).tolist()), tuple((hb / max(1, hb.sum())).tolist()))


@dataclass(frozen=True)
class LabelShare:
    """One predicted label's count and share in each sample."""

    label: str
    reference_count: int
    new_count: int
    reference_share: float
    new_share: float


@dataclass(frozen=True)
class PredictionDrift:
    """The share of each predicted label on a new batch against the eval split (reference), and
    the chi-square test of homogeneity on their counts (None when a sample is empty or only one
    label was predicted)."""

    n_reference: int
    n_new: int
    shares: tuple[LabelShare, ...]
    statistic: float | None
    p_value: float | None
    dof: int | None
    drifted: bool
    alpha: float = ALPHA
    model_run_id: int | None = None  # the run whose predictions were counted (set when read back)

    @property
    def largest_shift(self) -> LabelShare | None:
        """The label whose share moved most."""
        return max(self.shares, key=lambda s: abs(s.new_share - s.reference_share), default=None)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("model_run_id")
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any], *, model_run_id: int | None = None) -> PredictionDrift:
        shares = tuple(LabelShare(**s) for s in data.get("shares", ()))
        fields = {k: data[k] for k in ("n_reference", "n_new", "statistic", "p_value", "dof", "drifted", "alpha")}
        return cls(shares=shares, model_run_id=model_run_id, **fields)


def prediction_drift(
    labels: Sequence[str], reference: Iterable[str], new: Iterable[str], *, alpha: float = ALPHA
) -> PredictionDrift:
    """Shares of each of `labels` among the predicted labels `new` against `reference`, with
    Pearson's chi-square test of homogeneity on the 2 × K counts (labels predicted in neither
    sample are left out of the test)."""
    from scipy import stats

    a, b = Counter(map(str, reference)), Counter(map(str, new))
    names = list(dict.fromkeys([*map(str, labels), *sorted(set(a) | set(b))]))
    n_a, n_b = sum(a.values()), sum(b.values())
    shares = tuple(
        LabelShare(name, a[name], b[name], a[name] / n_a if n_a else 0.0, b[name] / n_b if n_b else 0.0)
        for name in names
    )
    table = np.asarray([[a[name] for name in names], [b[name] for name in names]], dtype=float)
    table = table[:, table.sum(axis=0) > 0]
    if n_a == 0 or n_b == 0 or table.shape[1] < 2:
        return PredictionDrift(n_a, n_b, shares, None, None, None, False, alpha)
    result = stats.chi2_contingency(table)
    p = float(result.pvalue)
    return PredictionDrift(n_a, n_b, shares, float(result.statistic), p, int(result.dof), p < alpha, alpha)
