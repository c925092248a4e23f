"""Message catalogs: Simplified Chinese (default) and English.

Every parameter is HTML-escaped when it is put into a message, unless it is ``Safe`` (a fragment
this code rendered itself). So user text can never inject markup.
"""

from __future__ import annotations

import html
import re
import string
import tomllib
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import Any

LANGUAGES = ("zh", "en")
DEFAULT_LANGUAGE = "zh"


class Safe(str):
    """Already-rendered HTML: inserted as it is."""


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, str]:
    flat: dict[str, str] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = str(value)
    return flat


@cache
def catalog(lang: str) -> dict[str, str]:
    """All of a language's files (bot/locales/<lang>/*.toml, one per feature) as one flat catalog."""
    merged: dict[str, str] = {}
    folder = resources.files("bot.locales").joinpath(lang)
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".toml"):
            continue
        part = _flatten(tomllib.loads(entry.read_text(encoding="utf-8")))
        clash = merged.keys() & part.keys()
        if clash:
            raise ValueError(f"{lang}/{entry.name} repeats catalog keys: {', '.join(sorted(clash))}")
        merged.update(part)
    return merged


def placeholders(template: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(template) if field}


def language_of(user_language: str | None, branch_language: str | None = None) -> str:
    """A private chat follows the user's Telegram language; otherwise the branch's setting."""
    if user_language:
        code = user_language.lower()
        if code.startswith("en"):
            return "en"
        if code.startswith("zh"):
            return "zh"
    return branch_language if branch_language in LANGUAGES else DEFAULT_LANGUAGE


def escape(text: str) -> str:
    """``html.escape(text, quote=False)``, inlined: what a plain text parameter becomes in a message."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _render(value: Any) -> str:
    if type(value) is str:  # most parameters: user or catalog text (Safe is a subclass, not str itself)
        return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if isinstance(value, Safe):
        return value
    if isinstance(value, Decimal):
        return html.escape(format_points(value))
    return html.escape(str(value), quote=False)


_TAG = re.compile(r"<[^>]*>")


def _render_plain(value: Any) -> str:
    """A parameter as it reads in plain text (Translator.plain): user text as it is, not escaped."""
    if isinstance(value, Safe):  # rendered HTML: what Telegram would show of it
        return html.unescape(_TAG.sub("", value))
    if isinstance(value, Decimal):
        return format_points(value)
    return str(value)


def format_points(value: Decimal) -> str:
    """Points as people write them: 33, 32.5, -2 (no exponent, no trailing zeros)."""
    text = format(value.normalize(), "f")
    return text if "." not in text else text.rstrip("0").rstrip(".")


def t(lang: str, key: str, **params: Any) -> str:
    templates = catalog(lang if lang in LANGUAGES else DEFAULT_LANGUAGE)
    template = templates.get(key) or catalog(DEFAULT_LANGUAGE)[key]
    return template.format_map({k: _render(v) for k, v in params.items()})


class Translator:
    """``t`` bound to one language, for a handler's reply."""

    def __init__(self, lang: str):
        self.lang = lang if lang in LANGUAGES else DEFAULT_LANGUAGE
        self._templates = catalog(self.lang)

    def __call__(self, key: str, **params: Any) -> str:
        # t(self.lang, key, **params) without its second call and catalog look-up (a reply makes dozens)
        template = self._templates.get(key) or catalog(DEFAULT_LANGUAGE)[key]
        return template.format_map({k: _render(v) for k, v in params.items()})

    def plain(self, key: str, **params: Any) -> str:
        """``key`` as plain text, where Telegram shows text as it is (a button's label) or where it is
        stored to be shown later (a reason written to the ledger, escaped when displayed): the parameters
        go in unescaped, so a name like "米&油" or "<A>" reads as typed. A message goes through
        ``__call__`` (escaped) instead."""
        template = self._templates.get(key) or catalog(DEFAULT_LANGUAGE)[key]
        return template.format_map({k: _render_plain(v) for k, v in params.items()})

    def template(self, key: str) -> str:
        """The raw template ``key`` renders (the default language's where this one lacks it), for a caller
        that fills it many times with parameters it rendered itself (escaped, see ``escape``)."""
        return self._templates.get(key) or catalog(DEFAULT_LANGUAGE)[key]
