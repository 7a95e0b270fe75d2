"""`workbench alert add|list|remove|test PROJECT …`: the alert rules of a project, the deliveries
they made, and a test alert through a channel. Webhook URLs and SMTP credentials come from the
environment (a rule names the variable holding its URL), never from the database."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from workbench.commands._common import open_workbench, operator

if TYPE_CHECKING:
    from datetime import datetime

# workbench.domain.alerts.RULE_KINDS, spelled here so --help stays light.
KINDS = ("agreement", "accuracy_drop", "drift", "annotator", "review_age")
KIND_HELP = (
    "agreement: Krippendorff's alpha below THRESHOLD (default 0.667); "
    "accuracy_drop: eval accuracy fell by more than the new run's 95% interval plus THRESHOLD (default 0); "
    "drift: an import drifted (a drifted feature, or domain AUC above THRESHOLD, default 0.6); "
    "annotator: an annotator flagged by the quality estimate, or with accuracy below THRESHOLD (default 0: flag only); "
    "review_age: an item waited in review more than THRESHOLD hours (default 24)"
)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("alert", help="alert rules, deliveries and test alerts", description=__doc__)
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    add = verbs.add_parser("add", help="watch a condition", description=KIND_HELP)
    add.add_argument("project")
    add.add_argument("kind", choices=KINDS)
    add.add_argument("--threshold", type=float, help="the kind's threshold (see above for defaults)")
    add.add_argument("--webhook-env", metavar="VAR", help="environment variable holding the webhook URL")
    add.add_argument("--email", metavar="ADDRESS", help="send e-mail here (SMTP from WORKBENCH_SMTP_*)")
    add.set_defaults(func=run_add)
    listing = verbs.add_parser("list", help="rules, what holds now, and the recent deliveries")
    listing.add_argument("project")
    listing.add_argument("--deliveries", type=int, default=10, metavar="N", help="show the last N deliveries")
    listing.set_defaults(func=run_list)
    remove = verbs.add_parser("remove", help="delete a rule (its deliveries stay in the log)")
    remove.add_argument("project")
    remove.add_argument("rule", type=int, help="the rule's id (see `alert list`)")
    remove.set_defaults(func=run_remove)
    test = verbs.add_parser(
        "test",
        help="send a test alert now and print the result",
        description="Send a test alert from this process, once: to --webhook and/or --email, else "
        "through every channel of the project's rules. One line per channel; exit 1 if one failed.",
    )
    test.add_argument("project")
    test.add_argument("--webhook", metavar="URL", help="a webhook URL (used now, never stored)")
    test.add_argument("--email", metavar="ADDRESS")
    test.set_defaults(func=run_test)


def run_add(args: argparse.Namespace) -> int:
    rule = open_workbench(args).alerts.add_rule(
        args.project,
        args.kind,
        threshold=args.threshold,
        webhook_env=args.webhook_env,
        email_to=args.email,
        actor=operator(),
    )
    print(f"rule {rule.id}: {rule.kind.value} threshold {rule.threshold:g} -> {rule.channels}")
    return 0


def _when(value: datetime | None) -> str:
    return f"{value:%Y-%m-%d %H:%M:%S}" if value is not None else "—"


def run_list(args: argparse.Namespace) -> int:
    wb = open_workbench(args)
    rules = wb.alerts.rules(args.project, actor=operator())
    if not rules:
        print(f"no alert rules in {args.project}")
    for r in rules:
        holds = ", ".join(s or "the project" for s in r.active)
        print(f"{r.id}\t{r.kind.value}\t{r.threshold:g}\t{r.channels}\t{'FIRING: ' + holds if holds else 'ok'}")
    if args.deliveries > 0:
        deliveries = wb.alerts.deliveries(args.project, actor=operator(), limit=args.deliveries)
        if deliveries:
            print("deliveries (newest first):")
        for d in deliveries:
            retry = f", next attempt {_when(d.next_attempt_at)}" if d.next_attempt_at else ""
            print(
                f"  {d.id}\t{_when(d.created_at)}\t{d.kind.value}\t{d.channel.value} {d.target}\t"
                f"{d.state.value} after {d.attempts} attempt(s): {d.last_result or '—'}{retry}"
            )
    return 0


def run_remove(args: argparse.Namespace) -> int:
    open_workbench(args).alerts.remove_rule(args.project, args.rule, actor=operator())
    print(f"rule {args.rule} removed from {args.project}")
    return 0


def run_test(args: argparse.Namespace) -> int:
    deliveries = open_workbench(args).alerts.send_test(
        args.project, webhook_url=args.webhook, email_to=args.email, actor=operator()
    )
    for d in deliveries:
        took = f", {d.attempt_log[-1].duration_ms:.0f} ms" if d.attempt_log else ""
        print(f"{d.channel.value} {d.target}: {d.state.value} ({d.last_result}{took})")
    return 0 if all(d.state.value == "sent" for d in deliveries) else 1
