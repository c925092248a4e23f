"""The four seed schemes, shipped as rulebook files a branch picks at /setup."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from bot.domain.rulebook import Rulebook, load_rulebook

PRESET_DIR = Path(__file__).parent
PRESET_CODES = ("xishui", "zhangdian", "jiancaoping", "sanmenxia")


@cache
def preset(code: str) -> Rulebook:
    if code not in PRESET_CODES:
        raise KeyError(code)
    return load_rulebook(PRESET_DIR / f"{code}.toml")


def all_presets() -> dict[str, Rulebook]:
    return {code: preset(code) for code in PRESET_CODES}
