"""The one exception type a user is meant to read, and how a user's value is shown in it."""

from __future__ import annotations

from typing import Any

# An error is one line: a value a user typed (or a YAML alias expanded a million times) is
# shown only up to this many characters.
SHOWN_CHARACTERS = 60


class PipelineError(Exception):
    """A bad input (params, data file, checkpoint, device): its message is one line
    naming the key or file, the bad value and what is allowed."""


def not_utf8(path: object, byte: int, offset: int) -> PipelineError:
    """The error for a file that is not UTF-8 text (UTF-16, Latin-1, ...), at its first bad byte."""
    return PipelineError(
        f"{path}: not UTF-8 text (byte {byte:#04x} at offset {offset:,}); save it as UTF-8"
    )


def shorten(text: str) -> str:
    """`text` on one line (a newline or other control character escaped, as repr does) and
    cut to SHOWN_CHARACTERS, with a note of its full length when it was cut."""
    if not text.isprintable():
        text = repr(text)[1:-1]
    if len(text) <= SHOWN_CHARACTERS:
        return text
    return f"{text[:SHOWN_CHARACTERS]}... ({len(text):,} characters)"


def shown(value: Any) -> str:
    """repr(value), shortened: a one-line error never carries a whole huge value."""
    return shorten(repr(value))
