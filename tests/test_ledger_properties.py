"""Properties of the ledger and of the bot as a whole, over random operations (hypothesis).

Each example builds its own Harness on a fresh database, nothing is shared between examples: a fresh
SQLite file, or (the ``[postgres]`` variant) a fresh PostgreSQL database cloned from the migrated
template. A PostgreSQL example costs about three times a SQLite one (a database created and dropped,
~0.6 s under load; every statement a round trip), so the PostgreSQL variant runs fewer examples
(PG_EXAMPLES): the suite's time budget, not a weaker property.
"""

from __future__ import annotations

import asyncio
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import event as note
from hypothesis import strategies as st

from bot.clock import FixedClock
from bot.domain.records import LedgerRow
from bot.domain.rulebook import ItemKind, Rulebook
from bot.domain.scoring import band_of, counted_months, month_score, year_score
from bot.domain.text import clean_text
from bot.errors import DomainError
from bot.harness import plain
from bot.services import Actor
from bot.services.branches import rulebook_of
from bot.services.declarations import Draft, Verdict
from storage._util import row_dict
from tests.conftest import MOMENT, TestHarness, assert_healthy, fresh_database, rows, setup_branch

SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
PG_EXAMPLES = 10  # per property on PostgreSQL (see the module's docstring)
TODAY = date(2026, 3, 20)
PRESETS = ("xishui", "zhangdian", "jiancaoping", "sanmenxia")


def run(coro) -> None:
    asyncio.run(coro)


def examples(backend: str, wrapped: settings = SETTINGS) -> settings:
    return wrapped if backend == "sqlite" else settings(wrapped, max_examples=min(wrapped.max_examples, PG_EXAMPLES))


def actor_of(user) -> Actor:
    return Actor(user_id=user.id, name=user.full_name, username=user.username, language=user.language_code)


def _values(low: Decimal, high: Decimal, pick: int) -> Decimal:
    """A whole-number value in low..high chosen by ``pick``."""
    span = int(high - low) + 1
    return low + pick % span


def deductions(rulebook: Rulebook, *, simple: bool) -> list[tuple[str, str | None, Decimal | None, Decimal | None]]:
    """(item, event, low, high) a recorder may enter as a deduction; simple: fixed items only, no zero-outs."""
    found = []
    for _, item in rulebook.recordable():
        if item.kind is ItemKind.ALLOTMENT and not simple:
            for event in item.events:
                low = event.value if event.value is not None else event.min
                high = event.value if event.value is not None else event.max
                found.append((item.code, event.code, low, high))
        elif item.kind is ItemKind.FIXED and item.value is not None and item.value < 0:
            found.append((item.code, None, item.value, item.value))
        elif item.kind is ItemKind.RANGED and not simple and item.max is not None and item.max <= 0:
            low, high = item.range_for(rulebook.posts_per_member)
            found.append((item.code, None, low, high))
        elif item.kind is ItemKind.ZERO_OUT and not simple:
            found.append((item.code, None, Decimal(0), Decimal(0)))
    return found


def declarables(rulebook: Rulebook, *, uncapped: bool) -> list:
    result = []
    for category, item in rulebook.declarable():
        if uncapped and (item.cap is not None or category.cap is not None or category.cap_year is not None):
            continue
        result.append(item)
    return result


async def ledger_of(h: TestHarness, member_id: int) -> list[LedgerRow]:
    async with h.db.conn.execute("SELECT * FROM ledger WHERE member_id = ? ORDER BY id", (member_id,)) as cursor:
        return [LedgerRow(**row_dict(r)) for r in await cursor.fetchall()]


# --- 1. totals always equal what the ledger says ----------------------------------------------------

OPERATION = st.tuples(
    st.sampled_from(("approve", "approve", "reject", "record", "record", "reverse")),
    st.integers(0, 10**6),  # which item / row
    st.integers(0, 10**6),  # which value
    st.integers(0, 78),  # which day (records: from 1 January; declarations: within March)
    st.booleans(),  # which member
)


def test_standing_equals_the_ledger(backend, tmp_path, request):
    @examples(backend)
    @given(preset=st.sampled_from(PRESETS), operations=st.lists(OPERATION, min_size=2, max_size=12))
    def check(preset, operations):
        with fresh_database(backend, tmp_path, request) as url:
            run(_standing_equals_the_ledger(url, preset, operations))

    check()


async def _standing_equals_the_ledger(path: str | Path, preset: str, operations) -> None:
    async with TestHarness(path, FixedClock(MOMENT)) as h:
        b = await setup_branch(h, preset=preset, start=False)
        rulebook = rulebook_of(b.branch)
        sum_scheme = preset == "sanmenxia"
        items = declarables(rulebook, uncapped=sum_scheme)
        losses = deductions(rulebook, simple=sum_scheme)
        recorder, secretary = actor_of(b.recorder), actor_of(b.secretary)
        members = {
            True: await h.services.roster.member_of(b.branch, b.zhang.id),
            False: await h.services.roster.member_of(b.branch, b.lisi.id),
        }
        for index, (kind, which, value_pick, day, who) in enumerate(operations):
            target = members[who]
            target_user = b.zhang if who else b.lisi
            try:
                if kind in ("approve", "reject") and items:
                    item = items[which % len(items)]
                    occurred = date(2026, 3, 1) + timedelta(days=day % 20)
                    declaration, created = await h.services.declarations.submit(
                        b.branch, actor_of(target_user),
                        Draft(item_code=item.code, occurred_on=occurred, place="村委会", description="做了好事"),
                        client_key=f"k{index}",
                    )
                    assert created
                    if kind == "reject":
                        await h.services.declarations.decide(declaration.id, recorder, Verdict.REJECT, reason="不符合")
                    elif item.kind is ItemKind.RANGED:
                        low, high = item.range_for(rulebook.posts_per_member)
                        await h.services.declarations.decide(declaration.id, recorder, Verdict.APPROVE,
                                                             value=_values(low, high, value_pick))
                    else:
                        await h.services.declarations.decide(declaration.id, recorder, Verdict.APPROVE)
                elif kind == "record" and losses:
                    code, event, low, high = losses[which % len(losses)]
                    await h.services.points.record(
                        b.branch, recorder, target, code, _values(low, high, value_pick),
                        date(2026, 1, 1) + timedelta(days=day), "记录", reference=f"r{index}", event_code=event)
                elif kind == "reverse":
                    all_rows = await rows(h, "SELECT id FROM ledger ORDER BY id")
                    if all_rows:
                        await h.services.points.reverse(b.branch, secretary, all_rows[which % len(all_rows)]["id"], "更正")
            except DomainError as error:
                # refusals the rules allow: reversing a reversal, or a row already reversed; declaring or recording
                # after a zero-out (尖草坪); recording a day in a month before the member joined (it would count in no month)
                assert error.key in ("record.not_reversible", "record.already_reversed", "declare.scoring_stopped",
                                     "record.scoring_stopped", "record.before_joined"), error.key

            for member in members.values():
                ledger = await ledger_of(h, member.id)
                entries = [r.entry() for r in ledger]
                standing = await h.services.points.standing(b.branch, member)
                months = counted_months(2026, TODAY, member.joined_on, member.left_on)
                year = year_score(rulebook, entries, 2026, months)
                assert standing.year.figure == year.figure
                assert standing.month.total == month_score(rulebook, entries, 2026, 3).total
                assert standing.band == band_of(rulebook, year.figure)
                # independent of the scoring code: a reversal is the exact negative of its row
                in_march = sum((r.value for r in ledger if (r.occurred_on.year, r.occurred_on.month) == (2026, 3)), Decimal(0))
                assert standing.month_net == in_march
                if sum_scheme:
                    total = sum((r.value for r in ledger), Decimal(0))
                    assert standing.year.figure == max(Decimal(0), rulebook.year_result.base + total)

        note(f"ledger rows: {len(await rows(h, 'SELECT id FROM ledger')) // 4 * 4}+")
        # every approved declaration has exactly its one ledger row; a rejected one has none
        for d in await rows(h, "SELECT * FROM declarations"):
            booked = await rows(h, "SELECT * FROM ledger WHERE source = 'declaration' AND reference = ?", f"decl:{d['id']}")
            if d["status"] == "approved":
                assert len(booked) == 1 and Decimal(booked[0]["value"]) == Decimal(d["decided_value"])
                assert booked[0]["member_id"] == d["member_id"]
            else:
                assert booked == []
        for r in await rows(h, "SELECT * FROM ledger WHERE reverses_id IS NOT NULL"):
            original = (await rows(h, "SELECT * FROM ledger WHERE id = ?", r["reverses_id"]))[0]
            assert Decimal(r["value"]) == -Decimal(original["value"]) and original["reverses_id"] is None
        assert_healthy(h)


# --- 2. a replayed update changes no table ---------------------------------------------------------


TABLES = ("branches", "members", "roles", "declarations", "ledger")
ORDER = {"roles": "branch_id, member_id, role"}  # the others by id


async def dump(h: TestHarness) -> dict:
    return {table: await rows(h, f"SELECT * FROM {table} ORDER BY {ORDER.get(table, 'id')}") for table in TABLES}


def describe(update) -> str:
    if update.callback_query is not None:
        return "press " + ":".join(str(update.callback_query.data).split(":")[:2])
    message = update.effective_message
    if message is None:
        return "chat member"
    return "photo" if message.photo else "document" if message.document else "text " + (message.text or "").split(" ")[0].rstrip("0123456789")[:8]


class ReplayHarness(TestHarness):
    """Feeds every update twice, as Telegram may redeliver it, and records any table the second time changed."""

    __test__ = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.replays = 0
        self.changed: list[tuple[str, dict, dict]] = []

    async def feed(self, update):
        calls = await super().feed(update)
        before = await dump(self)
        await super().feed(update)
        after = await dump(self)
        self.replays += 1
        note(f"replayed: {describe(update)}")
        if before != after:
            self.changed.append((describe(update), before, after))
        return calls


FLOW_STEP = st.one_of(
    st.tuples(st.just("declare"), st.sampled_from(("zhang", "lisi", "recorder")), st.integers(0, 99), st.booleans()),
    st.tuples(st.just("approve"), st.just(""), st.integers(0, 99), st.booleans()),
    st.tuples(st.just("reject"), st.just(""), st.integers(0, 99), st.booleans()),
    st.tuples(st.just("record"), st.sampled_from(("zhang", "lisi")), st.integers(0, 99), st.booleans()),
    st.tuples(st.just("join"), st.just(""), st.integers(0, 99), st.booleans()),
    st.tuples(st.just("cancel"), st.sampled_from(("zhang", "lisi")), st.integers(0, 99), st.booleans()),
)


def test_a_replayed_update_changes_no_table(backend, tmp_path, request):
    @examples(backend)
    @given(preset=st.sampled_from(("xishui", "zhangdian")), flow=st.lists(FLOW_STEP, min_size=1, max_size=6))
    def check(preset, flow):
        with fresh_database(backend, tmp_path, request) as url:
            run(_a_replayed_update_changes_no_table(url, preset, flow))

    check()


async def _a_replayed_update_changes_no_table(path: str | Path, preset: str, flow) -> None:
    """Every update of the flow, the set-up's included, is fed twice in a row."""
    async with ReplayHarness(path, FixedClock(MOMENT)) as h:
        b = await setup_branch(h, preset=preset, start=False)
        rulebook = rulebook_of(b.branch)
        items = rulebook.declarable()
        losses = deductions(rulebook, simple=False)
        losses = [x for x in losses if rulebook.item(x[0]).kind is not ItemKind.ZERO_OUT]
        people = {"zhang": b.zhang, "lisi": b.lisi, "recorder": b.recorder}
        usernames = {"zhang": b.zhang.username, "lisi": b.lisi.username}
        last: tuple[int, object] | None = None  # (declaration number, its declarant)
        for n, (kind, who, pick_item, flag) in enumerate(flow):
            if kind == "declare":
                person = people[who]
                chat = h.private(person)
                category, item = items[pick_item % len(items)]
                await h.say(person, chat, "/declare")
                await h.press(person, h.world.last_message(chat.id), f"dl:c:{category.code}")
                await h.press(person, h.world.last_message(chat.id), f"dl:i:{item.code}")
                if flag:
                    await h.press(person, h.world.last_message(chat.id), "dl:d:0")
                else:
                    await h.say(person, chat, "3-2")
                await h.say(person, chat, f"地点{n}")
                await h.say(person, chat, f"经过{n}")
                if flag:
                    await h.send_photo(person, chat)
                else:
                    await h.press(person, h.world.last_message(chat.id), "dl:np")
                await h.press(person, h.world.last_message(chat.id), "dl:ok")
                found = await rows(h, "SELECT max(id) AS id FROM declarations")
                last = (found[0]["id"] or 1, person)
            elif kind in ("approve", "reject"):
                number, declarant = last if last else (1, b.zhang)
                decider = b.secretary if declarant is b.recorder else b.recorder
                card = h.world.last_message(decider.id) if _has_messages(h, decider.id) else h.world.last_message(b.group.id)
                if kind == "reject":
                    await h.press(decider, card, f"dc:rj:{number}")
                    await h.say(decider, h.private(decider), f"理由{n}")
                else:
                    item = rulebook.item((await _item_of(h, number)) or "")
                    if item is not None and item.kind is ItemKind.RANGED and flag:
                        low, high = item.range_for(rulebook.posts_per_member)
                        await h.press(decider, card, f"dc:v:{number}:{_values(low, high, pick_item)}")
                    else:
                        await h.press(decider, card, f"dc:ok:{number}")
            elif kind == "record":
                code, event, low, high = losses[pick_item % len(losses)]
                words = [f"/record @{usernames[who]}", code]
                if event:
                    words.append(event)
                if low != high or rulebook.item(code).kind is ItemKind.RANGED:
                    words.append(str(_values(low, high, pick_item)))
                if flag:
                    words.append("3-1")
                words.append(f"记录{n}")
                await h.say(b.recorder, h.private(b.recorder), " ".join(words))
            elif kind == "join":
                newcomer = h.user(5000 + n, f"新党员{n}")
                await h.say(newcomer, b.group, "/join")
                row = await rows(h, "SELECT id FROM members WHERE user_id = ?", newcomer.id)
                await h.press(b.secretary, h.world.last_message(b.group.id), f"join:{'ok' if flag else 'no'}:{row[0]['id']}")
            elif kind == "cancel":
                person = people[who]
                await h.say(person, h.private(person), "/declare")
                await h.say(person, h.private(person), "/cancel")
        assert h.replays >= 10
        assert not h.changed, [(what, {t: (before[t], after[t]) for t in TABLES if before[t] != after[t]})
                               for what, before, after in h.changed]
        note(f"declarations: {len(await rows(h, 'SELECT id FROM declarations'))}, ledger: {len(await rows(h, 'SELECT id FROM ledger'))}")
        assert_healthy(h)


def _has_messages(h: TestHarness, chat_id: int) -> bool:
    try:
        h.world.last_message(chat_id)
    except LookupError:
        return False
    return True


async def _item_of(h: TestHarness, number: int) -> str | None:
    found = await rows(h, "SELECT item_code FROM declarations WHERE id = ?", number)
    return found[0]["item_code"] if found else None


# --- 3. hostile text never breaks the bot ----------------------------------------------------------

PIECES = st.sampled_from((
    "\u202e", "\u202d", "\u200f", "\u200e", "\u200b", "\u200d", "\u2060", "\ufeff", "\u061c",
    "😀", "👨\u200d👩\u200d👧", "🇨🇳", "<b>", "</b>", "<i>", "<a href='x'>", "</a>", "<script>", "<", ">", "&", "&amp;",
    "&lt;", "&#0;", "&#x110000;", "&nbsp;", "\n", " ", "\t", "\r", "\x00", "\x1b", "党员", "村委会", "x", "/",
))
HOSTILE = st.one_of(
    st.lists(PIECES, max_size=80).map("".join),
    st.text(max_size=300),
    st.tuples(st.lists(PIECES, min_size=1, max_size=4).map("".join), st.integers(1, 2000)).map(lambda p: (p[0] * p[1])[:2000]),
).map(lambda s: " " + s if s.startswith("/") else s)  # a leading '/' would be a command, not text


def test_hostile_text_never_breaks_the_bot(backend, tmp_path, request):
    @examples(backend)
    @given(place=HOSTILE, description=HOSTILE, reason=HOSTILE, name=HOSTILE.map(lambda s: s or "\u202e"), approve=st.booleans())
    def check(place, description, reason, name, approve):
        with fresh_database(backend, tmp_path, request) as url:
            run(_hostile_text_never_breaks_the_bot(url, place, description, reason, name, approve))

    check()


async def _hostile_text_never_breaks_the_bot(path: str | Path, place: str, description: str, reason: str, name: str, approve: bool) -> None:
    async with TestHarness(path, FixedClock(MOMENT)) as h:
        b = await setup_branch(h)
        person = h.user(1099, name)
        await h.say(person, b.group, "/join")
        await h.tap(b.secretary, b.group.id, "同意")
        stored_name = (await rows(h, "SELECT name FROM members WHERE user_id = ?", person.id))[0]["name"]
        assert stored_name and not any(ch in stored_name for ch in "\u202e\u200b\ufeff\x00")
        chat = h.private(person)
        await h.say(person, chat, "/declare")
        await h.tap(person, chat.id, "志愿服务岗位")
        await h.tap(person, chat.id, "为民办一件实事")
        await h.tap(person, chat.id, "今天")
        await h.say(person, chat, place)
        if "请讲清楚经过" not in plain(h.world.last_message(chat.id).text or ""):
            place = "村委会"
            await h.say(person, chat, place)
        await h.say(person, chat, description)
        if "照片" not in plain(h.world.last_message(chat.id).text or ""):
            description = "帮邻居修水管"
            await h.say(person, chat, description)
        await h.tap(person, chat.id, "无照片")
        await h.tap(person, chat.id, "提交")
        declaration = (await rows(h, "SELECT * FROM declarations"))[0]
        note(f"place kept: {place == declaration['place']}, description kept: {description == declaration['description']}")
        assert declaration["place"] == clean_text(place) and declaration["description"] == clean_text(description)
        card = [m for m in h.world.messages(b.recorder.id) if m.text and m.text.startswith("📝")][-1]
        assert declaration["place"] in card.text and declaration["description"] in card.text and stored_name in card.text

        if approve:
            await h.tap(b.recorder, b.recorder.id, "通过")
        else:
            await h.tap(b.recorder, b.recorder.id, "不通过")
            await h.say(b.recorder, h.private(b.recorder), reason)
            if (await rows(h, "SELECT status FROM declarations"))[0]["status"] == "pending":
                reason = "不符合条件"
                await h.say(b.recorder, h.private(b.recorder), reason)
            decided = (await rows(h, "SELECT * FROM declarations"))[0]
            assert decided["status"] == "rejected" and decided["decision_reason"] == clean_text(reason)
            told = h.world.last_message(person.id).text
            assert decided["decision_reason"] in told
        assert (await rows(h, "SELECT status FROM declarations"))[0]["status"] == ("approved" if approve else "rejected")
        await h.say(person, chat, "/points")
        await h.say(person, chat, "/history")
        await h.say(b.secretary, b.group, "/members")
        await h.say(b.recorder, h.private(b.recorder), "/pending")
        assert_healthy(h)

