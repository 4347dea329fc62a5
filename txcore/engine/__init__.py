"""The engines, and the one place that chooses a pricing backend.

Every backend is an engine with ``price_batch(batch) -> (priced, rejects)`` over the
same rule book, registry and :class:`~txcore.state.memory.State`, and must give
identical output.  ``python`` is the reference engine (``reference``: row checks in
``validate``, the pricing rules in plain Python, the specification in code);
``cython`` (the default) and ``numba`` run the compiled kernel through ``compiled``
(batches encoded by ``encoder``, rules flattened by ``flatrules``, local dates by
``zones``).  Engines are imported when chosen, so importing one module of this
package never loads the others.
"""
from __future__ import annotations

import importlib

#: Backend name -> (module, engine class).
_ENGINES = {"cython": ("txcore.engine.compiled", "CythonEngine"),
            "numba": ("txcore.engine.compiled", "NumbaEngine"),
            "python": ("txcore.engine.reference", "ReferenceEngine")}
BACKENDS = tuple(_ENGINES)
DEFAULT_BACKEND = "cython"


def make_engine(name: str, book, cards, state, business_date=None, **options):
    """An engine of backend ``name`` over ``book``, ``cards`` and ``state``; rows dated more
    than a day after ``business_date`` (when given) are rejected bad_ts.  ``options``: the
    engine's own (a compiled engine's ``registry``)."""
    try:
        module, cls = _ENGINES[name]
    except KeyError:
        from txcore.errors import UsageError
        raise UsageError(f"unknown backend {name!r} (choose from {', '.join(BACKENDS)})") from None
    return getattr(importlib.import_module(module), cls)(book, cards, state, business_date,
                                                         **options)
