"""Abuse: crafted button presses and self-dealing.

Callback data carries no authority: every press is checked against the presser's role in the database.
The first tests press every callback prefix the app registers (handlers/*.py, CallbackQueryHandler
patterns) with crafted data — other branches' ids, other members' declarations / leave requests / dues
reports / post requests / migrant reports, unknown actions, ids that do not exist, NaN and huge numbers
where numbers go, 64 random bytes — as a plain member and as another branch's recorder, and check that
no table changed (every table dumped before and after) and that every press was answered.

The rest check, one test per path, that nobody approves their own declaration, leave, post request, dues
report or migrant report, nobody decides an objection they raised or one about their own points, and a
recorder's own points are entered or decided only by the secretary or the deputy.
"""

from __future__ import annotations

import asyncio
import string
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.clock import FixedClock
from bot.domain.meetings import MeetingKind
from bot.errors import NotAuthorized
from bot.services import Actor
from bot.services.meetings import MeetingDraft
from schedules import engine
from storage.backends import open_database
from tests.conftest import (
    MOMENT, TestHarness, assert_healthy, card_message, count, declare, dump_tables, fresh_database, popups, rows, setup_branch,
    table_diff, table_names,
)

B_CHAT = -1001000000002


def as_actor(user) -> Actor:
    return Actor(user_id=user.id, name=user.full_name, username=user.username, language=user.language_code)


def alerts(calls) -> str:
    return "\n".join(str(c.params.get("text", "")) for c in popups(calls))


# --- the world: two branches, open cases of every kind in branch A ------------------------------------------------


async def build_world(h: TestHarness) -> SimpleNamespace:
    a = await setup_branch(h)
    b = await setup_branch(h, chat_id=B_CHAT, title="城关镇东街社区党支部", base=2000)
    # open cases in A, each belonging to someone other than the pressers
    w = SimpleNamespace(a=a, b=b)
    w.declarations = [await declare(h, a.lisi), await declare(h, a.recorder), await declare(h, a.secretary)]
    stranger = h.user(1009, "赵申请")
    await h.say(stranger, a.group, "/join")  # a pending join request
    meeting, _ = await h.services.meetings.schedule(
        a.branch, as_actor(a.secretary),
        MeetingDraft(MeetingKind.BRANCH_MEETING, MOMENT + timedelta(days=5), "村委会议室", "学习党章"), client_key="abuse-m1")
    w.meeting = meeting.id
    await h.services.meetings.request_leave(meeting.id, as_actor(a.lisi), "住院")
    await h.say(a.lisi, h.private(a.lisi), "/paid")  # a dues report
    await h.say(a.lisi, h.private(a.lisi), "/posts claim 3")  # a post request
    await h.say(a.secretary, a.group, f"/state @{a.lisi.username} migrant")
    await h.say(a.lisi, h.private(a.lisi), "/report")
    await h.say(a.lisi, h.private(a.lisi), "在广东打工，按时参加线上学习。")
    await h.tap(a.lisi, a.lisi.id, "无照片")
    await h.tap(a.lisi, a.lisi.id, "提交汇报")
    w.case_ids = [r["id"] for table in ("dues_reports", "post_requests", "migrant_reports") for r in await rows(h, f"SELECT id FROM {table}")]
    w.case_ids += [r["id"] for r in await rows(h, "SELECT id FROM members WHERE status = 'pending'")]
    w.counts = {t: await count(h, t) for t in ("declarations", "members", "meetings", "meeting_attendance", "dues_reports",
                                              "post_requests", "migrant_reports")}
    return w


# Every row of every table (on SQLite sqlite_sequence included), read through a second connection on the
# same database: what is committed (the bot's writes are committed when the update is handled).
# conftest.dump_tables; conftest.table_diff shows what changed.


# --- the crafted data --------------------------------------------------------------------------------------------

# {b}: a branch id; {i}, {j}: other ids; {ym}: YYYYMM; {y}: year; {v}: a value; {n}: a page; {s}: a selection;
# {f}: a fingerprint. Actions a plain member may take for themselves are in MEMBER_TEMPLATES (pressed only by
# the other branch's recorder, with ids of branch A); everything else is a manager's (pressed by both).
MANAGER_TEMPLATES = [
    "setup:xishui", "setup:zhangdian", "setup:{v}",
    "join:ok:{i}", "join:no:{i}",
    "dc:ok:{i}", "dc:v:{i}:{v}", "dc:adj:{i}", "dc:bk:{i}", "dc:rj:{i}",
    "mt:la:{i}:{j}", "mt:lr:{i}:{j}", "mt:rc:{i}", "mt:pg:{i}:{n}", "mt:m:{i}:{j}:p:{n}", "mt:m:{i}:{j}:a:{n}",
    "mt:m:{i}:{j}:l:{n}", "mt:ap:{i}:{n}", "mt:cl:{i}", "mt:cl:{i}:{n}", "mt:cf:{i}:{n}:{n}", "mt:cx:{i}", "mt:n",
    "du:r:{b}:{ym}:{n}", "du:m:{b}:{ym}:{i}:{n}", "du:s:{b}:{ym}:{i}:o:{n}", "du:s:{b}:{ym}:{i}:l:{n}",
    "du:s:{b}:{ym}:{i}:x:{n}", "du:s:{b}:{ym}:{i}:u:{n}", "du:a:{b}:{ym}", "du:A:{b}:{ym}", "du:ok:{i}", "du:no:{i}",
    "mg:ok:{i}", "mg:rt:{i}",
    "as:o:{b}:{ym}:{n}", "as:m:{b}:{ym}:{i}", "as:n:{b}:{ym}:{i}", "as:s:{b}:{ym}:{i}", "as:g:{b}:{ym}",
    "as:gy:{b}:{ym}", "as:i:{b}:{ym}:{i}:{n}", "as:l:{b}:{ym}:{i}:{n}:{n}", "as:v:{b}:{ym}:{i}:{n}:{v}:{n}",
    "po:ok:{i}", "po:no:{i}",
    "nt:up:{i}", "nt:wd:{i}", "nt:rs:{i}",
    "de:b:{i}:{n}", "de:m:{i}:{j}", "de:k:{i}:{j}:u:{v}", "de:k:{i}:{j}:b:{v}", "de:x:{i}:{j}", "de:c:{i}", "de:cy:{i}",
    "gr:k:{b}:{y}:{n}", "gr:ok:{b}:{y}:{n}:{f}", "gr:f:{b}:{y}:{n}:{f}", "gr:x:{b}:{y}",
    "tw:p:{i}:{n}", "tw:b:{i}:{j}:{n}",
    "tv:au:{i}", "tv:ac:{i}", "tv:ae:{i}:{j}", "tv:ap:{i}", "tv:ra:{i}", "tv:rb:{i}", "tv:f:{i}:{y}", "tv:x",
    "rw:h:{i}", "rw:k:{i}", "rw:w:{b}", "rw:g:{b}", "rw:s:{b}:e", "rw:s:{b}:c", "rw:s:{b}:s",
    "rw:s:{b}:e:1", "rw:s:{b}:c:1", "rw:s:{b}:s:0", "rw:s:{b}:e:{v}", "rw:x:{b}:30", "rw:x:{b}:{v}",
    "rc:l:{b}", "rc:e:{i}", "rc:t:{i}", "rc:t:{i}:0", "rc:t:{i}:1", "rc:a:{b}", "rc:m:{i}", "rm:a:{b}", "rm:d:{i}:{b}",
    "rc:l:{b}:{n}", "rc:e:{i}:{n}", "rc:t:{i}:0:{n}", "rm:d:{i}:{b}:{n}", "rm:p:{b}:{n}",
    "mr:ok:{i}", "mr:no:{i}", "mr:void:{i}",
    "rv:ok:{i}", "rv:no:{i}", "rz:ok:{i}", "rz:no:{i}",
    "nt:sg:{i}", "nt:pb:{i}", "nt:pp:{n}",
    "sc:claim", "ss:quit:{b}:{j}:{j}", "ss:keep:{b}:{j}:{j}", "ss:quit:{b}:{i}:{j}", "ss:keep:{b}:{i}:{j}",
    "rbk:y:{b}:base:{v}", "rbk:y:{b}:democratic_weights:{v}", "rbk:y:{b}:skip_org_life:{v}", "rbk:n:{b}",
    "{p}:zz:{i}",  # an unknown action under a known prefix
]
MEMBER_TEMPLATES = [
    "br:{b}", "ch:me",
    "dl:c:study", "dl:i:one_thing", "dl:b", "dl:d:0", "dl:d:1", "dl:np", "dl:ok", "dl:x",
    "mt:k:branch_meeting", "mt:ok", "mt:x", "mt:lv:{i}", "mt:go:{i}", "mt:ci:{i}",
    "du:p:{b}:{ym}",
    "mg:new:{b}", "mg:np", "mg:go", "mg:x",
    "po:e:{b}:{s}", "po:t:{b}:{s}:{n}", "po:s:{b}:{s}", "po:x:{b}",
    "nt:ob:{i}", "nt:ds:{i}", "nt:cf:{i}", "nt:pg:{n}", "nt:x",
    "de:h:{i}:{n}", "de:p:{i}:{j}", "de:n:{i}:{j}", "de:r:{i}:{j}:{v}", "de:cy:{i}",
    "rw:r:{i}", "rw:c:{i}:{v}", "rw:n", "rw:m:{b}", "rw:v:{b}", "rw:v:{b}:{n}", "rc:k", "rc:u", "rc:np", "rc:ok", "rc:x", "rm:x",
]
PREFIXES = ["setup", "join", "dl", "dc", "br", "mt", "du", "mg", "as", "po", "nt", "de", "gr", "ch", "tw", "tv", "rw", "rc", "rm", "mr", "rv", "rz", "sc", "ss", "rbk"]
IDS = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "0", "999999999999", "-1", "NaN", "1e308"]
VALUES = ["5", "0", "-5", "NaN", "nan", "inf", "-inf", "1e308", "99999999999", "0.001", "1.1.1", "", "💥", "<b>"]
MONTHS = ["202603", "202602", "202612", "000000", "999999", "202613"]
YEARS = ["2026", "2025", "0000", "9999"]
PAGES = ["0", "1", "9999", "-1"]
SELECTIONS = ["", "3", "1.2.3", "9" * 40, "..."]
FINGERPRINTS = ["0123456789", "ffffffffff", "zzzzzzzzzz"]


def fill(template: str, *, b: str, i: str, j: str, v: str, ym: str, y: str, n: str, s: str, f: str, p: str) -> str:
    return template.format(b=b, i=i, j=j, v=v, ym=ym, y=y, n=n, s=s, f=f, p=p)


def crafted(templates: list[str], branch_ids: list[str]) -> st.SearchStrategy[str]:
    structured = st.builds(
        fill, st.sampled_from(templates), b=st.sampled_from(branch_ids), i=st.sampled_from(IDS), j=st.sampled_from(IDS),
        v=st.sampled_from(VALUES), ym=st.sampled_from(MONTHS), y=st.sampled_from(YEARS), n=st.sampled_from(PAGES),
        s=st.sampled_from(SELECTIONS), f=st.sampled_from(FINGERPRINTS), p=st.sampled_from(PREFIXES))
    noise = st.one_of(
        st.binary(min_size=64, max_size=64).map(lambda raw: raw.decode("latin-1")),  # 64 random bytes
        st.builds(lambda p, tail: f"{p}:{tail}"[:64], st.sampled_from(PREFIXES), st.text(max_size=60)),
        st.text(alphabet=string.printable, min_size=1, max_size=64),  # "" has its own test below
    )
    return st.one_of(structured, structured, noise)


INTERNAL: list[tuple[str, str]] = []


class World:
    """One world for many presses, on its own event loop (hypothesis drives a sync test), on either backend:
    ``url`` is a SQLite file or a PostgreSQL database (conftest.fresh_database)."""

    def __init__(self, url: str | Path):
        self.loop = asyncio.new_event_loop()
        self.clock = FixedClock(MOMENT)
        self.h = TestHarness(url, self.clock)
        self.reader = None
        self.run(self.h.__aenter__())
        self.w = self.run(build_world(self.h))
        self.reader = self.run(open_database(url))  # the second connection every dump reads through
        self.tables = self.run(table_names(self.reader))
        self.snapshot = self.run(self._snapshot())
        self.before = self.dump()
        self.skipped = 0

    def dump(self) -> dict[str, list[tuple]]:
        return self.run(dump_tables(self.reader, self.tables))

    async def _snapshot(self) -> str | None:
        """PostgreSQL: the set of committed transactions a read sees now (xmin:xmax:in-progress). While it
        is the one taken before the first dump, no transaction has committed since: every table is as
        dumped, and the full dump (~45 tables) can be skipped. Any commit, even one that changed nothing,
        makes the next check a full dump. SQLite: None (its dump is cheap; always dumped)."""
        if self.reader.backend == "sqlite":
            return None
        async with self.reader.read() as conn:
            return str((await conn.execute_fetchall("SELECT pg_current_snapshot()::text"))[0][0])

    def unchanged(self) -> dict[str, list[tuple]]:
        """The dump now (or, on PostgreSQL with no commit since the first dump, that dump)."""
        if self.snapshot is not None and self.run(self._snapshot()) == self.snapshot:
            self.skipped += 1
            return self.before
        return self.dump()

    def run(self, coroutine):
        return self.loop.run_until_complete(coroutine)

    def close(self) -> None:
        try:
            if self.reader is not None:
                self.run(self.reader.close())
            self.run(self.h.__aexit__(None, None, None))
        finally:
            self.loop.close()

    def pressers(self) -> dict[str, tuple]:
        if getattr(self, "_pressers", None) is None:
            self._pressers = self._find_pressers()
        return self._pressers

    def _find_pressers(self) -> dict[str, tuple]:
        a, b, h = self.w.a, self.w.b, self.h
        def last_text(chat_id):
            return [m for m in h.world.messages(chat_id) if m.text][-1]

        group_a = last_text(a.group.id)
        return {
            "member@groupA": (a.zhang, group_a), "member@private": (a.zhang, last_text(a.zhang.id)),
            "recorderB@groupA": (b.recorder, group_a), "recorderB@private": (b.recorder, last_text(b.recorder.id)),
            "recorderB@groupB": (b.recorder, last_text(b.group.id)),
        }

    def press(self, who: str, data: str) -> None:
        user, message = self.pressers()[who]
        calls = self.run(self.h.press(user, message, data))
        query_id = self.h.query_ids[-1]
        answered = [c for c in calls if c.method == "answerCallbackQuery" and str(c.params.get("callback_query_id")) == query_id]
        assert answered, (who, data, [c.method for c in calls])
        if [c for c in calls if "处理时出错" in str(c.params.get("text", ""))]:
            INTERNAL.append((who, data))
        after = self.unchanged()
        assert after == self.before, (who, data, table_diff(self.before, after))


@pytest.fixture
def world(backend, tmp_path, request):
    """The world on each backend (``backend`` is parametrised by conftest)."""
    with fresh_database(backend, tmp_path, request) as url:
        world = World(url)
        INTERNAL.clear()
        try:
            yield world
            if not request.node.get_closest_marker("xfail"):
                assert_healthy(world.h)  # no internal error, no malformed message, every query answered
        finally:
            world.close()


def _branch_ids(w, who: str) -> list[str]:
    a, b = str(w.w.a.branch.id), str(w.w.b.branch.id)
    others = ["0", "999999999999", "77"]
    return [a, *others] if who.startswith("recorderB") else [a, b, *others]


def test_every_registered_prefix_is_in_the_table():
    """The table above covers every prefix a CallbackQueryHandler pattern names (so a new feature's
    buttons get added here)."""
    import re

    source = "\n".join(p.read_text("utf-8") for p in (Path(__file__).parent.parent / "handlers").glob("*.py"))
    named = set(re.findall(r'pattern=r?f?"\^?\(?([a-z]+):', source)) | set(re.findall(r'^CANCEL = "([a-z]+):', source, re.M))
    named |= {"de"}  # democratic.py builds its pattern in PATTERN
    named |= {"rbk"}  # rulebook.py builds its pattern in CALLBACK
    assert named <= set(PREFIXES), named - set(PREFIXES)
    covered = {t.split(":")[0] for t in MANAGER_TEMPLATES + MEMBER_TEMPLATES}
    assert set(PREFIXES) - {"{p}"} <= covered | {"{p}"}


def test_each_template_with_the_real_ids_changes_nothing(world):
    """Deterministic sweep: every template with the ids of the open cases (and one that does not exist)."""
    w = world.w
    open_cases = [*w.declarations, w.meeting, *w.case_ids]
    ids = sorted({str(x) for x in open_cases} | {"999999999999"})
    members_a = [str(m) for m in w.a.member_ids.values()]
    for who in ("member@groupA", "recorderB@private"):
        templates = MANAGER_TEMPLATES + (MEMBER_TEMPLATES if who.startswith("recorderB") else [])
        for template in templates:
            for index, i in enumerate(ids if "{i}" in template else ids[:1]):
                j = members_a[index % len(members_a)]
                data = fill(template, b=_branch_ids(world, who)[0], i=i, j=j, v="5", ym="202603", y="2026", n="0",
                            s="3", f="0123456789", p="dc")
                world.press(who, data[:64])
    # the cases are all still open
    assert world.run(count(world.h, "declarations", "status = 'pending'")) == 3
    assert world.run(count(world.h, "members", "status = 'pending'")) == 1
    # and the check sees a change: an approval by the right person is in the next dump
    number = w.declarations[0]
    world.run(world.h.press(w.a.recorder, card_message(world.h, w.a.recorder.id, number), f"dc:ok:{number}"))
    changed = table_diff(world.before, world.unchanged())
    assert {"declarations", "ledger"} <= set(changed), changed


def test_crafted_presses_by_the_wrong_people_change_nothing_and_are_answered(world):
    who_strategy = st.sampled_from(list(world.pressers()))

    @settings(max_examples=200, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(st.data())
    def press(data):
        who = data.draw(who_strategy, label="presser")
        templates = MANAGER_TEMPLATES + (MEMBER_TEMPLATES if who.startswith("recorderB") else [])
        payload = data.draw(crafted(templates, _branch_ids(world, who)), label="callback data")
        world.press(who, payload)

    press()
    assert not INTERNAL, INTERNAL


# --- known defects (strict xfail: each fails loudly once fixed, so the marker gets removed) -------------------------


def test_a_query_without_data_is_answered_without_an_internal_error(world):
    world.press("member@groupA", "")
    assert not INTERNAL, INTERNAL


def test_a_refused_chart_press_is_answered_once_with_the_reason(world):
    user, message = world.pressers()["recorderB@groupA"]
    calls = world.run(world.h.press(user, message, "ch:me"))
    answers = [c for c in calls if c.method == "answerCallbackQuery"]
    assert len(answers) == 1 and answers[0].params.get("text"), [c.params for c in answers]


def test_a_crafted_press_on_a_picture_gets_no_internal_error(world):
    a, h = world.w.a, world.h
    world.run(h.press(a.zhang, [m for m in h.world.messages(a.zhang.id) if m.text][-1], "ch:me"))
    photo = h.world.messages(a.zhang.id)[-1]
    assert photo.photo
    for data in (f"br:{a.branch.id}", f"du:p:{a.branch.id}:202603"):
        calls = world.run(h.press(a.zhang, photo, data))
        assert not [c for c in calls if "处理时出错" in str(c.params.get("text", ""))], data


# --- no self-dealing, one test per path ---------------------------------------------------------------------------


async def test_nobody_approves_their_own_declaration(h, b):
    await h.say(b.secretary, b.group, f"/role @{b.zhang.username} deputy")
    number = await declare(h, b.secretary)
    card = card_message(h, b.recorder.id, number)  # the recorder is asked, never the secretary
    assert not [m for m in h.world.messages(b.secretary.id) if f"#{number}" in (m.text or "") and h.world.buttons(m)]
    for data in (f"dc:ok:{number}", f"dc:v:{number}:5", f"dc:adj:{number}", f"dc:rj:{number}"):
        calls = await h.press(b.secretary, card, data)
        assert "不能审批自己的申报" in plain_alerts(calls) or "不能" in plain_alerts(calls), (data, plain_alerts(calls))
        await h.say(b.secretary, h.private(b.secretary), "我自己批准")  # a reason, had the rejection started
    assert (await rows(h, "SELECT status FROM declarations WHERE id = ?", number))[0]["status"] == "pending"
    assert await count(h, "ledger") == 0
    await h.press(b.recorder, card, f"dc:ok:{number}")
    assert (await rows(h, "SELECT status FROM declarations WHERE id = ?", number))[0]["status"] == "approved"


def plain_alerts(calls) -> str:
    from bot.harness import plain

    return plain(alerts(calls))


async def test_a_recorders_own_declaration_only_by_the_secretary_or_deputy(h, b):
    await h.say(b.secretary, b.group, f"/role @{b.lisi.username} recorder")  # a second recorder
    number = await declare(h, b.recorder)
    card = card_message(h, b.secretary.id, number)
    assert not [m for m in h.world.messages(b.lisi.id) if f"#{number}" in (m.text or "") and h.world.buttons(m)]
    for person in (b.recorder, b.lisi, b.zhang):
        calls = await h.press(person, card, f"dc:ok:{number}")
        assert plain_alerts(calls), person.full_name
    assert await count(h, "ledger") == 0
    await h.press(b.secretary, card, f"dc:ok:{number}")
    assert await count(h, "ledger", "member_id = ?", b.member_ids["recorder"]) == 1


async def test_a_recorders_own_points_only_by_the_secretary_or_deputy(h, b):
    await h.say(b.secretary, b.group, f"/role @{b.lisi.username} recorder")
    target = await h.services.roster.member_of_id(b.member_ids["recorder"])
    for person in (b.recorder, b.lisi):
        with pytest.raises(NotAuthorized):
            await h.services.points.record(b.branch, as_actor(person), target, "honor_county", Decimal(2), date(2026, 3, 2),
                                           "自己给自己加分", reference=f"abuse:{person.id}")
    assert await count(h, "ledger") == 0
    await h.say(b.secretary, b.group, f"/role @{b.zhang.username} deputy")
    row = await h.services.points.record(b.branch, as_actor(b.zhang), target, "honor_county", Decimal(2), date(2026, 3, 2),
                                         "县级表彰", reference="abuse:deputy")
    assert row is not None and await count(h, "ledger") == 1


async def test_nobody_decides_their_own_leave(h, b):
    await h.say(b.secretary, b.group, f"/role @{b.zhang.username} deputy")
    meeting, _ = await h.services.meetings.schedule(
        b.branch, as_actor(b.secretary),
        MeetingDraft(MeetingKind.BRANCH_MEETING, MOMENT + timedelta(days=5), "村委会议室", "学习党章"), client_key="m")
    await h.services.meetings.request_leave(meeting.id, as_actor(b.zhang), "出差")
    me = b.member_ids["zhang"]
    message = h.world.messages(b.zhang.id)[-1]
    for data in (f"mt:la:{meeting.id}:{me}", f"mt:lr:{meeting.id}:{me}"):
        calls = await h.press(b.zhang, message, data)
        assert plain_alerts(calls)
    with pytest.raises(NotAuthorized):
        await h.services.meetings.decide_leave(meeting.id, me, as_actor(b.zhang), True)
    attendance = await rows(h, "SELECT * FROM meeting_attendance WHERE member_id = ?", me)
    assert attendance and all("approved" not in str(r.get("leave_status")) for r in attendance), attendance
    await h.services.meetings.decide_leave(meeting.id, me, as_actor(b.secretary), True)  # someone else may


async def test_nobody_confirms_their_own_dues_report(h, b):
    await h.say(b.secretary, h.private(b.secretary), "/paid")
    report = (await rows(h, "SELECT * FROM dues_reports"))[0]
    before = await rows(h, "SELECT * FROM dues")
    for data in (f"du:ok:{report['id']}", f"du:no:{report['id']}"):
        calls = await h.press(b.secretary, h.world.messages(b.secretary.id)[-1], data)
        assert plain_alerts(calls)
    assert (await rows(h, "SELECT status FROM dues_reports"))[0]["status"] == report["status"]
    assert await rows(h, "SELECT * FROM dues") == before


async def test_nobody_approves_their_own_post_request(h, b):
    await h.say(b.secretary, h.private(b.secretary), "/posts claim 3")
    request = (await rows(h, "SELECT * FROM post_requests"))[0]
    calls = await h.press(b.secretary, h.world.messages(b.secretary.id)[-1], f"po:ok:{request['id']}")
    assert plain_alerts(calls)
    assert (await rows(h, "SELECT status FROM post_requests"))[0]["status"] == "pending"
    assert await count(h, "post_claims") == 0


async def test_nobody_accepts_their_own_migrant_report(h, b):
    await h.say(b.secretary, b.group, f"/state @{b.recorder.username} migrant")
    await h.say(b.recorder, h.private(b.recorder), "/report")
    await h.say(b.recorder, h.private(b.recorder), "在广东打工，按时参加线上学习。")
    await h.tap(b.recorder, b.recorder.id, "无照片")
    await h.tap(b.recorder, b.recorder.id, "提交汇报")
    report = (await rows(h, "SELECT * FROM migrant_reports"))[0]
    for data in (f"mg:ok:{report['id']}", f"mg:rt:{report['id']}"):
        calls = await h.press(b.recorder, h.world.messages(b.recorder.id)[-1], data)
        assert plain_alerts(calls)
        await h.say(b.recorder, h.private(b.recorder), "退回理由")
    assert (await rows(h, "SELECT status FROM migrant_reports"))[0]["status"] == report["status"]


async def test_nobody_decides_an_objection_they_raised_or_one_about_their_own_points(h, clock, monkeypatch):
    from tests.test_notices import APRIL_1, NOTICE_KINDS, branch_at, record, utc

    monkeypatch.setattr(engine, "PRODUCERS", [p for p in engine.PRODUCERS if p.kind in NOTICE_KINDS])
    b = await branch_at(h, clock, utc(2026, 3, 20, 2, 0), preset="sanmenxia")
    await h.say(b.secretary, b.group, f"/role @{b.lisi.username} deputy")
    about_secretary = await record(h, b, "secretary", "green_zone", "10", date(2026, 3, 25), "清扫巷道")
    about_zhang = await record(h, b, "zhang", "green_zone", "10", date(2026, 3, 25), "清扫巷道")
    clock.set(APRIL_1 + timedelta(minutes=5))
    await engine.tick(h.app, clock.now())
    await h.say(b.zhang, h.private(b.zhang), f"/object {about_secretary} 书记没有扫巷道")  # about the secretary
    await h.say(b.lisi, h.private(b.lisi), f"/object {about_zhang} 张三只扫了自家门口")  # raised by the deputy
    objections = {r["entry_id"] if "entry_id" in r else r["ledger_id"]: r for r in await rows(h, "SELECT * FROM objections")}
    assert len(objections) == 2, objections
    ids = {r["id"]: r for r in await rows(h, "SELECT * FROM objections")}
    first, second = sorted(ids)
    message = h.world.messages(b.secretary.id)[-1]
    for person, objection in ((b.secretary, first), (b.lisi, second)):
        for verb in ("up", "wd"):
            calls = await h.press(person, message, f"nt:{verb}:{objection}")
            assert plain_alerts(calls), (person.full_name, verb)
    assert {r["status"] for r in await rows(h, "SELECT status FROM objections")} == {"open"}
    assert await count(h, "ledger") == 2
    await h.press(b.lisi, message, f"nt:wd:{first}")  # the deputy may decide the one about the secretary
    await h.press(b.secretary, message, f"nt:up:{second}")  # the secretary the one the deputy raised
    assert {r["status"] for r in await rows(h, "SELECT status FROM objections")} == {"withdrawn", "upheld"}
