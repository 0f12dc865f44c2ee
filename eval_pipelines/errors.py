"""User-facing errors.

Every error a user can cause (a bad spec, a missing table, a failed input check) is an
``EvalError`` whose message is a sentence naming the spec key, table, column or week involved.
The CLI prints the message and exits with the error's ``exit_code`` (3; 4 for failed input
checks, so a CI job can tell bad data from a bad spec); it never shows a traceback for these.
"""


class EvalError(Exception):
    """Base class for errors caused by input the user controls."""

    exit_code = 3


class SpecError(EvalError):
    """The YAML spec is invalid: the message names the key path and what was expected."""


class WarehouseError(EvalError):
    """The warehouse could not be reached or a query failed (credentials never included)."""


class ValidationFailed(EvalError):
    """An input check failed; metrics are not computed on data that failed its checks."""

    exit_code = 4

    def __init__(self, message: str, failures: list[str]) -> None:
        super().__init__(message)
        self.failures = failures
