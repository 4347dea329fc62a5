"""The one place that picks compiled modules or their twins.

* ``encode``: ``txcore._fast.encode`` (Cython), or its pure-Python twin
  ``encode_py`` when ``TXCORE_NO_EXTENSIONS=1`` or the extension is not built;
* ``probe``: ``txcore._fast.probe`` (the state segments' merge probe), or ``probe_py``
  likewise;
* ``kernel(name)``: the pricing kernel of a backend — ``"cython"``
  (``txcore._fast.kernel``) or ``"numba"`` (``txcore._fast.kernel_numba``).
"""
from __future__ import annotations

import os

from txcore._fast import encode_py, probe_py

NO_EXTENSIONS = os.environ.get("TXCORE_NO_EXTENSIONS") == "1"

if NO_EXTENSIONS:
    encode = encode_py
    probe = probe_py
else:
    try:
        from txcore._fast import encode
    except ImportError:  # not built: the twin gives the same answers, slower
        encode = encode_py
    try:
        from txcore._fast import probe
    except ImportError:
        probe = probe_py


def kernel(name: str):
    if name == "cython":
        from txcore._fast import kernel as compiled  # an ImportError says: not built
        _check_layout(compiled)
        return compiled
    if name == "numba":
        from txcore._fast import kernel_numba
        return kernel_numba
    raise ValueError(name)


def _check_layout(compiled):
    from txcore import layout
    for name, size in compiled.sizes().items():
        if getattr(layout, name).itemsize != size:
            raise ImportError(f"txcore._fast.kernel: struct {name} is {size} bytes, "
                              f"txcore.layout says {getattr(layout, name).itemsize}; rebuild")
