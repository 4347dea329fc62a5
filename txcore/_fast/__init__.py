"""The compiled hot path.

Each compiled module ``X.pyx`` has a pure-Python twin ``X_py.py`` with the same
functions over the same buffers; the twin is the readable version and the
fallback when the extension is not built.  The tests run both and Hypothesis
checks them against each other.  Pick a module through :mod:`txcore.cardno`
(and later dispatchers), never import these directly.
"""
