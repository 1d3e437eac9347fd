"""Errors that reach the user as one clear line (the CLI prints them without a traceback)."""


class CxrdataError(Exception):
    """A problem the user can fix: a missing file, a bad option, a malformed input known up front."""


class Rejected(Exception):
    """Raised for one record a stage cannot process; the engine turns it into a reject row."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
