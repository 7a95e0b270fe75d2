"""Training-round benchmark: TF-IDF + logistic regression on a synthetic text pool.

    python -m workbench.bench.training [--pool 100000] [--labels 5000] [--seed 0] [--skip-sklearn]

Times one round of the loop's ML side: featurize the project's items (cold: compute and write
the feature cache; warm: read it back memory-mapped, after hashing the contents for the cache
key), train logistic regression on the labeled items, evaluate on 1,000 eval items, and score
the whole pool. Also compares the TF-IDF featurizer with scikit-learn's TfidfVectorizer on the
same texts. Figures are from one run; the target is a whole round in at most 5 s.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from workbench.training.evaluation import evaluate
from workbench.training.featurizers import FeatureStore, feature_cache_key, make_featurizer
from workbench.training.models import make_model

N_EVAL_ITEMS = 1_000
BENCH_CLASSES = ["alpha", "beta", "gamma"]


def synthetic_corpus(
    n_docs: int, seed: int, *, vocabulary_size: int = 20_000, class_word_share: float = 0.15
) -> tuple[list[str], np.ndarray]:
    """Seeded texts whose words follow a Zipf law, with a class-dependent part.

    Each document has 10–30 words drawn from a Zipf(1.1) law over ``vocabulary_size`` words;
    each word is, with probability ``class_word_share``, replaced by a word drawn from the same
    law over a vocabulary order permuted per class, so the class shows in which words are
    frequent. Returns the texts and their labels (from :data:`BENCH_CLASSES`).
    """
    rng = np.random.default_rng(seed)
    words = np.array([f"w{rank}" for rank in range(vocabulary_size)])
    zipf = 1.0 / np.arange(1, vocabulary_size + 1) ** 1.1
    zipf /= zipf.sum()
    class_orders = np.stack([rng.permutation(vocabulary_size) for _ in BENCH_CLASSES])
    labels = rng.integers(0, len(BENCH_CLASSES), n_docs)
    lengths = rng.integers(10, 31, n_docs)
    document_of_word = np.repeat(np.arange(n_docs), lengths)
    shared_words = rng.choice(vocabulary_size, size=document_of_word.size, p=zipf)
    class_ranks = rng.choice(vocabulary_size, size=document_of_word.size, p=zipf)
    class_words = class_orders[labels[document_of_word], class_ranks]
    use_class_word = rng.random(document_of_word.size) < class_word_share
    tokens = words[np.where(use_class_word, class_words, shared_words)].tolist()
    ends = np.cumsum(lengths).tolist()
    starts = [0, *ends[:-1]]
    texts = [" ".join(tokens[start:end]) for start, end in zip(starts, ends, strict=True)]
    return texts, np.array(BENCH_CLASSES)[labels]


def _timed(function: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    result = function()
    return result, time.perf_counter() - start


STEPS = ("cache_key", "featurize_cold", "featurize_warm", "train", "evaluate", "predict_pool")


def bench_round_ml(n_pool: int = 100_000, n_labels: int = 5_000, seed: int = 0) -> dict:
    """Seconds for each step of a round on ``n_pool`` pool items plus 1,000 eval items.

    Returns
    -------
    dict
        Wall seconds ``<step>_s`` and process CPU seconds ``<step>_cpu_s`` for each step of
        :data:`STEPS`: ``cache_key`` (hash the items' contents), ``featurize_cold`` (fit TF-IDF,
        write the cache), ``featurize_warm`` (open the cache), ``train``, ``evaluate`` (predict
        the eval items and compute the metrics), ``predict_pool``; ``round_cold_s`` and
        ``round_warm_s`` (wall sums of the steps); sizes, the eval accuracy, and the 1-minute
        load average before the run (other processes slow every figure).
    """
    texts, labels = synthetic_corpus(n_pool + N_EVAL_ITEMS, seed)
    contents = [{"text": text} for text in texts]
    item_ids = list(range(len(contents)))
    labeled = np.random.default_rng(seed).choice(n_pool, size=n_labels, replace=False)
    featurizer = make_featurizer("text", {})
    figures: dict[str, Any] = {"n_pool": n_pool, "n_labels": n_labels, "n_eval": N_EVAL_ITEMS}
    figures["load_average_1min"] = os.getloadavg()[0]

    def step(name: str, function: Callable[[], Any]) -> Any:
        cpu_start = time.process_time()
        result, figures[f"{name}_s"] = _timed(function)
        figures[f"{name}_cpu_s"] = time.process_time() - cpu_start
        return result

    with tempfile.TemporaryDirectory(prefix="bench-features-") as cache_dir:
        key = step("cache_key", lambda: feature_cache_key("bench", featurizer.key(), item_ids, contents))
        step(
            "featurize_cold",
            lambda: FeatureStore(cache_dir).get_or_compute(key, lambda: featurizer.fit_transform(contents)),
        )
        features = step("featurize_warm", lambda: FeatureStore(cache_dir).get(key))
        pool, eval_features = features[:n_pool], features[n_pool:]
        model = step(
            "train", lambda: make_model({"type": "logreg"}, seed, BENCH_CLASSES).fit(pool[labeled], labels[labeled])
        )
        metrics = step(
            "evaluate", lambda: evaluate(labels[n_pool:].tolist(), model.predict_proba(eval_features), BENCH_CLASSES)
        )
        step("predict_pool", lambda: model.predict_proba(pool))
        figures["n_features"], figures["nnz"] = int(features.shape[1]), int(features.nnz)
    round_steps = figures["train_s"] + figures["evaluate_s"] + figures["predict_pool_s"]
    figures["round_cold_s"] = figures["cache_key_s"] + figures["featurize_cold_s"] + round_steps
    figures["round_warm_s"] = figures["cache_key_s"] + figures["featurize_warm_s"] + round_steps
    figures["eval_accuracy"] = metrics["accuracy"]
    return figures


def bench_tfidf_against_sklearn(n_docs: int = 101_000, seed: int = 0) -> dict:
    """Seconds to fit the workbench TF-IDF and scikit-learn's TfidfVectorizer (same settings)
    on the same synthetic texts, and whether the two matrices are equal."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    texts, _ = synthetic_corpus(n_docs, seed)
    featurizer = make_featurizer("text", {})
    ours, ours_s = _timed(lambda: featurizer.fit_transform([{"text": text} for text in texts]))
    vectorizer = TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), min_df=2, max_features=2**18, dtype=np.float32)
    reference, sklearn_s = _timed(lambda: vectorizer.fit_transform(texts))
    equal = ours.shape == reference.shape and abs(ours - reference).max() == 0
    return {
        "n_docs": n_docs,
        "workbench_s": ours_s,
        "sklearn_s": sklearn_s,
        "speedup": sklearn_s / ours_s,
        "equal": bool(equal),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool", type=int, default=100_000)
    parser.add_argument("--labels", type=int, default=5_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-sklearn", action="store_true", help="skip the TfidfVectorizer comparison")
    args = parser.parse_args(argv)
    figures = bench_round_ml(args.pool, args.labels, args.seed)
    print(f"round on {figures['n_pool']:,} pool + {figures['n_eval']:,} eval items, {figures['n_labels']:,} labels")
    print(f"  features: {figures['n_features']:,} columns, {figures['nnz']:,} non-zeros")
    print(f"  load average before the run: {figures['load_average_1min']:.2f} on {os.cpu_count()} CPUs")
    print(f"  {'step':<16} {'wall s':>8} {'cpu s':>8}")
    for name in STEPS:
        print(f"  {name:<16} {figures[name + '_s']:8.3f} {figures[name + '_cpu_s']:8.3f}")
    print(f"  {'round, cold':<16} {figures['round_cold_s']:8.3f}   (target <= 5 s)")
    print(f"  {'round, warm':<16} {figures['round_warm_s']:8.3f}   (target <= 5 s)")
    print(f"  eval accuracy {figures['eval_accuracy']:.3f}")
    if not args.skip_sklearn:
        comparison = bench_tfidf_against_sklearn(args.pool + N_EVAL_ITEMS, args.seed)
        print(
            f"TF-IDF fit on {comparison['n_docs']:,} texts: workbench {comparison['workbench_s']:.2f} s, "
            f"scikit-learn TfidfVectorizer {comparison['sklearn_s']:.2f} s "
            f"({comparison['speedup']:.1f}x), identical output: {comparison['equal']}"
        )


if __name__ == "__main__":
    main()
