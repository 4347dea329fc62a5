"""txcore: fee-and-discount pricing for the trade-union member service card.

The folders are the layers, lowest first (a module imports only its own layer and
those below it; ``tests/test_layers.py`` holds this)::

    errors, money, vocab, timeconv,   small shared leaves
    cardno, paths, durable, pipeline,
    programme                         (the notice's union units and timetable)
    business_date                     (the run's business date)
    _fast/     the compiled hot path (Cython) with pure-Python twins
    io/        input formats as Arrow batches; priced/reject outputs; the digest
    rules/     rule-set versions; card registry and partner merchants
    state/     counters, reversal index, taken txn_ids; the state folder and its commit
    engine/    row validation, the reference engine, the compiled engines
    runner, summary, fixtures, switchlog   a run and the demo; control totals;
               synthetic data (also as ISO 8583 switch logs)
    audit/     replay and --compare, explain, the programme report
    cli        the ``txcore`` command

The user reference is ``docs/`` in the repository.  The public API is re-exported here.
"""
from importlib.metadata import PackageNotFoundError, version as _version

try:  # the version is pyproject.toml's, as installed
    __version__ = _version("txcore")
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"

from txcore.errors import (InputRefused, RefDataError, RulesError, StateError,  # noqa: E402
                           RowsLost, TxcoreError, UsageError, WriteError)
from txcore.fixtures import make_fixtures  # noqa: E402
from txcore.rules.refdata import load_cards, load_merchants  # noqa: E402
from txcore.rules.book import load_book  # noqa: E402
from txcore.runner import demo, run  # noqa: E402

__all__ = ["run", "demo", "make_fixtures", "load_book", "load_cards", "load_merchants",
           "TxcoreError", "UsageError", "RulesError", "RefDataError", "InputRefused",
           "StateError", "WriteError", "RowsLost", "__version__"]
