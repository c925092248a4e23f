"""/points and /history render their ledger lines from one template look-up per answer (issue 5's
benchmark): ``LedgerLines`` gives the line as ``tr`` renders it, and ``Translator`` renders as ``t``."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from bot.domain.records import LedgerRow, Source
from bot.domain.scoring import item_of
from bot.i18n import LANGUAGES, Safe, Translator, catalog, t
from bot.presets import preset
from handlers.queries import LedgerLines, _signed


def reference_line(tr: Translator, rulebook, row: LedgerRow, origins: dict[int, str] | None = None) -> str:
    """The line as ledger_line rendered it before LedgerLines: two ``tr`` calls per row."""
    item = item_of(rulebook, row.item_code)
    name = item.name.get(tr.lang) if item else row.item_code
    if item is not None and row.event_code and (event := item.event(row.event_code)) is not None:
        name = f"{name} · {event.name.get(tr.lang)}"
    line = tr("history.line", date=row.occurred_on.isoformat(), item=name, value=_signed(row.value),
              source=tr(f"source.{row.source.value}"), reason=row.reason or "")
    origin = (origins or {}).get(row.branch_id)
    return line if origin is None else f"{line} {tr('transfer.year.history_from', branch=origin)}"


def _row(n: int, **fields) -> LedgerRow:
    data = dict(id=n, branch_id=1, member_id=1, item_code="study", event_code=None, value=Decimal(3),
                occurred_on=date(2026, 1 + n % 12, 1 + n % 28), source=Source.RECORDER, reference=f"r{n}",
                actor_id=None, reason="理由", reverses_id=None, created_at=datetime(2026, 3, 1, tzinfo=UTC))
    data.update(fields)
    return LedgerRow(**data)


def test_ledger_lines_are_the_lines_tr_renders() -> None:
    hostile = "<b>x</b> & \"q\" 'a' &amp; <script>"
    for code in ("xishui", "zhangdian", "jiancaoping", "sanmenxia"):
        rulebook = preset(code)
        rows = []
        n = 0
        for category in rulebook.categories:
            for item in category.items:
                for event in (None, *[e.code for e in item.events], "no_such_event"):
                    for value in (Decimal("-5"), Decimal("10"), Decimal("0"), Decimal("-0"), Decimal("2.50"), Decimal("1E+1")):
                        n += 1
                        rows.append(_row(n, item_code=item.code, event_code=event, value=value,
                                         source=list(Source)[n % len(Source)], reason=(hostile, None, "", "普通")[n % 4],
                                         branch_id=(1, 2, 3)[n % 3]))
        rows.append(_row(n + 1, item_code="no_such<item>&"))
        origins = {2: "旧<支部>&\"", 3: "Other & branch"}
        for lang in LANGUAGES:
            tr = Translator(lang)
            for marks in (origins, {}, None):
                lines = LedgerLines(tr, rulebook, marks)
                assert [lines(r) for r in rows] == [reference_line(tr, rulebook, r, marks) for r in rows]


def test_translator_renders_as_t() -> None:
    params = dict(name="<李&四>", branch=Safe("<b>x</b>"), value=Decimal("-0.50"), count=3, year=2026, month=12,
                  roles="secretary", reason="a > b", base=Decimal(100), months=11, bonus=Decimal("0"), cap="",
                  stars="★★", band="<b>", date="2026-01-02", item="x", source="y", limit=5, number=1)
    for lang in (*LANGUAGES, "fr"):
        tr = Translator(lang)
        for key in catalog("zh"):
            try:
                expected = t(lang, key, **params)
            except (KeyError, IndexError, ValueError):
                continue  # a template with a placeholder these params do not fill
            assert tr(key, **params) == expected, key
            assert tr.template(key) == (catalog(tr.lang).get(key) or catalog("zh")[key])
