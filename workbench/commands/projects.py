"""`workbench project`: create, list, update, archive, unarchive and delete projects."""

from __future__ import annotations

import argparse
import json

from workbench.commands._common import open_workbench, operator
from workbench.domain import ProjectKind


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "project",
        help="create, change, archive and delete projects",
        description="Create, list, change, archive and delete labeling projects.",
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
    update = verbs.add_parser(
        "update",
        help="change a project's overlap, strategy, labels or settings (audited)",
        description="Change a running project; every change given is made in one transaction and "
        "audited. Overlap applies to items not yet complete. A retired label keeps its annotations "
        "and final labels but is no longer offered. A rename makes current annotations and final "
        "labels read the new name; dataset versions keep the name they were cut with.",
    )
    update.add_argument("name", metavar="PROJECT")
    update.add_argument("--overlap", type=int, help="annotations per item, 1..10")
    update.add_argument("--strategy", help="a strategy the project's model can serve")
    update.add_argument("--add-label", action="append", default=[], metavar="L", help="repeatable")
    update.add_argument("--retire-label", action="append", default=[], metavar="L", help="repeatable")
    update.add_argument("--rename-label", action="append", default=[], metavar="OLD=NEW", help="repeatable")
    update.add_argument(
        "--settings",
        help='JSON object of settings, e.g. {"lease_ttl_s": 900, "min_dwell_ms": 300, "random_share": 0.1, '
        '"eval_fraction": 0.1}',
    )
    update.set_defaults(func=run_update)
    archive = verbs.add_parser("archive", help="make a project read-only and hide it from annotators")
    archive.add_argument("name", metavar="PROJECT")
    archive.set_defaults(func=run_archive)
    unarchive = verbs.add_parser("unarchive", help="open an archived project for work again")
    unarchive.add_argument("name", metavar="PROJECT")
    unarchive.set_defaults(func=run_unarchive)
    remove = verbs.add_parser(
        "delete",
        help="export a project whole, then delete it",
        description="Write a full export (items, annotations, adjudications, versions, the audit "
        "log) to a zip file, then delete every row of the project. Refused while a round runs.",
    )
    remove.add_argument("name", metavar="PROJECT")
    remove.add_argument("--confirm", required=True, metavar="PROJECT", help="the project's name, typed again")
    remove.add_argument("--export-to", metavar="FILE.zip", help="where the export goes (default: under the home)")
    remove.set_defaults(func=run_delete)
    register_member(verbs)


def run_create(args: argparse.Namespace) -> int:
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


def run_list(args: argparse.Namespace) -> int:
    wb = open_workbench(args)
    for project in wb.projects.list(actor=operator()):
        counts = wb.projects.progress(project.name, actor=operator())
        total, done = counts.total(), counts.in_state("final")
        archived = "\tarchived" if project.archived else ""
        print(f"{project.name}\t{project.kind}\t{total} items\t{done} final{archived}")
    return 0


def run_guidelines(args: argparse.Namespace) -> int:
    from pathlib import Path

    from workbench.domain import Actor
    from workbench.errors import WorkbenchError

    wb = open_workbench(args)
    operator = Actor.operator()
    if args.file is None:
        if args.label_notes is not None:
            raise WorkbenchError("--label-notes needs --file (a new version is saved with both)")
        current = wb.guidelines.current(wb.projects.get(args.name, actor=operator), actor=operator)
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


def run_update(args: argparse.Namespace) -> int:
    from workbench.errors import WorkbenchError

    settings = None
    if args.settings is not None:
        try:
            settings = json.loads(args.settings)
        except json.JSONDecodeError as exc:
            raise WorkbenchError(f"--settings is not JSON: {exc.msg} at character {exc.pos}") from None
        if not isinstance(settings, dict):
            raise WorkbenchError('--settings must be a JSON object, e.g. {"lease_ttl_s": 900}')
    result = open_workbench(args).project_settings.update(
        args.name,
        actor=operator(),
        overlap=args.overlap,
        strategy=args.strategy,
        add_labels=args.add_label,
        retire_labels=args.retire_label,
        rename_labels=args.rename_label,
        settings=settings,
    )
    for change in result.changes:
        print(f"{args.name}: {change}")
    return 0


def run_archive(args: argparse.Namespace) -> int:
    open_workbench(args).project_settings.archive(args.name, actor=operator())
    print(f"archived {args.name}: read-only, hidden from annotators and reviewers")
    return 0


def run_unarchive(args: argparse.Namespace) -> int:
    open_workbench(args).project_settings.unarchive(args.name, actor=operator())
    print(f"unarchived {args.name}")
    return 0


def run_delete(args: argparse.Namespace) -> int:
    result = open_workbench(args).project_settings.delete(
        args.name, confirm=args.confirm, actor=operator(), export_to=args.export_to
    )
    rows = sum(result.deleted.values())
    print(f"exported {result.name} to {result.export_path} (sha256 {result.export_sha256[:12]})")
    print(f"deleted {result.name}: {rows} rows, {result.files_removed} model files")
    return 0


# -- project member add|remove|list -------------------------------------------------------------
def register_member(verbs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    member = verbs.add_parser(
        "member",
        help="add, remove or list a project's annotators and reviewers",
        description="Annotators see, claim from and read only the projects they are members of; reviewers "
        "review, browse and export only theirs. Admins see every project and are never members.",
    )
    actions = member.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = actions.add_parser("add", help="make a user a member (again: change their project role)")
    add.add_argument("project", metavar="PROJECT")
    add.add_argument("user", metavar="USER")
    add.add_argument(
        "--role", choices=["annotator", "reviewer"], help="their role on this project (default: their user role)"
    )
    add.set_defaults(func=run_member_add)
    remove = actions.add_parser("remove", help="take a user off the project (their labels stay)")
    remove.add_argument("project", metavar="PROJECT")
    remove.add_argument("user", metavar="USER")
    remove.set_defaults(func=run_member_remove)
    listing = actions.add_parser("list", help="list the members of a project")
    listing.add_argument("project", metavar="PROJECT")
    listing.add_argument("user", metavar="USER", nargs="?", help="only this user")
    listing.set_defaults(func=run_member_list)


def run_member_add(args: argparse.Namespace) -> int:
    info = open_workbench(args).members.add(args.project, args.user, role=args.role, actor=operator())
    article = "an" if info.role.value == "annotator" else "a"
    print(f"{info.user} is {article} {info.role.value} member of {info.project}")
    return 0


def run_member_remove(args: argparse.Namespace) -> int:
    open_workbench(args).members.remove(args.project, args.user, actor=operator())
    print(f"{args.user} is no longer a member of {args.project}")
    return 0


def run_member_list(args: argparse.Namespace) -> int:
    members = open_workbench(args).members.list(args.project, user=args.user, actor=operator())
    if not members:
        print(f"{args.project} has no members{' of that name' if args.user else ''} (admins see it regardless)")
    for m in members:
        print(f"{m.user}\t{m.role.value}\tadded {m.added_at:%Y-%m-%d %H:%M} UTC")
    return 0
