"""/points and /history read in one block and render their lines from one template look-up per answer
(issue 5's benchmark): each shortcut gives what the plain way gives. ``LedgerLines`` against the line
as ``tr`` renders it, ``Translator`` against ``t``; ``memberships`` (one statement) against
``for_user`` + ``context`` + ``by_user`` and whether the person moved; the ledger reads (day order
sorted by id in Python, the latest ids from the index, ``Shown``) against ``of_member``; ``asker``'s
refusals against ``private_branch`` + ``member_of``; ``own_standing`` / ``own_history`` against
``standing`` / ``history``."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from bot.domain.records import LedgerRow, NewLedgerRow, Source
from bot.domain.scoring import item_of
from bot.errors import DomainError
from bot.i18n import LANGUAGES, Safe, Translator, catalog, t
from bot.presets import preset
from bot.services.transfers import chain_of_member
from handlers.queries import LedgerLines, _signed
from storage import branches as branch_repo
from storage import ledger as ledger_repo
from storage import members as member_repo
from storage import transfers as transfer_repo
from tests import test_transfers as moves
from tests.conftest import setup_branch


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


async def _put(h, branch_id: int, member_id: int, day: date, value: str, ref: str, actor: int) -> LedgerRow:
    async with h.db.transaction() as conn:
        row = await ledger_repo.append(conn, NewLedgerRow(
            branch_id=branch_id, member_id=member_id, item_code="post_duty", value=Decimal(value), occurred_on=day,
            source=Source.RECORDER, reference=ref, actor_id=actor, reason=f"考评 <{ref}>"))
    assert row is not None
    return row


async def test_the_ledger_reads_of_points_and_history(h, b) -> None:
    """entries_of_member (read in day order, put in id order), recent_of_member (ids from the index,
    then those rows) and shown_of_member against the rows of_member reads, rows written out of date order."""
    zhang, secretary = b.member_ids["zhang"], b.member_ids["secretary"]
    for n in range(14):  # rows of three years, written out of date order; the newest ids are of 2025 and 2027
        year = (2026, 2025, 2026, 2027)[n % 4]
        await _put(h, b.branch.id, zhang, date(year, 12 - n % 12, 1 + n), ("3", "-2", "0", "2.50")[n % 4], f"r{n}", secretary)
    first = (await ledger_repo_rows(h, zhang))[0]
    async with h.db.transaction() as conn:
        await ledger_repo.reverse(conn, first, reference="rev", actor_id=secretary, reason=None)
    async with h.db.read() as conn:
        every = await ledger_repo.of_member(conn, zhang)
        assert [r.id for r in every] == sorted(r.id for r in every) and len(every) == 15
        for year in (2025, 2026, 2027, 2030):
            entries = await ledger_repo.entries_of_member(conn, zhang, year)
            assert [(e.id, e.item_code, e.value, e.occurred_on, e.event_code, e.reverses_id) for e in entries] == [
                (r.id, r.item_code, r.value, r.occurred_on, r.event_code, r.reverses_id) for r in every if r.occurred_on.year == year]
        for limit in (1, 5, 30):
            latest = await ledger_repo.recent_of_member(conn, zhang, limit)
            assert latest == every[::-1][:limit]
            shown = await ledger_repo.shown_of_member(conn, zhang, limit)
            assert shown == [ledger_repo.Shown(r.id, r.branch_id, r.item_code, r.event_code, r.value, r.occurred_on, r.source, r.reason)
                             for r in latest]
            assert [str(s.value) for s in shown] == [str(r.value) for r in latest]  # the same Decimals, exponent included
        assert await ledger_repo.recent_of_member(conn, b.member_ids["lisi"], 5) == []
        assert await ledger_repo.shown_of_member(conn, b.member_ids["lisi"], 5) == []


async def ledger_repo_rows(h, member_id: int) -> list[LedgerRow]:
    async with h.db.read() as conn:
        return await ledger_repo.of_member(conn, member_id)


async def _plain_way(h, user_id: int):
    """The branch and member as private_branch and member_of find them, and the person's moves."""
    async with h.db.read() as conn:
        mine = await branch_repo.for_user(conn, user_id)
        chosen = await branch_repo.context(conn, user_id)
        members = [await member_repo.by_user(conn, branch.id, user_id) for branch in mine]
        moved = bool(members) and bool(await transfer_repo.moves_of_person(conn, members[0].id))
    return list(zip(mine, members)), (chosen if mine else None), moved


async def test_memberships_and_the_asker_as_the_plain_way(h, clock) -> None:
    b1, b2 = await moves.branches(h, clock)
    stranger = h.user(9999, "路人")
    await h.say(stranger, h.private(stranger), "/start")
    zhang = b1.zhang
    async def check(user_id: int, expect_moved: bool) -> None:
        async with h.db.read() as conn:
            found = await member_repo.memberships(conn, user_id)
        assert found == await _plain_way(h, user_id) and found[2] is expect_moved
        try:
            expected = await h.services.branches.private_branch(user_id)
            expected = (expected, await h.services.roster.member_of(expected, user_id))
        except DomainError as error:
            with pytest.raises(type(error)) as raised:
                await h.services.points.asker(user_id)
            assert raised.value.key == error.key
        else:
            assert await h.services.points.asker(user_id) == expected

    await check(stranger.id, False)  # in no branch
    await check(zhang.id, False)
    await h.say(zhang, b2.group, "/join")  # in two branches, none chosen: the same refusal
    await h.tap(b2.secretary, b2.group.id, "同意")
    await check(zhang.id, False)
    await h.services.branches.choose(zhang.id, b2.branch.id)
    await check(zhang.id, False)
    await check(b1.lisi.id, False)
    moved = await moves.move(h, clock, moves.utc(2026, 2, 10, 2, 0), b1, b2, b1.lisi)
    assert moved
    await check(b1.lisi.id, True)
    await check(b1.secretary.id, False)


async def test_own_standing_and_history_are_standing_and_history(h, clock) -> None:
    b1, b2 = await moves.branches(h, clock)
    await moves.put(h, b1, b1.member_ids["zhang"], "8", date(2026, 2, 10))
    new_zhang = await moves.move(h, clock, moves.utc(2026, 5, 10, 2, 0), b1, b2, b1.zhang)
    await moves.put(h, b2, new_zhang, "4", date(2026, 5, 12))
    await moves.put(h, b1, b1.member_ids["lisi"], "-3", date(2026, 6, 1))
    for moment in (moves.utc(2026, 6, 20, 2, 0), moves.utc(2027, 1, 5, 2, 0)):
        clock.set(moment)
        for person in (b1.zhang, b1.lisi, b2.secretary, b1.recorder):
            branch, member = await h.services.points.asker(person.id)
            assert (branch, member) == (await h.services.branches.private_branch(person.id),
                                        await h.services.roster.member_of(branch, person.id))
            own = await h.services.points.own_standing(person.id)
            assert own == (branch, member, await h.services.points.standing(branch, member))
            assert own[2].entries == (await h.services.points.standing(branch, member)).entries
            own_branch, own_member, shown, origins = await h.services.points.own_history(person.id)
            rows, expected_origins = await h.services.points.history(branch, member)
            assert (own_branch, own_member, origins) == (branch, member, expected_origins)
            assert [(r.id, r.branch_id, r.item_code, r.event_code, r.value, r.occurred_on, r.source, r.reason) for r in shown] \
                == [(r.id, r.branch_id, r.item_code, r.event_code, r.value, r.occurred_on, r.source, r.reason) for r in rows]
            for lang in LANGUAGES:  # the lines are the same whichever the rows came as
                tr = Translator(lang)
                assert list(map(LedgerLines(tr, preset("xishui"), origins), shown)) == \
                    [reference_line(tr, preset("xishui"), r, expected_origins) for r in rows]
            async with h.db.read() as conn:
                assert bool((await chain_of_member(conn, member.id)).stints) is (person is b1.zhang)


async def test_an_exempt_member_gets_no_standing(h, b) -> None:
    await h.say(b.secretary, b.group, f"/state @{b.lisi.username} exempt 病假")
    branch, member, standing = await h.services.points.own_standing(b.lisi.id)
    assert standing is None and not member.scored and branch.id == b.branch.id
