"""Errors that stop a command, each with the exit code of docs/cli.md#exit-codes.

A bad *row* is never an error: it is a reject.  These are for whole inputs.
"""


class TxcoreError(Exception):
    exit_code = 2


class UsageError(TxcoreError):
    """Bad command line (exit 2)."""


class RulesError(TxcoreError):
    """A rules folder that fails to parse or validate (exit 2).

    ``problems`` lists every problem found, each naming file, rule and key.
    """

    def __init__(self, problems):
        self.problems = list(problems)
        super().__init__("invalid rules:\n  " + "\n  ".join(self.problems))


class RefDataError(TxcoreError):
    """Invalid card registry or merchants table (exit 2)."""

    def __init__(self, problems):
        self.problems = list(problems)
        super().__init__("invalid reference data:\n  " + "\n  ".join(self.problems))


class InputRefused(TxcoreError):
    """An input file that cannot be read as a whole (exit 3); nothing of it is committed."""

    exit_code = 3


class OutputRefused(TxcoreError):
    """An input whose columns the chosen output format cannot hold (exit 2): refused
    before any of its rows is written; nothing of the run is committed."""


class StateError(TxcoreError):
    """The state directory cannot be used (exit 2)."""


class RowsLost(TxcoreError):
    """Input rows do not add up to priced + rejected rows (exit 4): an internal fault,
    raised before the commit so that nothing of the run is committed."""

    exit_code = 4


class WriteError(TxcoreError):
    """Outputs or state could not be written (disk full, I/O error) (exit 4).

    Nothing of the run is committed; the last committed state is intact.
    """

    exit_code = 4
