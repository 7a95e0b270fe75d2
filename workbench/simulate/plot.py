"""Learning curves: one line per strategy (mean over seeds), a band of ±1 std, the full-pool line."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def plot_curves(report: dict[str, Any], path: Path | str, *, title: str | None = None) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(7.0, 4.2), dpi=110)
    styles = ["-", "--", "-.", ":", (0, (5, 1, 1, 1))]
    for i, (name, st) in enumerate(report["strategies"].items()):
        xs = [p["labels"] for p in st["curve"]]
        mean = [p["accuracy_mean"] for p in st["curve"]]
        std = [p["accuracy_std"] for p in st["curve"]]
        # Distinct dash patterns: strategies that rank alike (margin, entropy and least confidence
        # on two labels) draw the same curve, and would otherwise hide each other.
        (line,) = ax.plot(
            xs, mean, label=f"{name} (AUBC {st['aubc']:.3f})", linewidth=1.6, linestyle=styles[i % len(styles)]
        )
        ax.fill_between(
            xs,
            [m - s for m, s in zip(mean, std)],
            [m + s for m, s in zip(mean, std)],
            color=line.get_color(),
            alpha=0.18,
            linewidth=0,
        )
    full = report["full_pool_accuracy"]
    ax.axhline(full, color="black", linestyle="--", linewidth=1, label=f"full pool ({full:.3f})")
    ax.axhline(0.99 * full, color="grey", linestyle=":", linewidth=1, label="99% of full pool")
    s = report["settings"]
    ax.set_xlabel("labeled pool items")
    ax.set_ylabel(f"accuracy on {report['n_eval']} eval items (true labels)")
    batch = str(s["batch_size"]) + "".join(f", {size} from {start}" for start, size in s.get("batch_schedule") or ())
    ax.set_title(
        title
        or f"{report['dataset']}: mean ± 1 std over {len(s['seeds'])} seeds\n"
        f"overlap {s['overlap']}, adjudicator {s['adjudicator']}, batch {batch}",
        fontsize=9,
    )
    lows = [p["accuracy_mean"] - p["accuracy_std"] for st in report["strategies"].values() for p in st["curve"]]
    ax.set_ylim(max(0.0, min(lows + [full]) - 0.02), min(1.0, max(full, 0.0) + 0.03) if full > 0.5 else 1.0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
