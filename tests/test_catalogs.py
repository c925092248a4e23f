"""The message catalogs: both languages agree, messages are valid Telegram HTML, every key the code uses exists."""

from __future__ import annotations

import re
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path

import pytest

import handlers.menus
from bot.i18n import LANGUAGES, Safe, catalog, format_points, language_of, placeholders, t

ROOT = Path(__file__).resolve().parent.parent
TELEGRAM_TAGS = {"b", "i", "u", "s", "code", "pre", "a"}
ERROR_RAISE = re.compile(r'(DomainError|NotAuthorized|NotFound|AlreadyDone|InvalidInput)\("([a-z_.]+)"')
TR_CALL = re.compile(r'\btr\("([a-z_.]+)"')


def _sources(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py"))


def test_both_catalogs_have_the_same_keys():
    zh, en = catalog("zh"), catalog("en")
    only_zh = sorted(zh.keys() - en.keys())
    only_en = sorted(en.keys() - zh.keys())
    assert not only_zh and not only_en, f"only in zh: {only_zh}; only in en: {only_en}"


def test_both_catalogs_have_the_same_placeholders():
    zh, en = catalog("zh"), catalog("en")
    differing = {
        key: (sorted(placeholders(zh[key])), sorted(placeholders(en[key])))
        for key in sorted(zh.keys() & en.keys())
        if placeholders(zh[key]) != placeholders(en[key])
    }
    assert not differing, f"placeholders differ (zh, en): {differing}"


class _TagChecker(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.problems: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag not in TELEGRAM_TAGS:
            self.problems.append(f"unsupported tag <{tag}>")
        self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.problems.append(f"self-closing tag <{tag}/>")

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"unexpected </{tag}> (open: {self.stack})")
        else:
            self.stack.pop()

    def close(self):
        super().close()
        if self.stack:
            self.problems.append(f"unclosed tags: {self.stack}")


@pytest.mark.parametrize("lang", LANGUAGES)
def test_messages_are_well_formed_telegram_html(lang):
    bad = {}
    for key, template in catalog(lang).items():
        text = template.format_map({name: "x" for name in placeholders(template)})
        checker = _TagChecker()
        checker.feed(text)
        checker.close()
        if checker.problems:
            bad[key] = checker.problems
    assert not bad, f"{lang}: {bad}"


@pytest.mark.parametrize("lang", LANGUAGES)
def test_menu_descriptions_fit_telegram_limits(lang):
    menu = {key[len("menu."):]: text for key, text in catalog(lang).items() if key.startswith("menu.")}
    wrong = {name: len(text) for name, text in menu.items() if not 3 <= len(text) <= 256}
    assert not wrong, f"{lang}: descriptions outside 3..256 characters: {wrong}"
    commands = set(handlers.menus.PRIVATE_COMMANDS) | set(handlers.menus.GROUP_COMMANDS) | set(handlers.menus.ADMIN_COMMANDS)
    missing = sorted(commands - menu.keys())
    assert not missing, f"{lang}: commands without a [menu] entry: {missing}"


def test_parameters_are_escaped():
    text = t("zh", "join.requested", name="<b>x</b>&")
    assert "&lt;b&gt;x&lt;/b&gt;&amp;" in text
    assert "<b>x</b>" not in text


def test_safe_parameters_are_inserted_as_they_are():
    assert "<i>x</i>" in t("zh", "join.requested", name=Safe("<i>x</i>"))


def test_language_of():
    assert language_of("en-US") == "en"
    assert language_of("zh-hans") == "zh"
    assert language_of(None, "en") == "en"
    assert language_of("ru", None) == "zh"


def test_every_raised_error_has_a_message():
    zh = catalog("zh")
    missing = sorted(
        {f"error.{key} ({path.relative_to(ROOT)})"
         for path in _sources("bot", "handlers")
         for _, key in ERROR_RAISE.findall(path.read_text(encoding="utf-8"))
         if f"error.{key}" not in zh}
    )
    assert not missing, f"error keys without a catalog entry: {missing}"


def test_every_literal_key_in_handlers_exists():
    zh = catalog("zh")
    used = {
        (key, str(path.relative_to(ROOT)))
        for path in _sources("handlers")
        for key in TR_CALL.findall(path.read_text(encoding="utf-8"))
    }
    assert used, "no tr(...) calls found: the scan is broken"
    missing = sorted(f"{key} ({where})" for key, where in used if key not in zh)
    assert not missing, f"keys used in handlers without a catalog entry: {missing}"


@pytest.mark.parametrize(
    ("value", "text"),
    [(Decimal("33"), "33"), (Decimal("32.50"), "32.5"), (Decimal("-2"), "-2"), (Decimal("1E+1"), "10")],
)
def test_format_points(value, text):
    assert format_points(value) == text
