"""The state a run continues from: counters, reversal index and taken txn_ids in
memory (``memory``) and as arrays and hash tables for the kernels (``compact``); the
state folder on disk and its atomic commit (``store``); the card key (``keys``) and
the index's on-disk schema (``schema``)."""
