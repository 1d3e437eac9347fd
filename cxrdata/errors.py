"""Errors that reach the user as one clear line (the CLI prints them without a traceback)."""


class CxrdataError(Exception):
    """A problem the user can fix: a missing file, a bad option, a malformed input known up front."""


class Rejected(Exception):
    """Raised for one record a stage cannot process; the engine turns it into a reject row."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type name when it has none), for one-line errors."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
