"""`workbench project`: create and list projects."""

from __future__ import annotations

import json

from workbench.commands._common import open_workbench, operator
from workbench.domain import ProjectKind


def register(subparsers) -> None:  # noqa: ANN001
    parser = subparsers.add_parser(
        "project", help="create and list projects", description="Create and list labeling projects."
    )
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    create = verbs.add_parser("create", help="create a project")
    create.add_argument("name")
    create.add_argument("--kind", choices=[k.value for k in ProjectKind], required=True)
    create.add_argument("--labels", required=True, help="comma-separated label set, e.g. spam,ham")
    create.add_argument("--overlap", type=int, default=2, help="annotations per item (default 2)")
    create.add_argument(
        "--strategy",
        help="query strategy (default: margin_diversity for text on sentence embeddings, margin otherwise)",
    )
    create.add_argument("--settings", type=json.loads, default=None, help='JSON, e.g. {"eval_fraction": 0.1}')
    create.set_defaults(func=run_create)
    verbs.add_parser("list", help="list projects").set_defaults(func=run_list)
    guide = verbs.add_parser(
        "guidelines",
        help="show or set a project's labeling guidelines",
        description="Without --file, print the current guidelines. With --file, save "
        "the file's Markdown as a new version (earlier versions are kept).",
    )
    guide.add_argument("name", metavar="PROJECT")
    guide.add_argument("--file", help="a Markdown file with the new guidelines")
    guide.add_argument(
        "--label-notes",
        type=json.loads,
        default=None,
        help='JSON: a short description per label, e.g. {"spam": "unsolicited ads"}',
    )
    guide.set_defaults(func=run_guidelines)


def run_create(args) -> int:  # noqa: ANN001
    project = open_workbench(args).projects.create(
        args.name,
        args.kind,
        args.labels.split(","),
        overlap=args.overlap,
        strategy=args.strategy,
        settings=args.settings,
        actor=operator(),
    )
    print(f"created {project.name} ({project.kind}, labels: {', '.join(project.labels)}, overlap {project.overlap})")
    return 0


def run_list(args) -> int:  # noqa: ANN001
    wb = open_workbench(args)
    for project in wb.projects.list(actor=operator()):
        counts = wb.projects.progress(project.name, actor=operator())
        total, done = counts.total(), counts.in_state("final")
        print(f"{project.name}\t{project.kind}\t{total} items\t{done} final")
    return 0


def run_guidelines(args) -> int:  # noqa: ANN001
    from pathlib import Path

    from workbench.domain import Actor
    from workbench.errors import WorkbenchError

    wb = open_workbench(args)
    operator = Actor.operator()
    if args.file is None:
        if args.label_notes is not None:
            raise WorkbenchError("--label-notes needs --file (a new version is saved with both)")
        current = wb.guidelines.current(wb.projects.get(args.name, actor=operator()), actor=operator)
        if current is None:
            print(f"{args.name} has no guidelines yet; set them with --file FILE.md")
            return 0
        print(f"# version {current.version} ({current.created_at:%Y-%m-%d %H:%M} UTC)")
        print(current.text)
        for label, note in current.label_notes.items():
            print(f"- {label}: {note}")
        return 0
    path = Path(args.file)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise WorkbenchError(f"cannot read {path.name}: {type(exc).__name__}") from None
    saved = wb.guidelines.update(args.name, text, actor=operator, label_notes=args.label_notes)
    print(f"saved guidelines version {saved.version} for {args.name} ({len(saved.text)} characters)")
    return 0
