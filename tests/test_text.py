"""Untrusted text shown to a person: names cleaned at upload, every value one inert quoted line."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from postqued.text import clean_name, shown


def test_clean_name_drops_controls_separators_and_bidi() -> None:
    assert clean_name("holiday\n\r\t.mp4") == "holiday.mp4"
    assert clean_name("a\u202eb\u2066c\u2069d\u200fe\u061cf.mp4") == "abcdef.mp4"
    assert clean_name("x\u2028y\u2029z\x85\x00.png") == "xyz.png"
    assert clean_name("tag\U000e0041\U000e007f.jpg") == "tag.jpg"  # invisible "tag" characters
    assert clean_name("family \U0001f468\u200d\U0001f469.jpg") == "family \U0001f468\u200d\U0001f469.jpg"
    assert clean_name(" \n ") == ""


def test_shown_is_one_quoted_inert_line() -> None:
    assert shown('say "hi"\\') == '"say \\"hi\\"\\\\"'
    assert shown("a\nb\r\tc") == '"a\\nb\\r\\tc"'
    assert shown("x\u202ey\u2028z") == '"x\\u202ey\\u2028z"'
    assert shown("ünïcödé ✓ 🎉") == '"ünïcödé ✓ 🎉"'
    assert shown("abcdef", 3) == '"abc…"' and shown("abc", 3) == '"abc"' and shown("a" * 900, None) == f'"{"a" * 900}"'


@given(st.text())
def test_shown_never_breaks_a_line_or_its_quotes(text: str) -> None:
    out = shown(text, None)
    assert len(out.splitlines()) <= 1 and out.startswith('"') and out.endswith('"')
    inner = out[1:-1].replace("\\\\", "")
    assert '"' not in inner.replace('\\"', "")  # every quote inside is escaped
    assert all(ch == " " or ch.isprintable() for ch in out)
