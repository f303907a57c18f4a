"""Exit codes of the BIDS-Apps execution spec and the error type that carries them."""

from __future__ import annotations

EX_OK = 0
EX_FAILURE = 1
EX_VALIDATION = 16
EX_USAGE = 64
EX_DATAERR = 65
EX_NOINPUT = 66
EX_CANTCREAT = 73


class PetbindError(Exception):
    """A user-facing error: one line naming the file and the fix, and an exit code."""

    def __init__(self, message: str, exit_code: int = EX_FAILURE) -> None:
        # one line whatever the message quotes (a library's error may span several)
        super().__init__(" ".join(str(message).split()))
        self.exit_code = exit_code
