"""`workbench health`: the data health report of a project's newest batch, and drift."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from workbench.commands._common import open_workbench, operator

if TYPE_CHECKING:
    from workbench.health.drift import DriftReport, PredictionDrift
    from workbench.health.subgroups import SubgroupReport


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "health",
        help="duplicates, leakage, outliers, personal data and drift",
        description="Check the items imported since the latest dataset version (or every item, before "
        "the first version) against the whole project, store the flags, and print the report.",
    )
    parser.add_argument("project")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the report as JSON")
    parser.add_argument("--drift", nargs=2, type=int, metavar=("V1", "V2"), help="compare two dataset versions instead")
    parser.add_argument("--no-store", action="store_true", help="report only; leave the item flags as they are")
    parser.add_argument(
        "--subgroups",
        action="store_true",
        help="instead: the latest model run's eval metrics per group of the sensitive columns",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    wb = open_workbench(args)
    if args.subgroups:
        reports = wb.health.subgroups(args.project, actor=operator())
        if not reports:
            print("no sensitive columns: set them with `workbench import ... --sensitive-cols A,B`")
        for subgroup in reports:
            _print_subgroups(subgroup)
        if args.json:
            args.json.write_text(json.dumps([asdict(r) for r in reports], indent=2, default=str))
            print(f"wrote {args.json}")
        return 0
    if args.drift:
        report = wb.health.drift(args.project, actor=operator(), reference=args.drift[0], new=args.drift[1])
        _print_drift(report)
        payload = asdict(report)
    else:
        health = wb.health.check(args.project, actor=operator(), store=not args.no_store)
        print(f"{health.n_batch} item(s) checked against {health.n_existing} existing: {health.summary()}")
        for pair in health.duplicates[:20]:
            kind = "exact" if pair.exact else f"near {pair.similarity:.2f}"
            leak = "  LEAKAGE (pool/eval)" if pair.leakage else ""
            print(f"  duplicate ({kind}): {pair.first} ~ {pair.second}{leak}")
        if len(health.duplicates) > 20:
            print(f"  ... {health.exact_duplicates + health.near_duplicates - 20} more pair(s)")
        outliers = [f for f in health.flags if f.kind.value == "outlier"]
        for flag in outliers[:10]:
            print(f"  outlier: {flag.external_id}: {flag.reason}")
        payload = asdict(health)
        try:
            drift = wb.health.drift(args.project, actor=operator())
        except Exception as exc:  # no version yet: nothing to drift from
            print(f"drift: not measured ({exc})")
        else:
            _print_drift(drift)
            payload["drift"] = asdict(drift)
        predicted = wb.health.prediction_drift(args.project, actor=operator())
        _print_prediction_drift(predicted)
        if predicted is not None:
            payload["prediction_drift"] = asdict(predicted)
    if args.json:
        args.json.write_text(json.dumps(payload, indent=2, default=str))
        print(f"wrote {args.json}")
    return 0


def _print_drift(report: DriftReport) -> None:
    auc = "n/a" if report.domain_auc is None else f"{report.domain_auc:.3f}"
    verdict = ("drift in " + ", ".join(report.drifted_features)) if report.drifted_features else "no feature drifted"
    print(f"drift: {report.n_new} new vs {report.n_reference} reference items; {verdict}; domain classifier AUC {auc}")
    for test in report.tests:
        if test.drifted:
            print(f"  {test.feature}: {test.test} = {test.statistic:.4g}, Holm-adjusted p = {test.p_adjusted:.3g}")


def _print_prediction_drift(report: PredictionDrift | None) -> None:
    if report is None:
        print("prediction drift: not measured (no round has trained a model)")
        return
    if report.p_value is None:
        test = "no test (a sample is empty or one label was predicted)"
    else:
        test = f"chi-square = {report.statistic:.4g}, dof {report.dof}, p = {report.p_value:.3g}"
    verdict = "DRIFTED" if report.drifted else "no drift"
    print(
        f"prediction drift (model run {report.model_run_id}): {report.n_new} new vs {report.n_reference} eval "
        f"items; {test}; {verdict} at alpha {report.alpha}"
    )
    for share in report.shares:
        print(
            f"  {share.label:<20} eval {share.reference_count:>7} ({share.reference_share:6.1%})"
            f"   new {share.new_count:>7} ({share.new_share:6.1%})"
        )


def _print_subgroups(report: SubgroupReport) -> None:
    print(f"{report.column}: worst group {report.worst_group!r} at accuracy {report.worst_accuracy:.3f}")
    for group in report.groups:
        rates = ", ".join(f"{label} {rate:.2f}" for label, rate in group.selection_rate.items())
        small = "  (fewer than 30 eval items)" if group.group in report.small_groups else ""
        print(f"  {group.group:<24} n={group.size:<6} accuracy {group.accuracy:.3f}  selection: {rates}{small}")
    for label in report.disparate_impact:
        print(
            f"  {label}: disparate-impact ratio {report.disparate_impact[label]:.3f}, "
            f"equalized-odds difference {report.equalized_odds_difference[label]:.3f}"
        )
