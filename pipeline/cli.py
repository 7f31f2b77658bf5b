"""The `netra` command line: parse arguments, call one pipeline function, print, exit.

Exit codes: 0 ok, 1 runtime failure, 2 usage or configuration error.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pipeline import __version__
from pipeline.config import Config, load_config
from pipeline.errors import NetraError, UsageError
from pipeline.progress import Progress, for_stream
from pipeline.store import Store, open_store

log = logging.getLogger("netra")

Handler = Callable[[argparse.Namespace, Config], int]
EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


def _common_options() -> argparse.ArgumentParser:
    """Options every subcommand accepts (before or after the subcommand name)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        metavar="FILE",
        default=argparse.SUPPRESS,
        help="TOML config file (default: $NETRA_CONFIG, else built-in defaults)",
    )
    common.add_argument(
        "--database",
        metavar="URL",
        default=argparse.SUPPRESS,
        help="database URL, overrides config and NETRA_DATABASE_URL",
    )
    common.add_argument(
        "-v", "--verbose", action="count", default=argparse.SUPPRESS, help="more log output"
    )
    return common


def _open(config: Config) -> Store:
    return open_store(config.database.url, echo=config.database.echo)


def _progress() -> Progress:
    return for_stream(sys.stderr)


def _print_json(data: Any) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2, default=str))


# -- foundation commands ------------------------------------------------------------------


def cmd_init(args: argparse.Namespace, config: Config) -> int:
    """Create or upgrade the database schema."""
    store = Store(config.database.url, echo=config.database.echo)
    before, after = store.upgrade()
    if before == after:
        print(f"database {store.display_url} is up to date (schema {after})")
    else:
        print(f"database {store.display_url}: schema {before or 'empty'} -> {after}")
    return EXIT_OK


def cmd_status(args: argparse.Namespace, config: Config) -> int:
    """Show the database, counts and the last runs with their errors."""
    from pipeline.status import collect_status, format_status

    report = collect_status(config)
    if args.json:
        _print_json(report)
    else:
        print(format_status(report))
    return EXIT_OK if report["database"]["ok"] else EXIT_FAILURE


def _column_map(pairs: Sequence[str]) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for pair in pairs:
        field, sep, column = pair.partition("=")
        if not sep or not field or not column:
            raise UsageError(f"--column expects FIELD=COLUMN, got {pair!r}")
        mapping[field.strip()] = column.strip()
    return mapping


def cmd_import(args: argparse.Namespace, config: Config) -> int:
    """Import Post JSON Lines or mapped CSV files into the store."""
    from pipeline.importer import import_files

    with _open(config) as store:
        report = import_files(
            store,
            args.files,
            columns=_column_map(args.column),
            platform=args.platform,
            skip_invalid=args.skip_invalid,
            progress=_progress(),
        )
    for item in report.files:
        print(
            f"{item.path}: {item.inserted} new, {item.updated} changed, "
            f"{item.unchanged} unchanged, {item.skipped} invalid lines skipped"
        )
    return EXIT_OK


def cmd_run(args: argparse.Namespace, config: Config) -> int:
    """One monitoring run over every configured source."""
    from pipeline.run import format_run_report, run_once

    with _open(config) as store:
        report = run_once(config, store, sources=args.source or None, progress=_progress())
    print(format_run_report(report))
    # "skipped": another process (the scheduler) holds every source right now; not a failure.
    return EXIT_OK if report.status in ("ok", "partial", "skipped") else EXIT_FAILURE


def cmd_demo(args: argparse.Namespace, config: Config) -> int:
    """The whole chain on bundled invented data (what `make demo` runs)."""
    from pipeline.demo import format_demo_summary, run_demo

    summary = run_demo(config, progress=_progress())
    print(format_demo_summary(summary))
    return EXIT_OK


# -- command table --------------------------------------------------------------------------
# Each entry: (name, help, add-arguments function, handler). Later steps register theirs here.


def _add_init(parser: argparse.ArgumentParser) -> None:
    del parser


def _add_status(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def _add_import(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE", help="JSONL or CSV file, '-' = stdin")
    parser.add_argument(
        "--column",
        action="append",
        default=[],
        metavar="FIELD=COLUMN",
        help="CSV column for a Post field, e.g. text=isi (repeatable)",
    )
    parser.add_argument("--platform", help="platform for CSV rows without a platform column")
    parser.add_argument(
        "--skip-invalid", action="store_true", help="skip and count bad lines instead of failing"
    )


def _add_run(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--source", action="append", metavar="NAME", help="only this configured source"
    )


COMMANDS: list[tuple[str, str, Callable[[argparse.ArgumentParser], None], Handler]] = [
    ("init", "create or upgrade the database", _add_init, cmd_init),
    ("status", "model, database, counts, last runs and errors", _add_status, cmd_status),
    ("import", "import Post JSONL / CSV files into the store", _add_import, cmd_import),
    ("run", "one monitoring run: collect, score, link, queue", _add_run, cmd_run),
    ("demo", "run the whole chain on the bundled demo data", _add_init, cmd_demo),
]


def register(
    name: str, help_text: str, add_arguments: Callable[[argparse.ArgumentParser], None]
) -> Callable[[Handler], Handler]:
    """Decorator for command handlers defined in other pipeline modules' CLI sections."""

    def decorate(handler: Handler) -> Handler:
        COMMANDS.append((name, help_text, add_arguments, handler))
        return handler

    return decorate


# -- command sections of later steps (collect, classify, queue, retrain, schedule) ---------
# Each section imports its pipeline module lazily inside the handler to keep start-up fast.


# -- classifier: train, classify, evaluate ------------------------------------------------------


def _add_train(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--output",
        type=Path,
        metavar="DIR",
        help="write here instead of models/<version>/ (models/CURRENT is then left alone)",
    )
    parser.add_argument("--corpus", type=Path, metavar="DIR", help="seed corpus folder")
    parser.add_argument(
        "--dev",
        type=Path,
        metavar="FILE",
        help="labelled held-out CSV/JSONL whose figures and SHA-256 go into the card (never "
        "trained on: a corpus or --add file with its content is refused)",
    )


@register("train", "train the partisan-content model from the seed corpus", _add_train)
def cmd_train(args: argparse.Namespace, config: Config) -> int:
    """Rebuild the model reproducibly (fixed seed) and write its card."""
    from pipeline.classify import train_model

    directory = train_model(
        config, args.output, corpus_dir=args.corpus, dev_path=args.dev, progress=_progress()
    )
    print(f"model written to {directory}")
    return EXIT_OK


def _threshold(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not 0 < number < 1:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {value!r}")
    return number


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--text-column", default="text", help="column holding the text")
    parser.add_argument("--model", type=Path, metavar="DIR", help="model directory")
    parser.add_argument(
        "--election", action="append", metavar="NAME", help="only this election profile"
    )
    parser.add_argument(
        "--threshold",
        type=_threshold,
        metavar="T",
        help="label partisan from this score (default: classifier.threshold, else the model's)",
    )


def _with_threshold(config: Config, args: argparse.Namespace) -> Config:
    return config.with_overrides(classifier={"threshold": args.threshold})


def _add_classify(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", metavar="INPUT", help="CSV or JSONL file, '-' = stdin")
    parser.add_argument(
        "--output",
        "-o",
        metavar="OUT",
        help="CSV/JSONL file, written when complete and never over INPUT (default stdout)",
    )
    _add_model_options(parser)


@register("classify", "score texts in a CSV/JSONL file for partisan content", _add_classify)
def cmd_classify(args: argparse.Namespace, config: Config) -> int:
    """Add score, label, contestants, explanation and flags to every row."""
    from pipeline.classify import classify_file

    report = classify_file(
        args.input,
        args.output,
        args.text_column,
        args.model,
        args.election,
        config=_with_threshold(config, args),
        progress=_progress(),
    )
    flags = ", ".join(f"{name} {count}" for name, count in sorted(report.flagged.items()))
    print(
        f"{report.rows} rows scored with {report.model_version} (threshold {report.threshold}): "
        f"{report.partisan} partisan" + (f"; flags: {flags}" if flags else ""),
        file=sys.stderr,  # stdout may carry the scored rows
    )
    return EXIT_OK


def _add_evaluate(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", help="labelled CSV or JSONL file")
    parser.add_argument("--label-column", default="label", help="column holding 1/0 labels")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument(
        "--errors",
        metavar="OUT",
        help="write the misclassified rows (CSV or JSONL), most confident first",
    )
    _add_model_options(parser)


@register("evaluate", "measure the model on a labelled CSV/JSONL file", _add_evaluate)
def cmd_evaluate(args: argparse.Namespace, config: Config) -> int:
    """PR-AUC, ROC-AUC, precision/recall/F1 at the threshold, confusion matrix, per source."""
    from pipeline.classify import evaluate_file, format_evaluation

    report = evaluate_file(
        Path(args.file),
        args.label_column,
        args.model,
        args.election,
        text_column=args.text_column,
        config=_with_threshold(config, args),
        errors=Path(args.errors) if args.errors else None,
    )
    if args.json:
        _print_json(report)
    else:
        print(format_evaluation(report))
    return EXIT_OK


# -- collect and tips ------------------------------------------------------------------------


def _add_collect(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("platform", help="mastodon, bluesky, telegram, youtube, x, rss, file")
    parser.add_argument(
        "targets",
        nargs="+",
        metavar="TARGET",
        help="kind:value, e.g. tag:pemilu2024, account:name@instance, thread:ID, author:handle, "
        'search:"query", channel:name, video:ID, feed:URL, path:FILE',
    )
    parser.add_argument(
        "--base-url", metavar="URL", help="replace scheme and host of the platform's API root"
    )
    parser.add_argument("--limit", type=int, metavar="N", help="at most N posts per target")
    parser.add_argument("--output", metavar="FILE.jsonl", help="write here instead of stdout")


@register("collect", "collect public posts into Post JSON Lines (no database)", _add_collect)
def cmd_collect(args: argparse.Namespace, config: Config) -> int:
    """Ad hoc collection: PLATFORM TARGET... to JSON Lines."""
    from pipeline.collect import collect_adhoc
    from pipeline.records import write_jsonl
    from pipeline.run import make_http_client

    with make_http_client(config) as client:
        posts = collect_adhoc(
            args.platform,
            args.targets,
            base_url=args.base_url,
            limit=args.limit,
            client=client,
            http_config=config.http,
        )
        if args.output:
            with open(args.output, "w", encoding="utf-8") as stream:
                count = write_jsonl(posts, stream)
            print(f"{count} posts written to {args.output}", file=sys.stderr)
        else:
            write_jsonl(posts, sys.stdout)
    return EXIT_OK


def _add_tip(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="tip_command", metavar="ACTION", required=True)
    add = actions.add_parser("add", help="report a post by hand", parents=[_common_options()])
    add.add_argument("url", help="link to the post")
    add.add_argument("--text", required=True, help="what the post says")
    add.add_argument("--author", help="the account that posted it (handle)")
    add.add_argument("--screenshot", metavar="FILE", help="screenshot kept as evidence")
    add.add_argument("--reporter", help="who reported it (stored apart, never exported)")
    add.add_argument("--platform", help="platform, when the link does not tell")


@register("tip", "manual intake of reported posts (tip add URL --text ...)", _add_tip)
def cmd_tip(args: argparse.Namespace, config: Config) -> int:
    """Store a reported post; the reporter goes to a separate table."""
    from pipeline.collect import add_tip

    with _open(config) as store:
        tip_id, post = add_tip(
            store,
            args.url,
            args.text,
            author=args.author,
            screenshot=args.screenshot,
            reporter=args.reporter,
            platform=args.platform,
        )
    print(f"tip #{tip_id} stored as {post.key}")
    return EXIT_OK


# -- registry, queue, review, export, purge ------------------------------------------------


def _add_registry(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="registry_command", metavar="ACTION", required=True)
    load = actions.add_parser(
        "import", help="import a registry CSV/XLSX (atomic)", parents=[_common_options()]
    )
    load.add_argument("file", metavar="FILE", help="registry .csv or .xlsx")
    listing = actions.add_parser("list", help="list registry accounts", parents=[_common_options()])
    listing.add_argument("--all", action="store_true", help="include inactive accounts")
    show = actions.add_parser(
        "show", help="one person's accounts by NIP or account id", parents=[_common_options()]
    )
    show.add_argument("ident", metavar="NIP|ID")


@register("registry", "the registry of known ASN accounts (import, list, show)", _add_registry)
def cmd_registry(args: argparse.Namespace, config: Config) -> int:
    """Import, list or show registry accounts."""
    from pipeline.registry import account_link_counts, find_accounts, import_registry, load_accounts

    with _open(config) as store:
        if args.registry_command == "import":
            report = import_registry(store, args.file)
            print(
                f"{report.path}: {report.rows} rows — {report.inserted} new, {report.updated} updated,"
                f" {report.unchanged} unchanged, {report.deactivated} deactivated"
                f" (registry revision {report.revision})"
            )
            return EXIT_OK
        if args.registry_command == "list":
            accounts = load_accounts(store, include_inactive=args.all)
        else:
            accounts = find_accounts(store, args.ident)
            if not accounts:
                raise UsageError(f"no registry account or NIP {args.ident!r}")
        links = account_link_counts(store, [a.id for a in accounts])
        for account in accounts:
            identity = account.handle or account.url_handle
            print(
                f"{account.id:>6}  {account.nip or '-':<18}  {account.nama}  |  {account.instansi}"
                f"  |  {account.platform} @{identity or '-'} id:{account.user_id or account.url_user_id or '-'}"
                f"  |  {links.get(account.id, 0)} linked posts"
                + ("" if account.active else "  (inactive)")
            )
            if args.registry_command == "show":
                print(
                    f"        jabatan: {account.jabatan or '-'}; unit kerja: {account.unit_kerja or '-'};"
                    f" wilayah: {account.wilayah or '-'}; profil: {account.profile_url or '-'}"
                )
        if args.registry_command == "list":
            print(f"{len(accounts)} accounts")
        return EXIT_OK


def _add_queue(parser: argparse.ArgumentParser) -> None:
    from pipeline.queue import STATUSES

    actions = parser.add_subparsers(dest="queue_command", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="items by priority", parents=[_common_options()])
    listing.add_argument("--status", choices=STATUSES, action="append", help="only this state")
    listing.add_argument("--limit", type=int, default=50, metavar="N", help="at most N (50)")
    show = actions.add_parser(
        "show", help="one item with its evidence", parents=[_common_options()]
    )
    show.add_argument("item", type=int, metavar="ITEM")
    to_label = actions.add_parser(
        "to-label",
        help="posts the model is least sure about, diverse (label with `review label`)",
        parents=[_common_options()],
    )
    to_label.add_argument("--n", type=int, default=50, metavar="N", help="how many (50)")


@register("queue", "the review queue (list, show, to-label)", _add_queue)
def cmd_queue(args: argparse.Namespace, config: Config) -> int:
    """List queue items or show one with its evidence."""
    from pipeline.queue import get_item, list_items, status_counts
    from pipeline.review import render_item, terminal_safe

    with _open(config) as store:
        if args.queue_command == "to-label":
            from pipeline.active_learning import format_candidates, select_to_label

            print(format_candidates(select_to_label(config, store, args.n, progress=_progress())))
            return EXIT_OK
        if args.queue_command == "show":
            item = get_item(store, args.item)
            if item is None:
                raise UsageError(f"no queue item {args.item}")
            print(render_item(item))
            return EXIT_OK
        for item in list_items(store, statuses=args.status, limit=args.limit):
            who = item.account["nama"] if item.account else "(suspected, unregistered)"
            text = terminal_safe(item.first["text"]).replace("\n", " ")
            print(
                f"#{item.id:<5} {item.status:<10} p={item.priority:.3f} s={item.score:.2f} "
                f"{item.link_level:<13} {item.platform:<9} {terminal_safe(who)[:28]:<28} "
                f"{item.category:<8} x{len(item.evidence)}  {text[:60]}"
            )
        counts = status_counts(store)
        print("  ".join(f"{name}: {count}" for name, count in counts.items()))
        return EXIT_OK


def _add_review(parser: argparse.ArgumentParser) -> None:
    from pipeline.queue import CATEGORIES, DISMISS_REASONS, STATUSES

    parser.add_argument(
        "--reviewer", dest="session_reviewer", metavar="NAME", help="your name (asked if missing)"
    )
    parser.add_argument("--limit", type=int, metavar="N", help="stop after N items")
    actions = parser.add_subparsers(dest="review_command", metavar="ACTION")
    decide = actions.add_parser(
        "decide", help="decide one item without prompts", parents=[_common_options()]
    )
    decide.add_argument("item", type=int, metavar="ITEM")
    decide.add_argument("--verdict", required=True, choices=STATUSES)
    decide.add_argument("--reviewer", required=True, metavar="NAME")
    decide.add_argument("--category", choices=list(CATEGORIES))
    decide.add_argument("--reason", choices=list(DISMISS_REASONS), help="why it is dismissed")
    decide.add_argument("--note")
    decide.add_argument(
        "--label",
        choices=("partisan", "not_partisan"),
        help="your own judgement of the text (used for retraining)",
    )
    decide.add_argument(
        "--expected-status",
        choices=STATUSES,
        metavar="STATUS",
        help="refuse (exit 2) unless the item is still in this status (the one you were shown)",
    )
    decide.add_argument(
        "--force",
        action="store_true",
        help="decide or release an item another reviewer has claimed (recorded in the note)",
    )
    label = actions.add_parser(
        "label",
        help="label the `queue to-label` posts (or one post: --post KEY --label L)",
        parents=[_common_options()],
    )
    label.add_argument("--reviewer", dest="label_reviewer", metavar="NAME", help="your name")
    label.add_argument("--n", type=int, default=50, metavar="N", help="how many posts (50)")
    label.add_argument("--post", metavar="KEY", help="label this post (platform:post_id)")
    label.add_argument("--label", dest="post_label", choices=("partisan", "not_partisan"))


@register("review", "review queue items (interactive, or: review decide ITEM ...)", _add_review)
def cmd_review(args: argparse.Namespace, config: Config) -> int:
    """Interactive review from stdin, or one scripted decision."""
    from pipeline.review import decide, review_session

    with _open(config) as store:
        if args.review_command == "label":
            return _review_label(args, config, store)
        if args.review_command == "decide":
            decisions = decide(
                store,
                args.item,
                args.verdict,
                args.reviewer,
                category=args.category,
                reason=args.reason,
                note=args.note,
                label=args.label,
                expected_status=args.expected_status,
                force=args.force,
            )
            for decision in decisions:
                print(f"item {decision.item_id}: {decision.from_status} -> {decision.to_status}")
            return EXIT_OK
        reviewer = args.session_reviewer
        if not reviewer:
            print("reviewer name: ", end="", flush=True)
            reviewer = sys.stdin.readline().strip()
        summary = review_session(store, reviewer, sys.stdin, sys.stdout, limit=args.limit)
        decided = ", ".join(f"{k}: {v}" for k, v in summary.decided.items()) or "none"
        print(f"shown {summary.shown}, decided ({decided}), skipped {summary.skipped}")
        return EXIT_OK


def _review_label(args: argparse.Namespace, config: Config, store: Store) -> int:
    """`review label`: one scripted label, or an interactive session over `queue to-label`."""
    from pipeline.active_learning import label_post, label_session

    reviewer = args.label_reviewer or args.session_reviewer
    if args.post or args.post_label:
        if not (args.post and args.post_label and reviewer):
            raise UsageError("a scripted label needs --post KEY, --label and --reviewer")
        label_post(store, args.post, args.post_label, reviewer)
        print(f"{args.post}: labelled {args.post_label}")
        return EXIT_OK
    if not reviewer:
        print("reviewer name: ", end="", flush=True)
        reviewer = sys.stdin.readline().strip()
    summary = label_session(config, store, reviewer, sys.stdin, sys.stdout, n=args.n)
    counts = ", ".join(f"{k}: {v}" for k, v in summary.labelled.items()) or "none"
    print(f"shown {summary.shown}, labelled ({counts}), skipped {summary.skipped}")
    return EXIT_OK


def _add_export(parser: argparse.ArgumentParser) -> None:
    from pipeline.export import EXPORT_STATUSES, FORMATS

    parser.add_argument("--status", choices=EXPORT_STATUSES, default="pending")
    parser.add_argument("--format", choices=FORMATS, help="default: from the file suffix")
    parser.add_argument("--output", metavar="FILE", help="file to write")
    parser.add_argument(
        "--since",
        metavar="DATE",
        help="only items posted on/after (YYYY-MM-DD, a day in schedule.timezone: WIB by default)",
    )
    parser.add_argument("--instansi", metavar="NAME", help="only this agency (substring)")
    actions = parser.add_subparsers(dest="export_command", metavar="ACTION")
    case = actions.add_parser(
        "case", help="HTML evidence sheet of one confirmed case", parents=[_common_options()]
    )
    case.add_argument("item", type=int, metavar="ITEM")
    case.add_argument("--output", dest="case_output", required=True, metavar="FILE.html")


def _parse_since(value: str | None, timezone: str = "UTC") -> Any:
    """A --since date or time; without a zone it is read in `timezone` (the users' own day)."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise UsageError(f"--since expects a date like 2024-01-31, got {value!r}") from None
    return parsed.replace(tzinfo=ZoneInfo(timezone)) if parsed.tzinfo is None else parsed


@register(
    "export", "export the queue (csv/xlsx/jsonl) or a case sheet (export case ITEM)", _add_export
)
def cmd_export(args: argparse.Namespace, config: Config) -> int:
    """Write the queue table or one case's HTML evidence sheet."""
    from pipeline.export import export_case, export_items

    with _open(config) as store:
        if args.export_command == "case":
            path = export_case(store, args.item, args.case_output)
            print(f"case {args.item} written to {path}")
            return EXIT_OK
        if not args.output:
            raise UsageError("export needs --output FILE")
        count = export_items(
            store,
            args.output,
            status=args.status,
            file_format=args.format,
            since=_parse_since(args.since, config.schedule.timezone),
            instansi=args.instansi,
        )
        print(f"{count} items written to {args.output}")
        return EXIT_OK


def _add_purge(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dry-run", action="store_true", help="count only, delete nothing")


@register("purge", "delete unlinked, unqueued posts past the retention period", _add_purge)
def cmd_purge(args: argparse.Namespace, config: Config) -> int:
    """Apply the retention period and report counts."""
    from pipeline.retention import purge

    with _open(config) as store:
        report = purge(config, store, dry_run=args.dry_run)
        verb = "would delete" if args.dry_run else "deleted"
        print(
            f"{verb} (last seen before {report['cutoff']:%Y-%m-%d %H:%M} UTC): {report['posts']} posts,"
            f" {report['scores']} scores, {report['post_versions']} versions,"
            f" {report['matches']} link rows, {report['authors']} author profiles"
        )
        return EXIT_OK


# -- retrain and model versions --------------------------------------------------------------


def _add_retrain(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--add",
        action="append",
        default=[],
        type=Path,
        metavar="FILE.csv",
        help="labelled CSV (text,label) to train on as well (repeatable; a held-out file "
        "recorded in a model card is refused)",
    )
    parser.add_argument("--corpus", type=Path, metavar="DIR", help="seed corpus folder")
    parser.add_argument(
        "--no-promote", action="store_true", help="keep the new version as a candidate"
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


@register(
    "retrain",
    "train a candidate on seed + reviewer labels, compare, promote if not worse",
    _add_retrain,
)
def cmd_retrain(args: argparse.Namespace, config: Config) -> int:
    """Retrain from reviewers' labels; exit 0 also when there was too little new data."""
    from pipeline.retrain import format_report, retrain

    with _open(config) as store:
        result = retrain(
            config,
            store,
            add_files=args.add,
            corpus_dir=args.corpus,
            auto_promote=not args.no_promote,
            progress=_progress(),
        )
    if result.status == "skipped":
        print(result.message)
        return EXIT_OK
    if args.json:
        _print_json(result.report)
    else:
        print(format_report(result.report))
        if result.report_paths:
            print(f"report: {result.report_paths[1]} (JSON: {result.report_paths[0]})")
    return EXIT_OK


def _add_models(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="model versions", parents=[_common_options()])
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    show = actions.add_parser("show", help="one version's card", parents=[_common_options()])
    show.add_argument("version", metavar="VERSION")
    show.add_argument("--json", action="store_true", help="card and history as JSON")
    promote = actions.add_parser(
        "promote",
        help="make VERSION current (re-scores pending items)",
        parents=[_common_options()],
    )
    promote.add_argument("version", metavar="VERSION")
    promote.add_argument("--by", metavar="NAME", help="who decided (kept in the history)")
    back = actions.add_parser(
        "rollback", help="back to the previously promoted version", parents=[_common_options()]
    )
    back.add_argument("--by", metavar="NAME", help="who decided (kept in the history)")


def _store_or_none(config: Config) -> Store | None:
    from pipeline.errors import StoreError

    try:
        return _open(config)
    except StoreError as exc:
        log.warning("pending queue items will not be re-scored: %s", exc)
        return None


@register("models", "model versions (list, show VERSION, promote VERSION, rollback)", _add_models)
def cmd_models(args: argparse.Namespace, config: Config) -> int:
    """List, show, promote or roll back model versions."""
    from pipeline.models import (
        format_models,
        format_promotion,
        list_models,
        promote,
        rollback,
        show_model,
    )

    root = config.paths.models_dir
    if args.models_command == "list":
        infos = list_models(root)
        if args.json:
            _print_json(
                [
                    {
                        "version": i.version,
                        "status": i.status,
                        "reason": i.reason,
                        "error": i.error,
                        "threshold": (i.card or {}).get("threshold"),
                        "modified": i.modified.isoformat(),
                    }
                    for i in infos
                ]
            )
        else:
            print(format_models(infos))
        return EXIT_OK
    if args.models_command == "show":
        shown = show_model(root, args.version)
        if args.json:
            _print_json({key: value for key, value in shown.items() if key != "card_md"})
        else:
            print(f"{shown['version']}: {shown['status']}")
            if shown["reason"]:
                print(f"not promoted: {shown['reason']}")
            if shown["error"]:
                print(f"refused: {shown['error']}")
            for event in shown["history"]:
                who = f" by {event['by']}" if event.get("by") else ""
                why = f": {event['reason']}" if event.get("reason") else ""
                print(f"  {event.get('at', '?')} {event['action']}{who}{why}")
            if shown["card_md"]:
                print(shown["card_md"])
        return EXIT_OK if shown["error"] is None else EXIT_FAILURE
    store = _store_or_none(config)
    try:
        if args.models_command == "promote":
            result = promote(config, args.version, store=store, by=args.by)
        else:
            result = rollback(config, store=store, by=args.by)
    finally:
        if store is not None:
            store.close()
    print(format_promotion(result))
    return EXIT_OK


# -- schedule -------------------------------------------------------------------------------


def _add_schedule(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--once", action="store_true", help="run the jobs due now, then exit (for cron/timers)"
    )


@register("schedule", "run monitoring on schedule until SIGTERM/Ctrl-C", _add_schedule)
def cmd_schedule(args: argparse.Namespace, config: Config) -> int:
    """The long-running scheduler, or with --once the jobs that are due now."""
    from pipeline.calendar import validate_schedule
    from pipeline.scheduler import serve_scheduler

    validate_schedule(config)  # a bad schedule exits 2 before the database is touched
    return serve_scheduler(config, _open(config), once=args.once)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser."""
    common = _common_options()
    parser = argparse.ArgumentParser(
        prog="netra",
        description="Watch public social media for election campaigning by civil servants (ASN).",
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"netra {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_text, add_arguments, handler in COMMANDS:
        sub = subparsers.add_parser(name, help=help_text, description=help_text, parents=[common])
        add_arguments(sub)
        sub.set_defaults(handler=handler)
    return parser


def _configure_logging(verbosity: int) -> None:
    level = logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    if not sys.stderr.isatty():
        # Off a terminal, plain progress log lines replace the bar.
        logging.getLogger("pipeline.progress").setLevel(logging.INFO)
    if verbosity < 2:
        logging.getLogger("alembic").setLevel(logging.WARNING)
    # httpx logs full request URLs at INFO; some APIs carry keys in the query string.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `netra` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return EXIT_USAGE
    _configure_logging(getattr(args, "verbose", 0))
    try:
        config_path = getattr(args, "config", None) or os.environ.get("NETRA_CONFIG")
        config = load_config(Path(config_path) if config_path else None)
        database = getattr(args, "database", None)
        if database:
            config = config.with_overrides(database={"url": database})
        return int(args.handler(args, config))
    except NetraError as exc:
        print(f"netra: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("netra: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
