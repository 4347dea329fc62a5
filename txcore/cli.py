"""The ``txcore`` command line (``docs/cli.md``).  Thin: parses arguments, calls the API.

Exit codes: 0 success (rejects are not failures); 1 ``replay --compare`` found
differences; 2 usage, invalid rules or reference data, or an unusable state; 3 an input
refused (unreadable, truncated or already committed); 4 outputs or state could not be
written, or rows did not add up — nothing of the run committed.  Error messages never
show a card number.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import sys
from pathlib import Path

from txcore import __version__, cardno
from txcore.engine import BACKENDS, DEFAULT_BACKEND
from txcore.errors import TxcoreError
from txcore.io.reader import DEFAULT_BATCH_SIZE, MAX_BATCH_SIZE
from txcore.pipeline import MAX_WORKERS
from txcore.plan.executors import ENGINES
from txcore.bounds import check_int
from txcore.state.memory import (DEFAULT_RETENTION_DAYS, RETENTION_DAYS_RANGE,
                                 check_retention_days)
from txcore.io.writer import OUTPUT_FORMATS


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # usage errors exit 2, as argparse does, with our prefix
        self.print_usage(sys.stderr)
        self.exit(2, f"txcore: error: {message}\n")


def _whole(text: str, check) -> int:
    value = int(text) if re.fullmatch(r"[+-]?[0-9]+", text) else text  # ASCII digits only
    try:
        return check(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _retention_days(text: str) -> int:
    return _whole(text, check_retention_days)


def _batch_size(text: str) -> int:
    return _whole(text, lambda v: check_int("--batch-size", v, 1, MAX_BATCH_SIZE))


def _workers(text: str) -> int:
    return _whole(text, lambda v: check_int("--workers", v, 1, MAX_WORKERS))


def _business_date(text: str) -> dt.date:
    from txcore.business_date import parse_option
    try:
        return parse_option(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _business_date_arg(p):
    p.add_argument("--business-date", type=_business_date, metavar="YYYY-MM-DD",
                   help="the business date: rows dated more than a day after it are rejected "
                        "bad_ts (default: the latest date YYYYMMDD or YYYY-MM-DD in the input "
                        "file names, else today in the rules' time zone)")


def _iso_args(p):
    p.add_argument("--institutions", metavar="FILE",
                   help="acquiring institutions (CSV or Parquet: institution_id, bank, city); "
                        "required for .iso8583 inputs")
    p.add_argument("--iso-spec", metavar="FILE",
                   help="ISO 8583 specification, JSON in pyiso8583's spec form "
                        "(default pyiso8583's default_ascii)")


def _common_pricing_args(p):
    p.add_argument("--rules", required=True, metavar="DIR", help="rules folder (TOML versions)")
    p.add_argument("--cards", required=True, metavar="FILE", help="card registry (CSV or Parquet)")
    p.add_argument("--merchants", metavar="FILE",
                   help="partner merchants (CSV or Parquet); replaces each version's own table")
    p.add_argument("-o", "--out", required=True, metavar="OUTDIR", help="output folder")
    p.add_argument("--format", default="parquet", choices=OUTPUT_FORMATS,
                   help="output format (default parquet)")
    p.add_argument("--batch-size", type=_batch_size, default=DEFAULT_BATCH_SIZE, metavar="N",
                   help=f"rows per record batch (default {DEFAULT_BATCH_SIZE})")
    p.add_argument("--backend", default=DEFAULT_BACKEND, choices=sorted(BACKENDS),
                   help=f"pricing backend (default {DEFAULT_BACKEND}; python is the reference)")
    p.add_argument("--workers", type=_workers, default=1, metavar="N",
                   help="workers: N >= 2 prices on N processes or threads (see --engine); "
                        "default 1; the output is the same")
    p.add_argument("--engine", default="local", choices=ENGINES,
                   help="where the workers run: processes (the partitioned plan, Parquet "
                        "inputs), threads (one process, its stages side by side), local "
                        "(default: processes where at least 3 are kept busy, else "
                        "threads) or dask (a LocalCluster of --workers processes, or "
                        "--scheduler)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="with --engine dask: the scheduler of an existing Dask cluster "
                        "(e.g. tcp://10.0.0.5:8786)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    _business_date_arg(p)
    _iso_args(p)
    p.add_argument("files", nargs="+", metavar="FILE",
                   help="input files (.parquet .csv .avro .arrow .feather .arrows .iso8583, "
                        "- = stdin)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="txcore", description="Price union member service card transactions.")
    parser.add_argument("--version", action="version", version=f"txcore {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("run", help="price input files with durable state",
                       description="Price input files in order; counters carry over in --state.")
    _common_pricing_args(p)
    p.add_argument("--state", required=True, metavar="DIR", help="state folder (created if absent)")
    p.add_argument("--retention-days", type=_retention_days, default=DEFAULT_RETENTION_DAYS,
                   metavar="N", help=f"days the reversal index remembers, "
                                     f"{RETENTION_DAYS_RANGE[0]}-{RETENTION_DAYS_RANGE[1]:,} "
                                     f"(default {DEFAULT_RETENTION_DAYS})")
    p.add_argument("--card-key", metavar="FILE",
                   help="card key file (default <state>/card.key, created 0600 on first use; "
                        "or set TXCORE_CARD_KEY_FILE)")
    p.add_argument("--skip-committed", action="store_true",
                   help="skip inputs already committed to this state instead of refusing (exit 3)")

    p = sub.add_parser("replay", help="re-price historical files; compare with recorded fees",
                       description="Price files from an empty state (or --snapshot, read only) "
                                   "with the rule versions in force at each date, touching no "
                                   "live state; --compare lists every differing priced cell "
                                   "and exits 1 when any differ.")
    _common_pricing_args(p)
    p.add_argument("--compare", metavar="PATH",
                   help="recorded priced rows: a file, or a folder of *.priced.* files")
    p.add_argument("--snapshot", metavar="DIR", help="start from this committed state (read only)")
    p.add_argument("--card-key", metavar="FILE", help="the snapshot's card key file")
    p.add_argument("--retention-days", type=_retention_days, default=DEFAULT_RETENTION_DAYS,
                   metavar="N")
    p.add_argument("--report", action="store_true",
                   help="also write the programme report (report.html and its CSV files) "
                        "into OUTDIR")

    p = sub.add_parser("report", help="the programme report: card rollout and member benefits",
                       description="From the card registry and priced files: cards issued per "
                                   "unit and bank against the notice's milestones, and the fees "
                                   "waived, discounts and disbursements members received, per "
                                   "month and union unit. Writes CSV files (money in fen) and "
                                   "report.html (charts) into OUTDIR; see docs/report.md.")
    p.add_argument("--cards", required=True, metavar="FILE", help="card registry (CSV or Parquet)")
    p.add_argument("-o", "--out", required=True, metavar="OUTDIR")
    p.add_argument("--timezone", default="Asia/Shanghai", help="zone of the months")
    p.add_argument("files", nargs="*", metavar="PRICED",
                   help="priced files, or folders of *.priced.* files (none: rollout only)")

    p = sub.add_parser("explain", help="why a transaction was priced as it was, in words",
                       description="Re-price the inputs up to TXN_ID with the reference engine "
                                   "and explain its fee rule (and why earlier rules did not "
                                   "apply), its waiver and free-slot count, and its discount.")
    p.add_argument("txn_id", metavar="TXN_ID")
    p.add_argument("--rules", required=True, metavar="DIR")
    p.add_argument("--cards", required=True, metavar="FILE")
    p.add_argument("--merchants", metavar="FILE")
    p.add_argument("--priced", metavar="PATH",
                   help="recorded priced output (file or folder): show whether it agrees")
    _business_date_arg(p)
    _iso_args(p)
    p.add_argument("files", nargs="+", metavar="FILE",
                   help="the input files up to and including the transaction's, in order")

    p = sub.add_parser("rules", help="rules tools")
    rsub = p.add_subparsers(dest="rules_command", required=True, parser_class=_Parser)
    c = rsub.add_parser("check", help="validate a rules folder and list what it holds",
                        description="Validate a rules folder; list versions and rules, or every "
                                    "problem with file, rule and key (exit 2).")
    c.add_argument("dir", metavar="DIR")
    c.add_argument("--merchants", metavar="FILE", help="partner merchants to check with the rules")

    p = sub.add_parser("fixtures", help="write a synthetic data set (docs/cli.md#txcore-fixtures)",
                       description="Write cards.csv, merchants.csv and one transaction file per "
                                   "day, shaped by the Licheng 2013 notice.")
    p.add_argument("-o", "--out", required=True, metavar="DIR")
    p.add_argument("--members", type=int, default=120_000, metavar="N")
    p.add_argument("--days", type=int, default=3, metavar="N")
    p.add_argument("--seed", type=int, default=0, metavar="S")
    p.add_argument("--start", type=dt.date.fromisoformat, default=None, metavar="YYYY-MM-DD",
                   help="first day (default 2015-10-29)")
    p.add_argument("--rate", type=float, default=2.8, metavar="R",
                   help="transactions per card per day (default 2.8)")
    p.add_argument("--format", default="parquet", choices=("parquet", "csv", "iso8583"),
                   help="day files: parquet, csv, or iso8583 (switch logs of the card traffic "
                        "plus institutions.csv)")

    p = sub.add_parser("state", help="state folder tools: info, verify, upgrade",
                       description="Inspect, verify or upgrade a state folder (docs/state.md).")
    ssub = p.add_subparsers(dest="state_command", required=True, parser_class=_Parser)
    for name, text in (
            ("info", "print generation, buckets, segments, counters and size on disk"),
            ("verify", "check every file of the state against its checksums (exit 2 if not)"),
            ("upgrade", "convert an older state format to this txcore's, atomically")):
        c = ssub.add_parser(name, help=text, description=text[0].upper() + text[1:] + ".")
        c.add_argument("dir", metavar="DIR")
        c.add_argument("--card-key", metavar="FILE",
                       help="card key file (default <DIR>/card.key)")

    p = sub.add_parser("demo", help="price the bundled fixtures and print the summary",
                       description="Price the bundled fixture days with the default rules from "
                                   "an empty state and print the summary.")
    p.add_argument("-o", "--out", metavar="OUTDIR", help="output folder (default: a new temp dir)")
    p.add_argument("--backend", default=DEFAULT_BACKEND, choices=sorted(BACKENDS))
    p.add_argument("--json", action="store_true", help="print summary.json instead of the table")
    p.add_argument("--iso8583", action="store_true",
                   help="price the same days as ISO 8583 switch logs (made by the fixtures "
                        "generator, with the institutions file) instead of the Parquet files")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _dispatch(args)
    except TxcoreError as exc:
        print(f"txcore: {cardno.redact(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:  # e.g. `txcore rules check DIR | head`
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("txcore: interrupted; nothing of this run was committed", file=sys.stderr)
        return 130
    except Exception:  # noqa: BLE001 - a bug: shown, but never with a card number in it
        import traceback
        print(cardno.redact("txcore: internal error (a bug; nothing of this run was "
                            "committed):\n" + traceback.format_exc()), file=sys.stderr, end="")
        return 1


def _dispatch(args) -> int:
    import txcore
    from txcore import summary

    if args.command == "run":
        result = txcore.run(args.files, rules=args.rules, cards=args.cards,
                            merchants=args.merchants, out_dir=args.out, state_dir=args.state,
                            fmt=args.format, batch_size=args.batch_size,
                            retention_days=args.retention_days, backend=args.backend,
                            progress=False if args.no_progress else None,
                            skip_committed=args.skip_committed, key_file=args.card_key,
                            workers=_threads(args.workers), business_date=args.business_date,
                            engine=args.engine, scheduler=args.scheduler, **_iso(args))
        print(summary.render(result))
        return 0
    if args.command == "replay":
        from txcore.audit.replay import replay
        result = replay(args.files, rules=args.rules, cards=args.cards, merchants=args.merchants,
                        out_dir=args.out, compare=args.compare, snapshot=args.snapshot,
                        key_file=args.card_key, fmt=args.format, batch_size=args.batch_size,
                        retention_days=args.retention_days, backend=args.backend,
                        progress=False if args.no_progress else None,
                        workers=_threads(args.workers), business_date=args.business_date,
                        engine=args.engine, scheduler=args.scheduler, **_iso(args))
        print(summary.render(result))
        print(f"  digest {result['digest']}")
        if args.report:
            _report([Path(args.out) / i["priced_output"] for i in result["inputs"]],
                    args.cards, args.out)
        cmp = result.get("compare")
        if cmp is None:
            return 0
        if not cmp["cells"]:
            print(f"  compare: no differences with {cmp['recorded']}")
            return 0
        print(f"  compare: {cmp['rows']:,} rows differ in {cmp['cells']:,} cells "
              f"(listed in {cmp['diff_file']})")
        print("    by column:   " + ", ".join(f"{k} {v:,}" for k, v in cmp["by_column"].items()))
        print("    by fee rule: " + ", ".join(f"{k} {v:,}" for k, v in cmp["by_fee_rule"].items()))
        return 1
    if args.command == "report":
        _report(args.files, args.cards, args.out, args.timezone)
        return 0
    if args.command == "explain":
        from txcore.audit.explain import explain
        print(explain(args.txn_id, args.files, rules=args.rules, cards=args.cards,
                      merchants=args.merchants, priced=args.priced,
                      business_date=args.business_date, **_iso(args)))
        return 0
    if args.command == "rules":
        from txcore.rules.book import describe
        merchants = txcore.load_merchants(args.merchants) if args.merchants else None
        print(describe(txcore.load_book(args.dir, merchants)))
        print("rules OK")
        return 0
    if args.command == "fixtures":
        kw = {"start": args.start} if args.start else {}
        files = txcore.make_fixtures(args.out, members=args.members, days=args.days,
                                     seed=args.seed, rate=args.rate, fmt=args.format, **kw)
        for f in files:
            print(f)
        return 0
    if args.command == "state":
        return _state(args)
    if args.command == "demo":
        result = txcore.demo(args.out, backend=args.backend, iso8583=args.iso8583)
        if args.json:
            print(json.dumps(result, indent=2, ensure_ascii=False))
        else:
            print(summary.render(result))
            print(f"\noutputs and summary.json in {result['out_dir']}")
        return 0
    raise AssertionError(args.command)


def _state(args) -> int:
    from txcore.runner import lock
    from txcore.state.store import StateStore
    if args.state_command == "upgrade":
        with lock(args.dir):
            store = StateStore(args.dir, args.card_key, upgrading=True)
            before = store.manifest["format"]
            if store.upgrade():
                print(f"{args.dir}: upgraded from state format {before} to "
                      f"{store.manifest['format']} (generation {store.manifest['generation']})")
            else:
                print(f"{args.dir}: already state format {before}; nothing to do")
        return 0
    store = StateStore(args.dir, args.card_key, readonly=True, upgrading=True)
    if args.state_command == "info":
        print(store.info())
        return 0
    checked = store.verify()
    print(f"{args.dir}: {checked['files']} files of generation {checked['generation']} "
          f"match their checksums")
    return 0

def _iso(args) -> dict:
    return {"institutions": args.institutions, "iso_spec": args.iso_spec}


def _threads(workers: int) -> int:
    """``--workers N``: pyarrow's thread pools get N threads too (a one-worker run uses
    one core, comparable with a one-thread DuckDB or Polars)."""
    import pyarrow as pa
    if workers >= 1:
        pa.set_cpu_count(workers)
        pa.set_io_thread_count(workers)
    return workers


def _report(files, cards, out, timezone="Asia/Shanghai"):
    from txcore.audit.report import build_report
    result = build_report(files, cards, out, timezone)
    print(f"  report: {Path(result['out_dir']) / 'report.html'} and "
          f"{len(result['files']) - 1} CSV files ({result['rows']:,} priced rows read)")


if __name__ == "__main__":
    sys.exit(main())
