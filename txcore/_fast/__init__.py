"""The compiled hot path.

* ``kernel.pyx`` (structs in ``kernel.pxd``): the pricing loop; its twin is the numba
  module ``kernel_numba.py`` (the ``numba`` backend);
* ``encode.pyx``: column encoders over Arrow buffers (SipHash-128, ISO timestamps,
  integers, digest rows); twin ``encode_py.py``;
* ``cardcheck.pyx``: the card-number check; twin ``cardcheck_py.py``.

Each twin has the same functions over the same buffers: the readable version, and
the fallback when an extension is not built.  Tests run both and Hypothesis checks
them against each other and against the reference engine.  Modules are picked by
:mod:`txcore.extensions` and :mod:`txcore.cardno`, never imported directly.
"""
