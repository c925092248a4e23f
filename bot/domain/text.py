"""Cleaning what people type before it is stored or shown."""

from __future__ import annotations

import unicodedata

NAME_MAX = 64
PLACE_MAX = 100
DESCRIPTION_MAX = 1000
REASON_MAX = 500


def _drop_format_chars(text: str, keep_newlines: bool) -> str:
    # Cf: bidi overrides, zero-width joiners and the like; Cc: control characters.
    kept = []
    for ch in text:
        category = unicodedata.category(ch)
        if ch == "\n" and keep_newlines:
            kept.append(ch)
        elif category in ("Cf", "Cc", "Cs", "Co", "Cn"):
            continue
        else:
            kept.append(ch)
    return "".join(kept)


def clean_name(text: str | None) -> str:
    """A display name: one line, no invisible characters, at most NAME_MAX characters."""
    cleaned = " ".join(_drop_format_chars(unicodedata.normalize("NFC", text or ""), keep_newlines=False).split())
    return cleaned[:NAME_MAX]


def clean_text(text: str | None) -> str:
    """Free text (place, description, reason): invisible characters removed, newlines kept, trimmed."""
    cleaned = _drop_format_chars(unicodedata.normalize("NFC", text or ""), keep_newlines=True)
    lines = [" ".join(line.split()) for line in cleaned.split("\n")]
    return "\n".join(lines).strip()
