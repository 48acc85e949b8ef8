"""The one base class of every error a user can cause (bad data, bad params, bad media,
missing or incompatible inputs).

Entry points (the stage runner and the CLI) catch :class:`IntrodetectError` and
``FileNotFoundError`` only and print them as one line; anything else is a bug and keeps
its traceback.
"""

from __future__ import annotations


class IntrodetectError(Exception):
    """Something about the user's input makes the work impossible; the message says what
    (and names the file where there is one)."""


class OutputError(IntrodetectError):
    """A result or cache file cannot be written (full disk, read-only folder, a file where
    a folder should be); the message names the path and the cause, never the input."""


def describe_os_error(e: OSError) -> str:
    """``strerror`` of an OS error (``No space left on device``), else its text."""
    return e.strerror or str(e)
