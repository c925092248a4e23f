"""handlers.common.chunks answers a text that fits at once (one measure, not one per prefix): the same
pieces as the line-by-line split it short-cuts, on well-formed HTML (escaped text and tags per line)."""

from __future__ import annotations

import html

from hypothesis import given, settings
from hypothesis import strategies as st

from handlers.common import chunks, plain, visible_length


def _line_by_line(text: str, limit: int) -> list[str]:
    """chunks' loop as it was (every prefix measured), for lines no longer than the limit."""
    parts: list[str] = []
    current = ""
    for line in text.split("\n"):
        assert visible_length(line) <= limit
        candidate = f"{current}\n{line}" if current else line
        if visible_length(candidate) > limit:
            parts.append(current)
            current = line
        else:
            current = candidate
    if current or not parts:
        parts.append(current)
    return parts


lines = st.builds(
    lambda tag, words: f"<{tag}>{html.escape(words, quote=False)}</{tag}>" if tag else html.escape(words, quote=False),
    st.sampled_from(("", "b", "i", "code")),
    st.text(alphabet=st.sampled_from("ab <>&\"'积分党员😀"), max_size=30),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(lines, max_size=40), st.sampled_from((40, 200, 4096)))
def test_a_text_that_fits_is_one_piece_as_before(parts: list[str], limit: int) -> None:
    text = "\n".join(parts)
    if any(visible_length(line) > limit for line in parts):
        return
    assert chunks(text, limit) == _line_by_line(text, limit)
    assert "".join(plain(p) for p in chunks(text, limit)).replace("\n", "") == plain(text).replace("\n", "")
