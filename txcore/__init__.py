"""txcore: fee-and-discount pricing for the trade-union member service card.

The pipeline is reader -> validate -> price -> write, with rules and state
beside it::

    txcore.reader     input files as streams of Arrow record batches
    txcore.validate   stateless row checks -> Txn or Reject (SPEC §10 order)
    txcore.pricing    the reference engine (the spec in code)
    txcore.assemble   priced / reject batches from per-row outcomes
    txcore.writer     outputs, one batch at a time, renamed into place on commit
    txcore.rules      rule-set versions (TOML), validation, version in force
    txcore.refdata    card registry and partner merchants: loading, row-by-row checks
    txcore.registry   the card registry kept as Arrow columns (Card, Cards)
    txcore.registry_check  the registry validated by columns (the fast path)
    txcore.state      free-slot counters, reversal index, retention
    txcore.summary    control totals, summary.json, terminal table
    txcore.runner     orchestration of a run; the demo
    txcore.fixtures   synthetic data shaped by the Licheng 2013 notice
    txcore._fast      compiled hot path (Cython) with pure-Python twins

The public API is re-exported here.
"""
__version__ = "0.1.0"

from txcore.errors import (InputRefused, RefDataError, RulesError, StateError,  # noqa: E402
                           TxcoreError, UsageError)
from txcore.fixtures import make_fixtures  # noqa: E402
from txcore.refdata import load_cards, load_merchants  # noqa: E402
from txcore.rules import load_book  # noqa: E402
from txcore.runner import demo, run  # noqa: E402

__all__ = ["run", "demo", "make_fixtures", "load_book", "load_cards", "load_merchants",
           "TxcoreError", "UsageError", "RulesError", "RefDataError", "InputRefused",
           "StateError", "__version__"]
