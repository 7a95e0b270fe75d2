"""`workbench quarantine`: items taken out of the queue and rounds because their image could not be
shown or featurized; list them with the reason, release one once its file is fixed."""

from __future__ import annotations

import argparse

from workbench.commands._common import open_workbench, operator


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("quarantine", help="list or release quarantined items", description=__doc__)
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    listing = verbs.add_parser("list", help="quarantined items of a project, newest first, with the reason")
    listing.add_argument("project")
    listing.set_defaults(func=run_list)
    release = verbs.add_parser("release", help="put an item back in the state it had")
    release.add_argument("project")
    release.add_argument("external_id", help="the item's id in the project (as imported)")
    release.set_defaults(func=run_release)


def run_list(args: argparse.Namespace) -> int:
    items = open_workbench(args).quarantine.list_quarantined(args.project, actor=operator())
    for q in items:
        print(f"{q.external_id}\t{q.source.value}\t{q.created_at:%Y-%m-%d %H:%M}\t{q.reason}")
    if not items:
        print(f"no quarantined items in {args.project}")
    return 0


def run_release(args: argparse.Namespace) -> int:
    from workbench.errors import NotFound

    wb = open_workbench(args)
    items = {q.external_id: q for q in wb.quarantine.list_quarantined(args.project, actor=operator())}
    if args.external_id not in items:
        raise NotFound(f"no quarantined item {args.external_id!r} in {args.project}")
    state = wb.quarantine.release(args.project, items[args.external_id].item_id, actor=operator())
    print(f"released {args.external_id}: {state.value} again")
    return 0
