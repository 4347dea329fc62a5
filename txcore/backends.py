"""The one place that chooses a pricing backend.

Every backend is an engine with ``price_batch(batch) -> (priced, rejects)``
over the same rule book, registry and :class:`~txcore.state.State`, and must
give identical output.  ``python`` is the reference engine (the spec in code);
``cython`` (the default) and ``numba`` run the compiled kernel of
:mod:`txcore.engine`.
"""
from __future__ import annotations

from txcore.engine import CythonEngine, NumbaEngine
from txcore.pricing import ReferenceEngine

BACKENDS = {"cython": CythonEngine, "numba": NumbaEngine, "python": ReferenceEngine}
DEFAULT_BACKEND = "cython"


def make_engine(name: str, book, cards, state, business_date=None):
    try:
        cls = BACKENDS[name]
    except KeyError:
        from txcore.errors import UsageError
        raise UsageError(f"unknown backend {name!r} (choose from {', '.join(BACKENDS)})") from None
    return cls(book, cards, state, business_date)
