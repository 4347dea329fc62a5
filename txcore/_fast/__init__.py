"""The compiled hot path, and the one place that picks a compiled module or its twin.

* ``kernel.pyx`` (structs in ``kernel.pxd``, their numpy twins in ``layout.py``):
  the pricing loop; its twin is the numba module ``kernel_numba.py`` (the ``numba``
  backend);
* ``encode.pyx``: encoders over Arrow buffers (SipHash-128, ISO timestamps, integers,
  digest rows) and the encoder's fused pass over a batch's text columns
  (``encode_rows``); twin ``encode_py.py``;
* ``cardcheck.pyx``: the card-number check (its byte rule in ``textrules.pxd``, shared
  with ``encode.pyx``); twin ``cardcheck_py.py``;
* ``probe.pyx``: which of a run's txn digests a state segment holds (a merge of two
  sorted key lists); twin ``probe_py.py``;
* ``records.pyx``: a state's index entries as the state folder's records, by card
  bucket and key (the commit's sort and gather); twin ``records_py.py``;
* ``keep.pyx``: the priced rows of a batch's text columns, copied a run of
  consecutive rows at a time (where Arrow's filter takes each value on its own); twin
  ``keep_py.py``;
* ``iso8583.pyx``: ISO 8583 frames and messages to Arrow string columns (fixed-layout
  specifications); twin ``iso8583_py.py``, which decodes with pyiso8583, the reference;
* ``buffers.py``: an Arrow string column as the ``(offsets, data, validity,
  offset)`` buffers every encoder takes.

Each twin has the same functions over the same buffers: the readable version, and
the fallback when an extension is not built.  Tests run both and Hypothesis checks
them against each other and against the reference engine.  Callers get a module
through :func:`compiled_or_twin` or :func:`load_kernel`, never by importing it directly.
"""
from __future__ import annotations

import importlib
import os
from types import ModuleType

#: ``TXCORE_NO_EXTENSIONS=1`` makes every caller use the pure-Python twins.
NO_EXTENSIONS = os.environ.get("TXCORE_NO_EXTENSIONS") == "1"

_chosen: dict[str, ModuleType] = {}


def compiled_or_twin(name: str) -> ModuleType:
    """``txcore._fast.<name>`` (Cython), or its twin ``<name>_py`` when
    ``TXCORE_NO_EXTENSIONS=1`` or the extension is not built."""
    module = _chosen.get(name)
    if module is None:
        module = importlib.import_module(f"txcore._fast.{name}_py")
        if not NO_EXTENSIONS:
            try:
                module = importlib.import_module(f"txcore._fast.{name}")
            except ImportError:  # not built: the twin gives the same answers, slower
                pass
        _chosen[name] = module
    return module


def is_compiled(module: ModuleType) -> bool:
    """Whether ``module`` is a Cython build (each ``.pyx`` sets ``CYTHON_MODULE = 1``)."""
    return bool(getattr(module, "CYTHON_MODULE", 0))


def load_kernel(backend: str) -> ModuleType:
    """The pricing kernel of a backend: ``"cython"`` (``txcore._fast.kernel``, its
    structs and enums checked against :mod:`txcore._fast.layout`) or ``"numba"``."""
    if backend == "cython":
        compiled = importlib.import_module("txcore._fast.kernel")  # ImportError: not built
        from txcore._fast.layout import check_compiled
        check_compiled(compiled)
        return compiled
    if backend == "numba":
        return importlib.import_module("txcore._fast.kernel_numba")
    raise ValueError(backend)
