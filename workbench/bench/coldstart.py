"""Cold-start experiment on iris: does the seed set decide whether uncertainty sampling pays off?

    python -m workbench.bench.coldstart [--seeds 30]

Three arms, each labeling a 6-item seed set and then one item at a time up to the budget, with a
logistic regression retrained after every label and scored on a held-out third of iris:

- ``random``: random seed, random queries (passive learning, the baseline);
- ``margin_random_seed``: random seed, then margin sampling;
- ``margin_cold_start_seed``: a class-covering seed from ``strategies.cold_start`` (one typical
  item per k-means cluster of the features), then margin sampling.

A random 6-item seed misses one of the three classes about a quarter of the time; margin sampling
then keeps querying along the boundary it knows and can take long to find the missing class.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

import numpy as np

from strategies import REGISTRY, cold_start

ARMS = ("random", "margin_random_seed", "margin_cold_start_seed")


@dataclass(frozen=True)
class ColdStartExperiment:
    """Results of :func:`run_iris_coldstart_experiment`.

    Attributes
    ----------
    mean_accuracy : dict
        Arm -> test accuracy averaged over every budget and every seed.
    learning_curves : dict
        Arm -> mean test accuracy (over seeds) at each budget in ``budgets``.
    seed_covers_all_classes : dict
        Arm -> share of runs whose initial seed set contains all three classes.
    budgets : list of int
        Numbers of labels at which accuracy was measured.
    seeds : int
        Number of repetitions (random splits) per arm.
    """

    mean_accuracy: dict[str, float]
    learning_curves: dict[str, list[float]]
    seed_covers_all_classes: dict[str, float]
    budgets: list[int]
    seeds: int


def run_iris_coldstart_experiment(*, seeds: int = 30, seed_size: int = 6, budget: int = 30) -> ColdStartExperiment:
    """Run the three arms on ``seeds`` random train/test splits of iris (test = 50 items).

    Parameters
    ----------
    seeds : int
        Repetitions; repetition ``s`` uses ``np.random.default_rng(s)`` for its split, and every
        arm of a repetition sees the same split (and the two random-seed arms the same seed set).
    seed_size : int
        Labels in the initial seed set.
    budget : int
        Labels at the end; accuracy is recorded at every budget from ``seed_size`` to ``budget``.
    """
    from sklearn.datasets import load_iris
    from threadpoolctl import threadpool_limits

    features, labels = load_iris(return_X_y=True)
    budgets = list(range(seed_size, budget + 1))
    curves = {arm: np.zeros((seeds, len(budgets))) for arm in ARMS}
    coverage = {arm: 0 for arm in ARMS}
    with threadpool_limits(limits=1):  # thousands of tiny fits: BLAS threads only add contention
        for repetition in range(seeds):
            for arm, (curve, covers_all) in _run_repetition(repetition, features, labels, seed_size, budget).items():
                curves[arm][repetition] = curve
                coverage[arm] += covers_all
    return ColdStartExperiment(
        mean_accuracy={arm: float(curves[arm].mean()) for arm in ARMS},
        learning_curves={arm: curves[arm].mean(axis=0).round(4).tolist() for arm in ARMS},
        seed_covers_all_classes={arm: coverage[arm] / seeds for arm in ARMS},
        budgets=budgets,
        seeds=seeds,
    )


def _run_repetition(
    repetition: int,
    features: np.ndarray,
    labels: np.ndarray,
    seed_size: int,
    budget: int,
) -> dict[str, tuple[list[float], bool]]:
    """One random split: each arm's learning curve, and whether its seed set covers all classes."""
    rng = np.random.default_rng(repetition)
    order = rng.permutation(len(labels))
    test, pool = order[:50], order[50:]
    mean, scale = features[pool].mean(axis=0), features[pool].std(axis=0)
    pool_features = ((features[pool] - mean) / scale).astype(np.float32)
    test_features = ((features[test] - mean) / scale).astype(np.float32)
    random_seed = rng.choice(len(pool), size=seed_size, replace=False)
    covering_seed = cold_start(pool_features, seed_size, rng=rng).indices
    seed_sets = {"random": random_seed, "margin_random_seed": random_seed, "margin_cold_start_seed": covering_seed}
    n_classes = np.unique(labels).size
    return {
        arm: (
            _learning_curve(
                pool_features,
                labels[pool],
                test_features,
                labels[test],
                seed_sets[arm],
                strategy="random" if arm == "random" else "margin",
                budget=budget,
                rng=np.random.default_rng(1000 + repetition),
            ),
            np.unique(labels[pool][seed_sets[arm]]).size == n_classes,
        )
        for arm in ARMS
    }


def _learning_curve(
    pool_features: np.ndarray,
    pool_labels: np.ndarray,
    test_features: np.ndarray,
    test_labels: np.ndarray,
    seed_set: np.ndarray,
    *,
    strategy: str,
    budget: int,
    rng: np.random.Generator,
) -> list[float]:
    """Test accuracy after each label, from the seed set up to ``budget`` labels."""
    from sklearn.linear_model import LogisticRegression

    labeled = list(seed_set)
    accuracies = []
    while True:
        known_classes = np.unique(pool_labels[labeled])
        model = None
        if known_classes.size >= 2:
            model = LogisticRegression(max_iter=1000).fit(pool_features[labeled], pool_labels[labeled])
            accuracies.append(float((model.predict(test_features) == test_labels).mean()))
        else:
            accuracies.append(float((test_labels == known_classes[0]).mean()))
        if len(labeled) == budget:
            return accuracies
        unlabeled = np.setdiff1d(np.arange(len(pool_labels)), labeled)
        if strategy == "random" or model is None:
            pick = REGISTRY["random"](unlabeled.size, 1, rng=rng).indices[0]
        else:
            pick = REGISTRY[strategy](model.predict_proba(pool_features[unlabeled]), 1, rng=rng).indices[0]
        labeled.append(int(unlabeled[pick]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m workbench.bench.coldstart",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--seeds", type=int, default=30, help="repetitions (random splits)")
    parser.add_argument("--seed-size", type=int, default=6, help="labels in the initial seed set")
    parser.add_argument("--budget", type=int, default=30, help="labels at the end")
    args = parser.parse_args(argv)
    result = run_iris_coldstart_experiment(seeds=args.seeds, seed_size=args.seed_size, budget=args.budget)
    print(f"iris, {result.seeds} splits, budgets {result.budgets[0]}..{result.budgets[-1]}")
    print(f"{'arm':<24}{'mean accuracy':>14}{'seed covers 3 classes':>23}")
    for arm in ARMS:
        print(f"{arm:<24}{result.mean_accuracy[arm]:>14.4f}{result.seed_covers_all_classes[arm]:>23.2f}")
    print("learning curves (mean accuracy at each budget):")
    for arm in ARMS:
        print(f"  {arm:<24}" + " ".join(f"{value:.3f}" for value in result.learning_curves[arm]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
