"""`workbench rounds PROJECT [--json FILE]`: each round's eval accuracy with its interval, the
stop-set kappa against the previous round (with the bound it implies), strategy against the
control arm, and the stopping advice in one sentence (workbench.domain.stopping)."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from workbench.commands._common import open_workbench, operator

if TYPE_CHECKING:
    from workbench.domain.stopping import StoppingAdvice


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "rounds",
        help="the rounds so far and whether more labels are likely to change the model",
        description="Print every model run of the project: training labels, eval accuracy with its 95% "
        "interval, Cohen's kappa between this run's and the previous run's predictions on the "
        "project's stop set (a fixed random set of pool items) with the F-measure bound it implies "
        "(Bloodgood & Grothendieck), and the previous model's error on the items labeled since, "
        "ranked picks against the control arm; then the stopping advice.",
    )
    parser.add_argument("project")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the advice as JSON here")
    parser.set_defaults(func=run)


def _f(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def format_advice(advice: StoppingAdvice) -> str:
    header = ["run", "version", "labels", "eval acc", "95% interval", "kappa", "F bound", "stop set"]
    header += ["ranked err", "control err"]
    rows = []
    for r in advice.rounds:
        interval = "—" if r.ci_low is None else f"{r.ci_low:.3f}-{r.ci_high:.3f}"
        ranked = "—" if r.ranked_error is None else f"{r.ranked_error:.2f} of {r.n_ranked}"
        control = "—" if r.control_error is None else f"{r.control_error:.2f} of {r.n_control}"
        rows.append(
            [
                str(r.run_id),
                str(r.version_number),
                str(r.n_labels),
                _f(r.accuracy),
                interval,
                _f(r.kappa, 4),
                _f(r.f_bound),
                str(r.stop_n or "—"),
                ranked,
                control,
            ]
        )
    widths = [max([len(header[i])] + [len(row[i]) for row in rows]) for i in range(len(header))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in rows]
    if not rows:
        lines.append("(no model run yet)")
    lines += [advice.strategy_vs_control, ("STOP: " if advice.stop else "") + advice.sentence]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    wb = open_workbench(args)
    advice = wb.rounds.stopping(args.project, actor=operator())
    print(format_advice(advice))
    if args.json:
        args.json.write_text(json.dumps(asdict(advice), indent=2, default=str) + "\n")
        print(f"advice written to {args.json}")
    return 0
