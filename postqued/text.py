"""Untrusted text (file names, captions, usernames, anything from PostQued or the disk) shown to a person.

Two jobs, one place:

- ``clean_name``: a name as it is stored and sent (the upload's file name): control characters, line and
  paragraph separators, bidi overrides/isolates/marks and other invisible format characters removed.
- ``shown``: any untrusted value placed inside a question or a preview the user reads: one quoted line in
  which nothing can start a line, close the quote or reorder the text around it. Every character that is not
  printable (controls, separators, format and bidi characters, unassigned code points) becomes a visible
  ``\\uXXXX`` escape, and the quote and backslash are escaped.
"""

from __future__ import annotations

import unicodedata

__all__ = ["clean_name", "shown"]

# Zero width joiner: part of many emoji sequences, harmless on its own; every other format character goes.
_KEEP_FORMAT = frozenset({"\u200d"})


def clean_name(name: str) -> str:
    """``name`` without control, separator, bidi and other invisible format characters, trimmed."""
    kept = (
        ch
        for ch in name
        if ch in _KEEP_FORMAT or unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp")
    )
    return "".join(kept).strip()


_SHORT = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(ch: str) -> str:
    if ch in _SHORT:
        return _SHORT[ch]
    if ch == " " or ch.isprintable():
        return ch
    code = ord(ch)
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def shown(text: str, limit: int | None = 500) -> str:
    """``text`` as one inert, quoted line: ``"..."``, cut after ``limit`` characters with ``…`` (None: whole)."""
    cut = len(text) if limit is None else limit
    body = "".join(_escape(ch) for ch in text[:cut])
    return '"' + body + ('…"' if len(text) > cut else '"')
