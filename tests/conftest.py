"""Shared fixtures for the handler tests: a fixed clock, a Harness on a fresh database, a branch.

Every test that takes ``h`` (or ``database_url``) runs twice: on a fresh SQLite file and on a fresh
PostgreSQL database (a throwaway cluster started once per session, tests/pg.py), as ``[sqlite]`` and
``[postgres]``. ``@pytest.mark.sqlite_only`` keeps a test on SQLite (it reads the file itself);
``TEST_BACKENDS=sqlite`` runs one backend only, for a quick local run. Outside CI a machine without
PostgreSQL skips the postgres half loudly; in CI (``CI`` set) that is a failure.

Every test that uses ``h`` is also checked on teardown for what must never happen anywhere:
the bot's internal-error message, a Bot API call refused for bad HTML or an overlong text, and
a callback query left unanswered.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
import telegram

from bot.clock import FixedClock
from bot.harness import Harness, plain
from bot.offline import RecordedCall
from storage.backends import AnyDatabase, open_database
from tests.pg import PostgresServer, PostgresUnavailable, postgres_server

MOMENT = datetime(2026, 3, 20, 2, 0, tzinfo=UTC)  # 10:00 in Asia/Shanghai, a Friday
INTERNAL_ERROR = "抱歉，处理时出错了"
INTERNAL_ERROR_EN = "Sorry, something went wrong"
PRESET_LABELS = {"xishui": "浠水", "zhangdian": "张店", "jiancaoping": "尖草坪", "sanmenxia": "三门峡"}
# Bot API errors that are not bugs: an edit that changes nothing, a user who blocked the bot.
TOLERATED_ERRORS = ("message is not modified", "bot was blocked by the user")


class TestHarness(Harness):
    """The Harness, remembering every callback query it fed so tests can check each was answered."""

    __test__ = False  # not a test class for pytest

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.query_ids: list[str] = []
        self.fed: list[telegram.Update] = []

    async def feed(self, update: telegram.Update) -> list[RecordedCall]:
        self.fed.append(update)
        if update.callback_query is not None:
            self.query_ids.append(update.callback_query.id)
        return await super().feed(update)


# --- checks ----------------------------------------------------------------------------------------


def texts_of(calls: list[RecordedCall]) -> list[str]:
    """Texts (HTML as sent) of sendMessage/editMessageText/answerCallbackQuery calls."""
    return [str(c.params.get("text", "")) for c in calls if c.method in ("sendMessage", "editMessageText", "answerCallbackQuery")]


def internal_errors(h: Harness) -> list[RecordedCall]:
    return [
        c for c in h.world.calls
        if c.method in ("sendMessage", "answerCallbackQuery", "editMessageText")
        and (INTERNAL_ERROR in str(c.params.get("text", "")) or INTERNAL_ERROR_EN in str(c.params.get("text", "")))
    ]


def failed_calls(h: Harness) -> list[RecordedCall]:
    return [
        c for c in h.world.calls
        if not c.ok and not any(t in str((c.error or {}).get("description", "")) for t in TOLERATED_ERRORS)
    ]


def unanswered(h: TestHarness) -> list[str]:
    answered = {str(c.params.get("callback_query_id")) for c in h.world.calls if c.method == "answerCallbackQuery"}
    return [q for q in h.query_ids if q not in answered]


def assert_healthy(h: TestHarness) -> None:
    """Nothing went wrong anywhere in this Harness's life."""
    assert not internal_errors(h), [c.params for c in internal_errors(h)]
    assert not failed_calls(h), [(c.method, c.error) for c in failed_calls(h)]
    for call in h.world.calls:
        if call.method in ("sendMessage", "editMessageText") and call.ok:
            assert len(plain(str(call.params.get("text", "")))) <= 4096
    assert not unanswered(h), f"callback queries never answered: {unanswered(h)}"


# --- fixtures --------------------------------------------------------------------------------------


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(MOMENT)


BACKENDS = tuple(b for b in os.environ.get("TEST_BACKENDS", "sqlite,postgres").split(",") if b)
_postgres_missing: list[str] = []


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "sqlite_only: the test reads the SQLite file itself; it runs on SQLite only")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every test using the ``backend`` fixture (through ``h`` or ``database_url``) runs on each backend."""
    explicit = any("backend" in str(m.args[0]) for m in metafunc.definition.iter_markers("parametrize"))
    if "backend" in metafunc.fixturenames and not explicit:
        only_sqlite = metafunc.definition.get_closest_marker("sqlite_only") is not None
        metafunc.parametrize("backend", [b for b in BACKENDS if b == "sqlite" or not only_sqlite], scope="function")


def pytest_terminal_summary(terminalreporter) -> None:
    if _postgres_missing:
        terminalreporter.write_line(
            f"WARNING: the PostgreSQL half of the suite did NOT run: {_postgres_missing[0]}", red=True, bold=True
        )


@pytest.fixture(scope="session")
def postgres() -> PostgresServer:
    """One throwaway PostgreSQL cluster for the session (tests/pg.py)."""
    try:
        server = postgres_server()
    except PostgresUnavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL could not start in CI: {exc}", pytrace=False)
        _postgres_missing.append(str(exc))
        pytest.skip(f"PostgreSQL unavailable, the postgres half of the suite is NOT running: {exc}")
    yield server
    server.stop()


@pytest.fixture
def backend() -> str:
    """Overridden by the parametrisation (pytest_generate_tests); 'sqlite' where a test is not parametrised."""
    return "sqlite"


@pytest.fixture
async def database_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[str | Path]:
    """A fresh database at the newest schema: a SQLite file path, or the URL of a new PostgreSQL database."""
    if backend == "sqlite":
        yield tmp_path / "t.sqlite3"
        return
    server: PostgresServer = request.getfixturevalue("postgres")
    url = await server.new_database_async(migrated=True)
    yield url
    await server.drop_database_async(url)


@pytest.fixture
async def h(database_url: str | Path, clock: FixedClock, request: pytest.FixtureRequest) -> AsyncIterator[TestHarness]:
    async with TestHarness(database_url, clock) as harness:
        yield harness
        if request.node.get_closest_marker("xfail") is None:
            assert_healthy(harness)


# --- reading the database --------------------------------------------------------------------------


async def rows(h: Harness, sql: str, *args: object) -> list[dict]:
    async with h.db.conn.execute(sql, args) as cursor:
        return [dict(r) for r in await cursor.fetchall()]


async def count(h: Harness, table: str, where: str = "TRUE", *args: object) -> int:
    async with h.db.conn.execute(f"SELECT count(*) FROM {table} WHERE {where}", args) as cursor:
        row = await cursor.fetchone()
    return int(row[0])


async def member_row(h: Harness, user_id: int, branch_id: int | None = None) -> dict | None:
    sql = "SELECT * FROM members WHERE user_id = ?" + (" AND branch_id = ?" if branch_id is not None else "")
    found = await rows(h, sql, user_id, *(() if branch_id is None else (branch_id,)))
    return found[0] if found else None


# --- reading the database as another process would ------------------------------------------------


@asynccontextmanager
async def second_connection(url: str | Path) -> AsyncIterator[AnyDatabase]:
    """A second Database opened on the same database as the bot's (a SQLite path or a PostgreSQL URL):
    its own connection, so it reads only what is committed, as another process would."""
    db = await open_database(url)
    try:
        yield db
    finally:
        await db.close()


@contextmanager
def fresh_database(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str | Path]:
    """For a synchronous test that makes several databases (one per hypothesis example): a new SQLite
    file, or a new PostgreSQL database cloned from the migrated template (about 0.6 s to create and drop
    on a loaded 2-core machine), dropped afterwards."""
    if backend == "sqlite":
        yield Path(tempfile.mkdtemp(dir=tmp_path)) / "t.sqlite3"
        return
    server: PostgresServer = request.getfixturevalue("postgres")
    url = server.new_database(migrated=True)
    try:
        yield url
    finally:
        server.drop_database(url)


async def table_names(db: AnyDatabase) -> list[str]:
    """Every table of the database, sorted (on SQLite sqlite_sequence too: AUTOINCREMENT's counters)."""
    if db.backend == "sqlite":
        sql = "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
    else:
        sql = ("SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() "
               "AND table_type = 'BASE TABLE' ORDER BY table_name")
    async with db.read() as conn:
        return [str(r[0]) for r in await conn.execute_fetchall(sql)]


async def dump_tables(db: AnyDatabase, tables: tuple[str, ...] | list[str] | None = None) -> dict[str, list[tuple]]:
    """Every row of ``tables`` (every table when None), read through ``db`` (see second_connection),
    as tuples of column values, sorted by their repr (no rowid needed); a table that does not exist
    is an error, not an empty dump."""
    names = await table_names(db) if tables is None else list(tables)
    async with db.read() as conn:
        return {t: sorted((tuple(r) for r in await conn.execute_fetchall(f'SELECT * FROM "{t}"')), key=repr) for t in names}


def table_diff(before: dict[str, list[tuple]], after: dict[str, list[tuple]]) -> dict[str, set[tuple]]:
    """The rows that differ, per table that changed."""
    return {t: set(before.get(t, [])) ^ set(after.get(t, [])) for t in set(before) | set(after) if before.get(t) != after.get(t)}


# --- acting ----------------------------------------------------------------------------------------


def popups(calls: list[RecordedCall]) -> list[RecordedCall]:
    return [c for c in calls if c.method == "answerCallbackQuery"]


def said(calls: list[RecordedCall], chat_id: int | None = None) -> str:
    """Everything sent or edited in these calls (optionally in one chat), as people read it."""
    return "\n".join(
        plain(str(c.params.get("text", ""))) for c in calls
        if c.method in ("sendMessage", "editMessageText") and (chat_id is None or c.chat_id == chat_id)
    )


async def setup_branch(
    h: TestHarness,
    *,
    preset: str = "xishui",
    chat_id: int = -1001000000001,
    title: str = "兰溪镇红星村党支部",
    base: int = 1000,
    start: bool = True,
) -> SimpleNamespace:
    """A branch: a group, its secretary (a group admin), three members joined and approved, one of
    them the recorder, everyone with a private chat open. Users are base+1 .. base+4."""
    group = h.group(chat_id, title)
    secretary = h.user(base + 1, f"王书记{base // 1000}" if base != 1000 else "王书记", username=f"wang_{base}")
    recorder = h.user(base + 2, f"李记录{base // 1000}" if base != 1000 else "李记录", username=f"li_{base}")
    zhang = h.user(base + 3, f"张三{base // 1000}" if base != 1000 else "张三", username=f"zhang_{base}")
    lisi = h.user(base + 4, f"李四{base // 1000}" if base != 1000 else "李四", username=f"lisi_{base}")
    h.world.set_admin(group.id, secretary.id)
    await h.feed(h.world.bot_added(group, secretary))
    await h.say(secretary, group, "/setup")
    await h.tap(secretary, group.id, PRESET_LABELS[preset])
    for person in (recorder, zhang, lisi):
        await h.say(person, group, "/join")
        await h.tap(secretary, group.id, "同意")
    await h.say(secretary, group, f"/role @{recorder.username} recorder")
    if start:
        for person in (secretary, recorder, zhang, lisi):
            await h.say(person, h.private(person), "/start")
    branch = await h.services.branches.by_chat(group.id)
    ns = SimpleNamespace(group=group, secretary=secretary, recorder=recorder, zhang=zhang, lisi=lisi, branch=branch)
    ns.member_ids = {}
    for name in ("secretary", "recorder", "zhang", "lisi"):
        row = await member_row(h, getattr(ns, name).id, branch.id)
        assert row is not None and row["status"] == "approved"
        ns.member_ids[name] = row["id"]
    return ns


@pytest.fixture
async def b(h: TestHarness) -> SimpleNamespace:
    """The standard 浠水 branch."""
    return await setup_branch(h)


LABELS = {
    "zh": {"today": "今天", "no_photo": "无照片", "submit": "提交"},
    "en": {"today": "Today", "no_photo": "No photo", "submit": "Submit"},
}


async def declare(
    h: TestHarness,
    person: telegram.User,
    category: str = "志愿服务岗位",
    item: str = "为民办一件实事",
    *,
    place: str = "村东头刘大爷家",
    text: str = "帮刘大爷打扫院子、修好漏水的水管。",
    photo: bool = False,
    submit: bool = True,
) -> int | None:
    """The whole /declare flow in private; returns the new declaration's number (None if not submitted)."""
    lang = "en" if (person.language_code or "").startswith("en") else "zh"
    chat = h.private(person)
    await h.say(person, chat, "/declare")
    await h.tap(person, chat.id, category)
    await h.tap(person, chat.id, item)
    await h.tap(person, chat.id, LABELS[lang]["today"])
    await h.say(person, chat, place)
    await h.say(person, chat, text)
    if photo:
        await h.send_photo(person, chat)
    else:
        await h.tap(person, chat.id, LABELS[lang]["no_photo"])
    if not submit:
        return None
    await h.tap(person, chat.id, LABELS[lang]["submit"])
    found = await rows(h, "SELECT d.id FROM declarations d JOIN members m ON m.id = d.member_id WHERE m.user_id = ? ORDER BY d.id DESC LIMIT 1", person.id)
    return found[0]["id"] if found else None


def card_message(h: TestHarness, chat_id: int, number: int) -> telegram.Message:
    """The decider's card for declaration #number in a chat."""
    for message in reversed(h.world.messages(chat_id)):
        if message.from_user and message.from_user.id == h.world.bot_id and f"#{number}" in (message.text or "") and h.world.buttons(message):
            return message
    raise LookupError(f"no card for #{number} in chat {chat_id}")
