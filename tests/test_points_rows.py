"""A member's own /points reads what its standing needs in two statements (issue 5's benchmark): the
asker, then the year's rows, the latest rows and the post claims in one (``storage.ledger.standing_rows``),
each through ``read_one`` (no BEGIN/COMMIT on PostgreSQL); /history the asker, then its rows. Each
shortcut gives what the plain reads give: ``standing_rows`` against ``entries_of_member``,
``shown_of_member`` and ``claims_of``; the months' posts from those claims against
``services.posts.posts_by_month``."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from bot.domain.records import NewLedgerRow, Source
from bot.presets import preset
from bot.services import points as points_service
from bot.services.posts import posts_by_month
from storage import ledger as ledger_repo
from storage import posts as post_repo
from tests import test_transfers as moves
from tests.test_approval_path import count_database_work


async def _put(h, b, member_id: int, day: date, value: str, ref: str) -> None:
    async with h.db.transaction() as conn:
        row = await ledger_repo.append(conn, NewLedgerRow(
            branch_id=b.branch.id, member_id=member_id, item_code="post_duty", value=Decimal(value), occurred_on=day,
            source=list(Source)[len(ref) % len(Source)], reference=ref,
            actor_id=b.member_ids["secretary"], reason=(f"考评 <{ref}> &", None)[len(ref) % 2]))
    assert row is not None


async def test_standing_rows_are_the_rows_the_plain_reads_give(h, b) -> None:
    zhang, lisi = b.member_ids["zhang"], b.member_ids["lisi"]
    for n in range(17):  # rows of four years, written out of date order, values with exponents
        year = (2026, 2025, 2026, 2027)[n % 4]
        await _put(h, b, zhang, date(year, 12 - n % 12, 1 + n), ("3", "-2", "0", "2.50", "-0", "1E+1")[n % 6], f"r{n}")
    async with h.db.read() as conn:
        first = (await ledger_repo.of_member(conn, zhang))[0]
    async with h.db.transaction() as conn:
        await ledger_repo.reverse(conn, first, reference="rev", actor_id=b.member_ids["secretary"], reason=None)
        posts = await _posts(conn, b)
        await post_repo.set_claims(conn, b.branch.id, zhang, [posts[0].id, posts[1].id], date(2026, 3, 1))
        await post_repo.set_claims(conn, b.branch.id, zhang, [posts[2].id], date(2026, 8, 15))
    async with h.db.read() as conn:
        for member in (zhang, lisi):  # lisi: no rows, no claims
            for year in (2025, 2026, 2027, 2030):
                for latest in (1, 5, 30):
                    for claims in (True, False):
                        found = await ledger_repo.standing_rows(conn, member, year, latest, claims)
                        entries = await ledger_repo.entries_of_member(conn, member, year)
                        assert [(e.id, e.item_code, e.value, e.occurred_on, e.event_code, e.reverses_id) for e in found.entries] \
                            == [(e.id, e.item_code, e.value, e.occurred_on, e.event_code, e.reverses_id) for e in entries]
                        assert [str(e.value) for e in found.entries] == [str(e.value) for e in entries]  # exponents too
                        shown = await ledger_repo.shown_of_member(conn, member, latest)
                        assert found.latest == shown and [str(s.value) for s in found.latest] == [str(s.value) for s in shown]
                        assert found.claims == (await post_repo.claims_of(conn, member) if claims else None)
        assert len((await ledger_repo.standing_rows(conn, zhang, 2026, 5, True)).claims or []) == 3
        assert (await ledger_repo.standing_rows(conn, lisi, 2026, 5, True)).claims == []


async def test_the_months_posts_from_the_claims_read_are_posts_by_month(h, b) -> None:
    zhang, lisi = b.member_ids["zhang"], b.member_ids["lisi"]
    async with h.db.transaction() as conn:
        posts = await _posts(conn, b)
        await post_repo.set_claims(conn, b.branch.id, zhang, [posts[0].id, posts[1].id], date(2026, 3, 1))
        await post_repo.set_claims(conn, b.branch.id, zhang, [], date(2026, 6, 10))
        await post_repo.set_claims(conn, b.branch.id, zhang, [posts[2].id], date(2026, 8, 15))
    async with h.db.read() as conn:
        for code in ("xishui", "zhangdian", "jiancaoping", "sanmenxia"):
            rulebook = preset(code)
            for member in (zhang, lisi):
                claims = await post_repo.claims_of(conn, member) if rulebook.posts is not None else None
                for today in (date(2026, 3, 20), date(2026, 6, 10), date(2026, 12, 31), date(2027, 1, 2)):
                    for year in (2026, today.year):
                        assert points_service._posts_of(rulebook, claims, year, today) == \
                            await posts_by_month(conn, rulebook, member, year, today)


async def _posts(conn, b):
    """The branch's posts, seeded as the posts board seeds them."""
    await post_repo.seed(conn, b.branch.id, [(n.zh, n.en) for n in preset("xishui").posts.names])
    return await post_repo.active(conn, b.branch.id)


def _count(h, monkeypatch) -> dict[str, int]:
    """Repository statements, and the read blocks (``read``) and one-statement reads (``read_one``)
    entered through h.db, from now on."""
    return count_database_work(h, monkeypatch, {"read": "read", "read_one": "read_one"})


async def test_own_points_and_history_are_two_one_statement_reads(h, b, clock, monkeypatch) -> None:
    await _put(h, b, b.member_ids["zhang"], date(2026, 3, 2), "3", "x")
    used = _count(h, monkeypatch)
    chat = h.private(b.zhang)
    for command, expected in (("/points", "积分（"), ("/history", "积分明细")):
        used.update(statements=0, read=0, read_one=0)
        calls = await h.say(b.zhang, chat, command)
        assert expected in str(calls[-1].params["text"])
        # SQLite's read_one is its read: counted as both there
        assert used == {"statements": 2, "read": 2 if h.db.backend == "sqlite" else 0, "read_one": 2}, (command, used)


async def test_a_member_who_moved_reads_the_chain_in_one_block(h, clock, monkeypatch) -> None:
    b1, b2 = await moves.branches(h, clock)
    await moves.move(h, clock, moves.utc(2026, 5, 10, 2, 0), b1, b2, b1.zhang)
    used = _count(h, monkeypatch)
    branch, member, standing = await h.services.points.own_standing(b1.zhang.id)
    assert standing is not None and standing.transfer is not None and branch.id == b2.branch.id
    assert used["read_one"] == 1 and used["read"] == (2 if h.db.backend == "sqlite" else 1)
