"""`workbench model register|export PROJECT --run N`: a round's model in the MLflow registry, or
written out for serving."""

from __future__ import annotations

import argparse
from pathlib import Path

from workbench.commands._common import open_workbench, operator


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "model",
        help="register a run's model in MLflow, or export it for serving",
        description="A model run of a round, outside the Workbench.",
    )
    actions = parser.add_subparsers(dest="model_command", metavar="ACTION", required=True)
    reg = actions.add_parser(
        "register",
        help="register the run's model in the MLflow model registry",
        description="Register the model of a run that its round logged to MLflow (needs a tracking "
        "server or a database-backed store, e.g. `mlflow server --backend-store-uri sqlite:///mlflow.db`).",
    )
    reg.add_argument("project")
    reg.add_argument("--run", type=int, required=True, help="the Workbench model run id")
    reg.add_argument("--name", help="registered model name (default: the project's name)")
    reg.set_defaults(func=run_register)
    exp = actions.add_parser(
        "export",
        help="write the model, featurizer, label set, metrics and a predict.py into a directory",
        description="Export a model run for serving. The export is checked against the run's stored "
        "eval predictions before it is written.",
    )
    exp.add_argument("project")
    exp.add_argument("--run", type=int, required=True, help="the Workbench model run id")
    exp.add_argument("--out", type=Path, required=True, help="a new (or empty) directory")
    exp.set_defaults(func=run_export)


def run_register(args: argparse.Namespace) -> int:
    result = open_workbench(args).models.register(args.project, args.run, name=args.name, actor=operator())
    print(f"registered {result.name!r} version {result.version} (MLflow run {result.mlflow_run_id}) at {result.uri}")
    return 0


def run_export(args: argparse.Namespace) -> int:
    result = open_workbench(args).models.export(args.project, args.run, args.out, actor=operator())
    print(
        f"exported run {args.run} to {result.directory} ({', '.join(result.files)}); "
        f"it reproduces the run's {result.n_eval_checked} eval predictions"
    )
    return 0
