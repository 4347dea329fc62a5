"""Audit: replay of historical files with ``--compare`` (``replay``), one
transaction's pricing in words (``explain``), and the programme report (``report``)."""
