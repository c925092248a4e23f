"""Time zone names as people type them: ``asia/shanghai`` is Asia/Shanghai (IANA names differ only by case
from what is typed more often than not)."""

from __future__ import annotations

import unicodedata
from functools import cache
from zoneinfo import available_timezones


@cache
def _by_folded_name() -> dict[str, str]:
    return {name.casefold(): name for name in available_timezones()}


def canonical_timezone(typed: str) -> str:
    """The IANA name ``typed`` means, matched without regard to case (full-width letters as half-width);
    what is typed, trimmed, when no zone has that name (the caller's check refuses it clearly)."""
    text = unicodedata.normalize("NFKC", typed).strip()
    return _by_folded_name().get(text.casefold(), text)
