"""The town (镇党委 / 党总支): administrators, join codes, /town and its drill-down, reminders and the
monthly digest, member transfers. Domain rules first (no event loop), then the handlers through the
harness, asserting on Bot API calls and on the database."""

from __future__ import annotations

import re
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest

from bot.clock import FixedClock
from bot.domain.town import (
    CodeState,
    NoticeState,
    Stint,
    TownCode,
    TransferRule,
    code_state,
    normalise_code,
    notice_state,
    page_of,
    year_home,
)
from bot.services import Actor
from schedules import engine
from tests.conftest import TestHarness, count, declare, popups, rows, said, setup_branch

ADMIN_ID = 9001
T0 = datetime(2026, 3, 20, 2, 0, tzinfo=UTC)


# --- domain -----------------------------------------------------------------------------------------


def _code(expires: datetime, used: int | None = None) -> TownCode:
    return TownCode(code="ABCD2345", town_id=1, created_by=1, created_at=T0, expires_at=expires, used_by_branch=used, used_at=None)


def test_code_states() -> None:
    assert code_state(_code(T0 + timedelta(days=7)), T0) is CodeState.VALID
    assert code_state(_code(T0 + timedelta(days=7)), T0 + timedelta(days=7)) is CodeState.EXPIRED
    assert code_state(_code(T0 + timedelta(days=7), used=3), T0) is CodeState.USED
    assert normalise_code(" abcd-2345 ") == "ABCD2345"


def test_notice_states() -> None:
    due = T0
    assert notice_state(None, None, T0, None) is NoticeState.NONE
    assert notice_state("2026-02", due, T0 - timedelta(hours=1), None) is NoticeState.NOT_DUE
    assert notice_state("2026-02", due, T0 + timedelta(hours=1), None) is NoticeState.NOT_YET
    assert notice_state("2026-02", due, T0, (False, False)) is NoticeState.SENDING
    assert notice_state("2026-02", due, T0, (True, True)) is NoticeState.LATE
    assert notice_state("2026-02", due, T0, (False, True)) is NoticeState.ON_TIME


def test_pages_clamp_and_cover_everything() -> None:
    items = list(range(56))
    seen = []
    for page in range(7):
        shown, actual, pages = page_of(items, page, 8)
        assert pages == 7 and actual == page
        seen += shown
    assert seen == items
    assert page_of(items, 99, 8)[1] == 6 and page_of([], 3, 8) == ([], 0, 1)


OLD = Stint(member_id=1, branch_id=10, first=date(2025, 6, 1), last=date(2026, 4, 15))
NEW = Stint(member_id=2, branch_id=20, first=date(2026, 4, 15), last=None)


def test_transfer_rule_receiving_grades_the_whole_year_in_the_new_branch() -> None:
    home = year_home([OLD, NEW], 2026, TransferRule.RECEIVING)
    assert home is not None and home.grader == NEW and home.counted == (OLD, NEW)
    # the year before the move belongs to the old branch alone
    before = year_home([OLD, NEW], 2025, TransferRule.RECEIVING)
    assert before is not None and before.grader == OLD and before.counted == (OLD,)


def test_transfer_rule_longer_stay() -> None:
    early = Stint(member_id=1, branch_id=10, first=None, last=date(2026, 3, 1))
    late = Stint(member_id=2, branch_id=20, first=date(2026, 3, 1), last=None)
    assert year_home([early, late], 2026, TransferRule.LONGER).grader == late  # type: ignore[union-attr]
    early2 = Stint(member_id=1, branch_id=10, first=None, last=date(2026, 10, 1))
    late2 = Stint(member_id=2, branch_id=20, first=date(2026, 10, 1), last=None)
    home = year_home([early2, late2], 2026, TransferRule.LONGER)
    assert home is not None and home.grader == early2 and home.counted == (early2, late2)


def test_transfer_rule_separate_counts_own_months_only() -> None:
    home = year_home([OLD, NEW], 2026, TransferRule.SEPARATE)
    assert home is not None and home.counted == (NEW,)
    assert year_home([OLD, NEW], 2024, TransferRule.SEPARATE) is None


# --- helpers ----------------------------------------------------------------------------------------


async def make_town(h: TestHarness, name: str = "兰溪镇", admin_id: int = ADMIN_ID) -> SimpleNamespace:
    admin = h.user(admin_id, "周镇长", username="zhou")
    await h.say(admin, h.private(admin), "/start")
    town = await h.services.towns.create(name, admin_id=admin.id, admin_name="周镇长", created_by=0)
    return SimpleNamespace(town=town, admin=admin)


async def code_from(h: TestHarness, admin) -> str:
    calls = await h.say(admin, h.private(admin), "/towncode")
    sent = [str(c.params.get("text")) for c in calls if c.method == "sendMessage"]
    code = re.search(r"<code>([A-Z0-9]+)</code>", sent[-1])
    assert code is not None
    assert await count(h, "town_codes", "code = ? AND used_by_branch IS NULL", code[1]) == 1
    return code[1]


async def joined(h: TestHarness, b: SimpleNamespace, t: SimpleNamespace) -> None:
    code = await code_from(h, t.admin)
    calls = await h.say(b.secretary, b.group, f"/jointown {code}")
    assert "已加入" in said(calls, b.group.id)


# --- operator, administrators, codes, joining ----------------------------------------------------------


async def test_operator_creates_a_town_in_chat_and_others_are_refused(h: TestHarness) -> None:
    operator = h.user(7001, "运营者")
    stranger = h.user(7002, "路人")
    h.services.towns.operators = frozenset({operator.id})
    calls = await h.say(stranger, h.private(stranger), "/newtown 兰溪镇")
    assert "只有机器人的运营者" in said(calls)
    calls = await h.say(operator, h.private(operator), "/newtown 兰溪镇")
    assert "已创建" in said(calls)
    assert await count(h, "towns") == 1 and await count(h, "town_admins", "user_id = ?", operator.id) == 1
    calls = await h.say(operator, h.private(operator), "/newtown 兰溪镇")
    assert "已经有名为" in said(calls) and await count(h, "towns") == 1


async def test_admin_adds_another_admin_and_lists_them(h: TestHarness) -> None:
    t = await make_town(h)
    chat = h.private(t.admin)
    assert "请写 Telegram 数字ID" in said(await h.say(t.admin, chat, "/townadmin add bob"))
    assert "已添加" in said(await h.say(t.admin, chat, "/townadmin add 424242 刘委员"))
    assert "已经是" in said(await h.say(t.admin, chat, "/townadmin add 424242"))
    listing = said(await h.say(t.admin, chat, "/townadmin"))
    assert "刘委员" in listing and "424242" in listing
    stranger = h.user(7003, "路人")
    assert "只有镇（党总支）管理员" in said(await h.say(stranger, h.private(stranger), "/townadmin add 1234"))
    assert await count(h, "town_admins", "town_id = ?", t.town.id) == 2


async def test_branch_joins_with_a_code_once(h: TestHarness, clock: FixedClock) -> None:
    t = await make_town(h)
    b1 = await setup_branch(h)
    b2 = await setup_branch(h, chat_id=-1001000000002, title="兰溪镇青山村党支部", base=2000)
    code = await code_from(h, t.admin)
    # only the secretary (or deputy) may join
    calls = await h.say(b1.zhang, b1.group, f"/jointown {code}")
    assert "需要" in said(calls) or "只有" in said(calls)
    calls = await h.say(b1.secretary, b1.group, f"/jointown {code.lower()}")
    assert "已加入“兰溪镇”" in said(calls, b1.group.id)
    assert "兰溪镇红星村党支部" in said(h.world.sent(t.admin.id))  # the town is told
    assert (await rows(h, "SELECT town_id FROM branches WHERE id = ?", b1.branch.id))[0]["town_id"] == t.town.id
    # the code is spent: the second branch is told so; a branch in a town cannot join another
    assert "已经被使用过了" in said(await h.say(b2.secretary, b2.group, f"/jointown {code}"))
    assert "不存在" in said(await h.say(b2.secretary, b2.group, "/jointown NOSUCH99"))
    other = await h.services.towns.create("另一镇", admin_id=t.admin.id, created_by=0)
    code2 = (await h.services.towns.make_code(other.id, Actor(t.admin.id, "周"))).code
    assert "已经属于“兰溪镇”" in said(await h.say(b1.secretary, b1.group, f"/jointown {code2}"))
    # an expired code
    clock.set(clock.now() + timedelta(days=8))
    assert "已过期" in said(await h.say(b2.secretary, b2.group, f"/jointown {code2}"))
    assert await count(h, "branches", "town_id IS NOT NULL") == 1


async def test_setup_with_a_code_joins_after_the_preset(h: TestHarness) -> None:
    t = await make_town(h)
    code = await code_from(h, t.admin)
    group = h.group(-1001000000009, "新村党支部")
    secretary = h.user(3001, "赵书记")
    h.world.set_admin(group.id, secretary.id)
    await h.feed(h.world.bot_added(group, secretary))
    await h.say(secretary, group, f"/setup {code}")
    calls = await h.tap(secretary, group.id, "浠水")
    assert "已加入“兰溪镇”" in said(calls, group.id)
    assert await count(h, "branches", "town_id = ?", t.town.id) == 1


# --- /town ---------------------------------------------------------------------------------------------


async def test_town_overview_and_read_only_drill_down(h: TestHarness) -> None:
    t = await make_town(h)
    b = await setup_branch(h)
    await joined(h, b, t)
    await declare(h, b.zhang)
    stranger = h.user(7004, "路人")
    assert "只有镇（党总支）管理员" in said(await h.say(stranger, h.private(stranger), "/town"))
    assert "私聊" in said(await h.say(b.secretary, b.group, "/town"))
    calls = await h.say(t.admin, h.private(t.admin), "/town")
    text = said(calls)
    assert "兰溪镇" in text and "1 个支部" in text and "计分党员 4 人" in text and "待审申报 1" in text
    ledger_before = await count(h, "ledger")
    calls = await h.tap(t.admin, t.admin.id, "1. 兰溪镇红星村党支部")
    view = said(calls)
    assert "只读" in view and "张三" in view and "李四" in view and "最近的公示" in view
    assert await count(h, "ledger") == ledger_before  # reading never writes the ledger
    # a crafted press by someone who is not an administrator is refused, and answered
    message, data = h.find_button(t.admin.id, "返回一览")
    calls = await h.press(stranger, message, data)
    assert popups(calls) and "只有镇（党总支）管理员" in said(popups(calls)) + str(popups(calls)[0].params.get("text"))
    calls = await h.tap(t.admin, t.admin.id, "返回一览")
    assert "1 个支部" in said(calls)


async def test_dashboard_of_56_branches_pages_under_the_limit_with_few_queries(h: TestHarness) -> None:
    t = await make_town(h)
    admin = Actor(t.admin.id, "周镇长")
    for number in range(56):
        secretary = Actor(50000 + number, f"书记{number}")
        branch = await h.services.branches.setup(chat_id=-1002000000000 - number, title=f"兰溪镇第{number + 1}村党支部" + "很长的名字" * 5,
                                                 actor=secretary, preset_code="xishui", is_admin=True)
        code = await h.services.towns.make_code(t.town.id, admin)
        await h.services.towns.join(branch, secretary, code.code)
    statements: list[str] = []
    conn = h.db.conn
    original = conn.execute

    def counting(sql, *args, **kwargs):
        statements.append(sql)
        return original(sql, *args, **kwargs)

    conn.execute = counting  # every repository statement passes here, on either backend
    try:
        started = time.perf_counter()
        dashboard = await h.services.towns.dashboard(t.town.id, t.admin.id)
        elapsed = time.perf_counter() - started
    finally:
        del conn.execute
    assert len(dashboard.branches) == 56
    assert len(statements) <= 12, statements  # grouped per town, not per branch
    assert elapsed < 1.0
    # every page is one message under 4096 characters, and every branch is on one
    await h.say(t.admin, h.private(t.admin), "/town")
    seen = set()
    for _ in range(7):
        message = h.world.messages(t.admin.id)[-1]
        seen |= {text for text, _ in h.world.buttons(message) if text.startswith("🔍")}
        try:
            await h.tap(t.admin, t.admin.id, "下一页")
        except LookupError:
            break
    assert len(seen) == 56


# --- reminders and the digest ------------------------------------------------------------------------------


async def test_overdue_declarations_remind_the_secretary_once_a_day(h: TestHarness, clock: FixedClock) -> None:
    t = await make_town(h)
    b = await setup_branch(h)
    await joined(h, b, t)
    await declare(h, b.zhang)
    before = len(h.world.sent(b.secretary.id))
    clock.set(datetime(2026, 3, 22, 1, 5, tzinfo=UTC))  # 09:05 local, two days later: not overdue yet
    await engine.tick(h.app, clock.now())
    assert len(h.world.sent(b.secretary.id)) == before
    clock.set(datetime(2026, 3, 24, 1, 5, tzinfo=UTC))  # four days later
    done = await engine.tick(h.app, clock.now())
    assert (b.branch.id, "town_remind", "2026-03-24", "done") in done
    reminder = said(h.world.sent(b.secretary.id)[before:])
    assert "等待审核超过 3 天" in reminder
    await engine.tick(h.app, clock.now() + timedelta(minutes=5))  # repeat: nothing new
    assert await count(h, "effects", "kind = 'town_remind'") == 1
    assert said(h.world.sent(b.secretary.id)[before:]).count("等待审核超过") == 1


async def test_monthly_digest_reaches_each_admin_once_and_marks_the_unreachable(h: TestHarness, clock: FixedClock) -> None:
    t = await make_town(h)
    b = await setup_branch(h)
    await joined(h, b, t)
    await declare(h, b.zhang)
    await h.services.towns.add_admin(t.town.id, None, 424242, "刘委员")
    h.user(424242, "刘委员")
    h.world.block(424242)
    clock.set(datetime(2026, 4, 1, 1, 10, tzinfo=UTC))  # 1 April 09:10 local
    done = await engine.tick(h.app, clock.now())
    assert (b.branch.id, "town_digest", f"{t.town.id}:2026-03", "done") in done
    digests = [c for c in h.world.sent(t.admin.id) if "积分工作汇总" in str(c.params.get("text"))]
    assert len(digests) == 1 and "申报 1" in said(digests)
    assert (await rows(h, "SELECT reachable FROM town_admins WHERE user_id = 424242"))[0]["reachable"] == 0
    await engine.tick(h.app, clock.now() + timedelta(hours=1))
    assert len([c for c in h.world.sent(t.admin.id) if "积分工作汇总" in str(c.params.get("text"))]) == 1
    assert await count(h, "town_sends") == 2


# --- transfers ---------------------------------------------------------------------------------------------


async def test_transfer_keeps_history_and_links_the_new_row(h: TestHarness) -> None:
    b1 = await setup_branch(h)
    b2 = await setup_branch(h, chat_id=-1001000000002, title="兰溪镇青山村党支部", base=2000)
    old_id = b1.member_ids["zhang"]
    await h.services.points.record(b1.branch, Actor(b1.recorder.id, "李记录"), await h.services.roster.member_of_id(old_id),
                                   "post_duty", Decimal(8), date(2026, 3, 10), "本月巡逻3次", reference="t:1")
    assert "书记" in said(await h.say(b1.zhang, b1.group, f"/transfer @{b1.zhang.username}"))  # not the secretary
    calls = await h.say(b1.secretary, b1.group, f"/transfer @{b1.zhang.username} {b2.group.id}")
    code = (await rows(h, "SELECT code FROM member_transfers"))[0]["code"]
    assert code in said(calls, b1.group.id)
    assert code in said(h.world.sent(b2.secretary.id))  # the receiving secretary is told
    assert "已有一个未完成的转接" in said(await h.say(b1.secretary, b1.group, f"/transfer @{b1.zhang.username}"))
    assert "不能转入本支部" in said(await h.say(b1.secretary, b1.group, f"/accepttransfer {code}"))
    calls = await h.say(b2.secretary, b2.group, f"/accepttransfer {code}")
    assert "转入本支部" in said(calls, b2.group.id)
    assert "已转入" in said(calls, b1.group.id)
    old = (await rows(h, "SELECT * FROM members WHERE id = ?", old_id))[0]
    new = (await rows(h, "SELECT * FROM members WHERE branch_id = ? AND user_id = ?", b2.branch.id, b1.zhang.id))[0]
    assert old["status"] == "left" and new["status"] == "approved" and new["transferred_from"] == old_id
    assert await count(h, "ledger", "member_id = ? AND branch_id = ?", old_id, b1.branch.id) == 1  # history stays
    assert "已经被接收" in said(await h.say(b2.secretary, b2.group, f"/accepttransfer {code}"))
    home = await h.services.transfers.year_home(new["id"], 2026)
    assert home is not None and home.grader.member_id == new["id"] and [s.member_id for s in home.counted] == [old_id, new["id"]]


async def test_transfer_cancelled_cannot_be_accepted(h: TestHarness) -> None:
    b1 = await setup_branch(h)
    b2 = await setup_branch(h, chat_id=-1001000000002, title="兰溪镇青山村党支部", base=2000)
    await h.say(b1.secretary, b1.group, f"/transfer @{b1.lisi.username}")
    code = (await rows(h, "SELECT code FROM member_transfers"))[0]["code"]
    assert "已撤销" in said(await h.say(b1.secretary, b1.group, f"/canceltransfer {code}"))
    assert "已被撤销" in said(await h.say(b2.secretary, b2.group, f"/accepttransfer {code}"))
    assert (await rows(h, "SELECT status FROM members WHERE id = ?", b1.member_ids["lisi"]))[0]["status"] == "approved"


async def test_start_makes_an_unreachable_town_administrator_reachable_again(h: TestHarness) -> None:
    t = await make_town(h)
    await h.services.towns.admin_reachable(t.town.id, t.admin.id, False)  # e.g. a digest met "bot was blocked"
    assert (await rows(h, "SELECT reachable FROM town_admins WHERE user_id = ?", t.admin.id))[0]["reachable"] == 0
    await h.say(t.admin, h.private(t.admin), "/start")
    assert (await rows(h, "SELECT reachable FROM town_admins WHERE user_id = ?", t.admin.id))[0]["reachable"] == 1


async def test_a_branch_is_never_left_without_a_secretary_by_a_transfer(h: TestHarness) -> None:
    b1 = await setup_branch(h)
    b2 = await setup_branch(h, chat_id=-1001000000002, title="兰溪镇青山村党支部", base=2000)
    wang = f"@{b1.secretary.username}"
    # the only secretary cannot start their own move out
    assert "唯一的书记" in said(await h.say(b1.secretary, b1.group, f"/transfer {wang} {b2.group.id}"))
    assert await count(h, "member_transfers") == 0
    # with a second secretary they can; if that one's role goes before the move is accepted, the move waits
    await h.say(b1.secretary, b1.group, f"/role @{b1.zhang.username} secretary")
    await h.say(b1.secretary, b1.group, f"/transfer {wang} {b2.group.id}")
    code = (await rows(h, "SELECT code FROM member_transfers"))[0]["code"]
    await h.say(b1.secretary, b1.group, f"/role @{b1.zhang.username} -secretary")
    assert "唯一的书记" in said(await h.say(b2.secretary, b2.group, f"/accepttransfer {code}"))
    assert (await rows(h, "SELECT status FROM members WHERE branch_id = ? AND user_id = ?",
                       b1.branch.id, b1.secretary.id))[0]["status"] == "approved"
    assert await count(h, "members", "branch_id = ? AND user_id = ?", b2.branch.id, b1.secretary.id) == 0
    # another secretary appointed: the same code now moves them
    await h.say(b1.secretary, b1.group, f"/role @{b1.zhang.username} secretary")
    assert "转入本支部" in said(await h.say(b2.secretary, b2.group, f"/accepttransfer {code}"), b2.group.id)
    assert await count(h, "members", "branch_id = ? AND user_id = ? AND status = 'approved'", b2.branch.id, b1.secretary.id) == 1


@pytest.mark.parametrize("rule", list(TransferRule))
def test_every_rule_has_a_label(rule: TransferRule) -> None:
    from bot.i18n import t

    assert t("zh", f"transfer.rule_{rule.value}") and t("en", f"transfer.rule_{rule.value}")


# --- the operator's command line ------------------------------------------------------------------------------


def test_operator_command_line(tmp_path, monkeypatch, capsys) -> None:
    from bot.cli import main

    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("DATABASE_PATH", str(tmp_path / "cli.sqlite3"))
    assert main(["town", "add", "兰溪镇", "--admin", "123456", "--admin-name", "周"]) == 0
    assert main(["town", "admin", "兰溪镇", "--add", "777"]) == 0
    assert main(["town", "admin", "1", "--add", "777"]) == 0
    assert main(["town", "add", "兰溪镇", "--admin", "1"]) == 2
    assert main(["town", "admin", "无此镇", "--add", "1"]) == 2
    assert main(["town", "list"]) == 0
    out, err = capsys.readouterr()
    assert "created" in out and "already was" in out and "123456 (周)" in out and "777" in out.splitlines()[-1]
    assert "exists already" in err and "No such town" in err


def test_operator_command_line_refuses_a_database_that_is_not_there(tmp_path, monkeypatch, capsys) -> None:
    """A mistyped DATABASE_PATH (or a relative one run from another directory) is not a new, empty
    database: only `town add` may start one, and it says so."""
    from bot.cli import main

    monkeypatch.delenv("DATABASE_URL", raising=False)
    typo = tmp_path / "nope.sqlite3"
    monkeypatch.setenv("DATABASE_PATH", str(typo))
    for command in (["town", "list"], ["town", "admin", "兰溪镇", "--add", "7"], ["town", "detach", "兰溪镇", "--chat", "-1"]):
        assert main(command) == 2
        assert f"no database at {typo}" in capsys.readouterr().err and not typo.exists()
    assert main(["town", "add", "兰溪镇", "--admin", "123456"]) == 0
    assert f"no database at {typo} yet: creating it" in capsys.readouterr().out and typo.exists()
    assert main(["town", "list"]) == 0 and "兰溪镇" in capsys.readouterr().out


def test_operator_detaches_a_branch_from_the_command_line(tmp_path, monkeypatch, capsys) -> None:
    """The detach closes what waited for the town; without a bot token the operator is told to tell the
    branch's secretary (with one, handlers.town.tell_detached sends it: tests/test_town_review*.py)."""
    import asyncio

    from bot.cli import main
    from bot.services import Services
    from storage.db import Database

    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("BOT_TOKEN", raising=False)
    path = tmp_path / "cli.sqlite3"
    monkeypatch.setenv("DATABASE_PATH", str(path))
    assert main(["town", "add", "兰溪镇", "--admin", "123456"]) == 0

    async def a_branch_in_the_town() -> None:
        db = await Database(path).open()
        try:
            services = Services(db)
            secretary = Actor(50001, "赵书记")
            branch = await services.branches.setup(chat_id=-1002000000001, title="兰溪镇新村党支部", actor=secretary,
                                                   preset_code="xishui", is_admin=True)
            town = await services.towns.by_name("兰溪镇")
            code = await services.towns.make_code(town.id, Actor(123456, "周"))
            await services.towns.join(branch, secretary, code.code)
        finally:
            await db.close()

    asyncio.run(a_branch_in_the_town())
    capsys.readouterr()
    assert main(["town", "detach", "兰溪镇", "--chat", "-1002000000001"]) == 0
    out, _ = capsys.readouterr()
    assert "left '兰溪镇'" in out and "not told (no usable BOT_TOKEN)" in out and "赵书记" in out
    assert main(["town", "detach", "兰溪镇", "--chat", "-1002000000001"]) == 2  # not in the town any more


async def test_the_digest_reads_the_towns_once_per_tick_and_writes_nothing_once_sent(h: TestHarness, clock: FixedClock,
                                                                                    monkeypatch) -> None:
    from contextlib import asynccontextmanager

    from schedules.town import TownDigestProducer
    from storage import db as sqlite_db

    clock.set(datetime(2026, 1, 10, 2, 0, tzinfo=UTC))  # the town exists in February: its digest is owed
    t = await make_town(h)
    admin = Actor(t.admin.id, "周镇长")
    for number in range(6):
        secretary = Actor(60000 + number, f"书记{number}")
        branch = await h.services.branches.setup(chat_id=-1003000000000 - number, title=f"兰溪镇第{number + 1}村党支部",
                                                 actor=secretary, preset_code="xishui", is_admin=True)
        await h.services.towns.join(branch, secretary, (await h.services.towns.make_code(t.town.id, admin)).code)
    monkeypatch.setattr(engine, "PRODUCERS", [p for p in engine.PRODUCERS if isinstance(p, TownDigestProducer)])

    used = {"statements": 0, "transactions": 0}
    transaction = h.db.transaction

    @asynccontextmanager
    async def counted_transaction():
        used["transactions"] += 1
        async with transaction() as conn:
            yield conn

    def counting(execute):
        def run(self, sql, *args, **kwargs):
            used["statements"] += 1
            return execute(self, sql, *args, **kwargs)
        return run

    monkeypatch.setattr(h.db, "transaction", counted_transaction)
    classes = [sqlite_db.Connection]
    try:
        from storage import postgres
        classes.append(postgres.PgConnection)
    except ImportError:  # a SQLite-only build
        pass
    for cls in classes:
        monkeypatch.setattr(cls, "execute", counting(cls.execute))

    async def tick_at(moment: datetime) -> list:
        clock.set(moment)
        used.update(statements=0, transactions=0)
        return await engine.tick(h.app, moment)

    # February's digest was never sent: the first tick catches up, listed by one branch of the six.
    done = await tick_at(datetime(2026, 3, 31, 12, 0, tzinfo=UTC))
    assert [d[1:] for d in done] == [("town_digest", f"{t.town.id}:2026-02", "done")]
    # Every later tick of the month: no claim, no write, the same few reads whatever the branch count
    # (the branches, the towns with their listers, their effects).
    assert await tick_at(datetime(2026, 3, 31, 12, 1, tzinfo=UTC)) == []
    assert used["transactions"] == 0 and used["statements"] <= 3, used
    # March's digest on 1 April, once; then quiet again.
    done = await tick_at(datetime(2026, 4, 1, 1, 10, tzinfo=UTC))
    assert [d[1:] for d in done] == [("town_digest", f"{t.town.id}:2026-03", "done")]
    for moment in (datetime(2026, 4, 1, 1, 11, tzinfo=UTC), datetime(2026, 4, 17, 8, 0, tzinfo=UTC)):
        assert await tick_at(moment) == []
        assert used["transactions"] == 0 and used["statements"] <= 3, used
    assert await count(h, "effects", "kind = 'town_digest'") == 2
