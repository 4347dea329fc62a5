"""The state a run continues from: counters, reversal index and taken txn_ids in
memory (``memory``) and as arrays and hash tables for the kernels (``compact``); the
state folder on disk and its atomic commit (``store``), its fixed-width index segments
and counter files (``segments``); the card key (``keys``) and the state's tables
(``schema``)."""
