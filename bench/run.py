"""`python -m bot bench`: what a flow costs per update against its floor, and the year-end work at scale.

Offline, in one process: the real Application, handlers, services and database (bot.harness) against
the offline Telegram (bot.offline), on a branch of 60 members with a year of history. The database is a
SQLite file (the default), or PostgreSQL: ``--database-url postgresql://…`` (each part in its own schema
of that database, dropped afterwards) or ``--backend postgres`` (a throwaway cluster with PostgreSQL's
default durability, bench.pgcluster).

For each flow (a declaration step, an approval, /points, a member's /history) every measured update
is followed by the same kind of update fed to its *floor* (bench.floor): a bare PTB Application whose
one handler makes the same Bot API calls the flow just made, with no logic and no database. The ratio
of the mean times per update is the cost that is ours, not PTB's.

Then /grade (GradingService.compute, every branch in turn) and the monthly notice (the notice
producer's run for one branch: record, render, send to the group, ask every member) on a town
(56 branches x 60 members x 12 months) and a county (10x: about a million ledger rows), seeded in bulk
by bench.seed, and the process's peak memory (resource.getrusage maxrss; on PostgreSQL the server's
own memory is another process's and not counted).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import resource
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Callable

import telegram

from bench import seed
from bench.floor import Floor, script_of
from bot.app import settle_heap
from bot.clock import FixedClock
from bot.harness import Harness
from schedules.engine import Due, Late
from schedules.notices import NoticeProducer
from storage.backends import is_postgres, open_database

NOW = datetime(2026, 12, 20, 2, 0, tzinfo=UTC)  # 10:00 in Asia/Shanghai: a year of history behind it
YEAR = 2026
MEMBERS = 60
TARGET_RATIO = 1.5
TARGET_P99_MS = 5.0
TARGET_GRADE_S = {"town": 0.3, "county": 2.0}
TARGET_MEMORY_MB = 300
SIZES = {"small": 3, "town": 56, "county": 560}  # branches of the year-end part


@dataclass
class Series:
    name: str
    flow: list[float] = field(default_factory=list)  # seconds per update
    floor: list[float] = field(default_factory=list)
    disk: list[float] = field(default_factory=list)  # seconds of each update spent in durable COMMITs
    calls: str = ""

    def ratio(self) -> float:
        return statistics.fmean(self.flow) / statistics.fmean(self.floor)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


# --- the branch of 60 members ----------------------------------------------------------------------


class Bench:
    def __init__(self, h: Harness, floor: Floor):
        self.h, self.floor = h, floor
        self.world = h.world

    async def timed(self, series: Series, update: telegram.Update, twin: Callable[[], telegram.Update]) -> list:
        """Feed the flow one update, then its floor the same kind of update making the same calls."""
        before = len(self.world.calls)
        waited = self.h.db.commit_seconds
        start = time.perf_counter()
        await self.h.app.process_update(update)
        series.flow.append(time.perf_counter() - start)
        series.disk.append(self.h.db.commit_seconds - waited)
        calls = self.world.calls[before:]
        series.calls = " + ".join(c.method for c in calls)
        script = script_of(calls)
        other = twin()
        start = time.perf_counter()
        await self.floor.process(other, script)
        series.floor.append(time.perf_counter() - start)
        return calls

    async def say(self, user, text: str) -> None:
        await self.h.app.process_update(self.world.text(user, self.h.private(user), text))

    async def tap(self, user, label: str) -> None:
        message, data = self.h.find_button(user.id, label)
        await self.h.app.process_update(self.world.press(user, message, data))


async def build_branch(h: Harness, places, where) -> dict:
    """A 浠水 branch made through the bot (/setup, /join, /role), then 56 more members and a year of
    ledger history for all 60 in bulk (bench.seed)."""
    world = h.world
    group = h.group(-1001000000001, "兰溪镇红星村党支部")
    secretary = h.user(1001, "王书记", username="wang")
    recorder = h.user(1002, "李记录", username="li")
    others = [h.user(1003, "张三", username="zhang"), h.user(1004, "李四", username="lisi")]
    world.set_admin(group.id, secretary.id)
    await h.feed(world.bot_added(group, secretary))
    await h.say(secretary, group, "/setup")
    await h.tap(secretary, group.id, "浠水")
    for person in (recorder, *others):
        await h.say(person, group, "/join")
        await h.tap(secretary, group.id, "同意")
    await h.say(secretary, group, "/role @li recorder")
    for person in (secretary, recorder, *others):
        await h.say(person, h.private(person), "/start")
    branch = await h.services.branches.by_chat(group.id)
    seeder = await places.seeder(where)
    try:
        added = (await seeder.add_members([branch.id], MEMBERS - 4, user_base=5000))[branch.id]
        everyone = await seeder.approved_members(branch.id)
        rows = await seeder.add_history({branch.id: [(m, 0) for m in everyone]}, range(1, 13))
        if places.backend == "postgresql":  # what autovacuum does to a deployment's tables; SQLite's app never analyzes
            await seeder.analyze()
    finally:
        await seeder.close()
    members = [h.user(user_id, f"党员{user_id}", username=f"m{user_id}") for _, user_id in added]
    for person in members:
        h.private(person)
    return {"branch": branch, "group": group, "secretary": secretary, "recorder": recorder, "members": members,
            "ledger_rows": rows}


async def flows(places, iterations: int, out: Callable[[str], None]) -> list[Series]:
    clock = FixedClock(NOW)
    where = await places.new("branch")
    try:
        return await _flows(places, where, clock, iterations, out)
    finally:
        await places.drop(where)


async def _flows(places, where, clock: FixedClock, iterations: int, out: Callable[[str], None]) -> list[Series]:
    async with Harness(where, clock) as h, Floor(h.world) as floor:
        b = await build_branch(h, places, where)
        out(f"branch: {MEMBERS} members, {b['ledger_rows']} ledger rows seeded for {YEAR}-01..12 (浠水 rulebook)")
        settle_heap()  # as the bot does once it has started (bot.app._post_init); the floor's heap too
        bench = Bench(h, floor)
        world = h.world
        members = b["members"]
        recorder = b["recorder"]
        place, approve, points, history = Series("declaration step (place text)"), Series("approval (recorder's Approve)"), \
            Series("/points"), Series("/history")
        numbers: list[int] = []
        for i in range(iterations):
            person = members[i % len(members)]
            chat = h.private(person)
            await bench.say(person, "/declare")
            await bench.tap(person, "志愿服务岗位")
            await bench.tap(person, "为民办一件实事")
            await bench.tap(person, "今天")
            calls = await bench.timed(place, world.text(person, chat, f"村东头{i}号"),
                                      lambda: world.text(person, chat, f"村东头{i}号"))
            assert any(c.method == "sendMessage" for c in calls), "the place step answered nothing"
            await bench.say(person, "帮刘大爷打扫院子、修好漏水的水管。")
            await bench.tap(person, "无照片")
            await bench.tap(person, "提交")
        async with h.db.read() as conn:
            async with conn.execute("SELECT id FROM declarations WHERE status = 'pending' ORDER BY id") as cursor:
                numbers = [int(r[0]) for r in await cursor.fetchall()]
        assert len(numbers) == iterations, f"{len(numbers)} declarations pending, {iterations} expected"
        for number in numbers:
            card = _card(h, recorder.id, number)
            data = f"dc:ok:{number}"
            calls = await bench.timed(approve, world.press(recorder, card, data), lambda: world.press(recorder, card, data))
            assert any(c.method == "editMessageText" for c in calls), f"approving #{number} edited nothing"
        async with h.db.read() as conn:
            async with conn.execute("SELECT count(*) FROM ledger WHERE source = 'declaration' AND reference LIKE 'decl:%'") as cursor:
                approved = (await cursor.fetchone())[0]
        assert approved == iterations, f"{approved} approvals booked, {iterations} expected"
        for series, command in ((points, "/points"), (history, "/history")):
            for i in range(iterations):
                person = members[i % len(members)]
                chat = h.private(person)
                calls = await bench.timed(series, world.text(person, chat, command), lambda: world.text(person, chat, command))
                assert any(c.method == "sendMessage" for c in calls), f"{command} answered nothing"
        # The bot freezes its heap once for its whole life; this process goes on to other Applications, and
        # these two, frozen, would never have their cycles collected: give them back to the collector.
        gc.unfreeze()
        return [place, approve, points, history]


def _card(h: Harness, chat_id: int, number: int) -> telegram.Message:
    for message in reversed(h.world.messages(chat_id)):
        if f"#{number}" in (message.text or "") and h.world.buttons(message):
            return message
    raise LookupError(f"no card for #{number}")


# --- a town and a county ---------------------------------------------------------------------------


@dataclass
class Scale:
    name: str
    branches: int
    members: int
    ledger_rows: int
    seed_s: float
    grade: list[float]  # seconds per branch
    notice: list[float]  # seconds per branch (the notice producer's run)
    notice_branches: int
    command: list[float] = field(default_factory=list)  # seconds per /grade command (update in, screen out)
    command_calls: str = ""

    @property
    def grade_total(self) -> float:
        return sum(self.grade)


async def scale(places, name: str, branches: int, notice_sample: int, out: Callable[[str], None]) -> Scale:
    where = await places.new(name)
    try:
        return await _scale(places, where, name, branches, notice_sample, out)
    finally:
        await places.drop(where)


async def _scale(places, where, name: str, branches: int, notice_sample: int, out: Callable[[str], None]) -> Scale:
    db = await open_database(where)  # the app's migrations make the schema
    await db.close()
    start = time.perf_counter()
    seeder = await places.seeder(where)
    try:
        made = await seeder.add_branches(branches)
        members = await seeder.add_members([b for b, _ in made], MEMBERS, user_base=10_000_000)
        rows = await seeder.add_history(members, range(1, 13))
        await seeder.analyze()
    finally:
        await seeder.close()
    seeded = time.perf_counter() - start
    out(f"{name}: {branches} branches x {MEMBERS} members x 12 months = {rows} ledger rows, seeded in {seeded:.1f} s")
    clock = FixedClock(NOW)
    async with Harness(where, clock) as h:
        async with h.db.read() as c:
            async with c.execute("SELECT id FROM branches ORDER BY id") as cursor:
                ids = [int(r[0]) for r in await cursor.fetchall()]
        grade: list[float] = []
        gc.collect()
        for branch_id in ids:
            branch = await _branch(h, branch_id)
            start = time.perf_counter()
            result = await h.services.grading.compute(branch, YEAR)
            grade.append(time.perf_counter() - start)
            assert len(result.lines) == MEMBERS, f"branch {branch_id} graded {len(result.lines)} members"
        command, command_calls = await _grade_commands(h, ids[:notice_sample], members)
        notice: list[float] = []
        producer = NoticeProducer()
        due_at = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)
        for branch_id in ids[:notice_sample]:
            branch = await _branch(h, branch_id)
            h.world.group(branch.chat_id, branch.title)
            due = Due("notice", "2026-11", due_at, Late.CATCH_UP, data={"first": date(2026, 11, 1), "last": date(2026, 11, 30)})
            before = len(h.world.calls)
            start = time.perf_counter()
            await producer.run(h.app, branch, due, False)
            notice.append(time.perf_counter() - start)
            sent = h.world.calls[before:]
            assert any(c.chat_id == branch.chat_id for c in sent), "the notice reached no group"
            h.world.clear()
    return Scale(name, branches, branches * MEMBERS, rows, seeded, grade, notice, len(notice), command, command_calls)


async def make_secretaries(h: Harness, branch_ids: list[int], members: dict[int, list[tuple[int, int]]]) -> list[telegram.User]:
    """Each seeded branch's first member made its secretary; their Telegram users, in ``branch_ids``' order."""
    from bot.domain.records import Role
    from storage import members as member_repo

    users = []
    for branch_id in branch_ids:
        member_id, user_id = members[branch_id][0]
        async with h.db.transaction() as conn:
            await member_repo.grant(conn, branch_id, member_id, Role.SECRETARY, None)
        users.append(h.user(user_id, f"党员{user_id}", username=f"m{user_id}"))
    return users


async def _grade_commands(h: Harness, branch_ids: list[int], members: dict[int, list[tuple[int, int]]]) -> tuple[list[float], str]:
    """The command as a secretary meets it: ``/grade`` sent in private by each sampled branch's secretary
    (its first member, given the role), timed from the update to the last Bot API call of the answer — the
    screen with the year's results and, at this stage (the year not yet confirmed), the distribution chart."""
    from bot.charts import warm_up

    await asyncio.to_thread(warm_up)  # as the bot does once it has started (bot.app._post_init)
    timings: list[float] = []
    calls = ""
    for branch_id, secretary in zip(branch_ids, await make_secretaries(h, branch_ids, members)):
        chat = h.private(secretary)
        before = len(h.world.calls)
        start = time.perf_counter()
        await h.app.process_update(h.world.text(secretary, chat, "/grade"))
        timings.append(time.perf_counter() - start)
        sent = h.world.calls[before:]
        assert sent and all(c.chat_id == chat.id for c in sent), f"/grade of branch {branch_id} answered nothing"
        calls = " + ".join(c.method for c in sent)
        h.world.clear()
    return timings, calls


async def _branch(h: Harness, branch_id: int):
    from storage import branches as branch_repo

    async with h.db.read() as conn:
        return await branch_repo.by_id(conn, branch_id)


# --- printing --------------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSES"


def report_flows(series: list[Series], out: Callable[[str], None]) -> None:
    out("")
    out(f"{'flow':34} {'n':>5} {'upd/s':>8} {'p50':>10} {'p99':>10} | {'floor upd/s':>11} {'floor p50':>10} {'floor p99':>10} | {'ratio':>6}")
    for s in series:
        out(f"{s.name:34} {len(s.flow):>5} {1 / statistics.fmean(s.flow):>8.0f} {ms(pct(s.flow, .5)):>10} {ms(pct(s.flow, .99)):>10} |"
            f" {1 / statistics.fmean(s.floor):>11.0f} {ms(pct(s.floor, .5)):>10} {ms(pct(s.floor, .99)):>10} | {s.ratio():>5.2f}x")
    out("")
    for s in series:
        out(f"  {s.name}: Bot API calls per update: {s.calls}")
        out(f"    ratio {s.ratio():.2f}x (target <= {TARGET_RATIO}x): {verdict(s.ratio() <= TARGET_RATIO)};"
            f" p99 {ms(pct(s.flow, .99))} (target <= {TARGET_P99_MS:.0f} ms): {verdict(pct(s.flow, .99) * 1000 <= TARGET_P99_MS)}")
        disk = statistics.fmean(s.disk) if s.disk else 0.0
        if disk > 0:  # a write that must be durable before the user is told: the disk's share, measured
            allowed = (TARGET_RATIO - 1) * statistics.fmean(s.floor)
            out(f"    of each update, waiting for its durable COMMIT (WAL write + flush): mean {ms(disk)};"
                f" {TARGET_RATIO}x the floor leaves {ms(allowed)} for everything that is ours"
                f" ({disk / allowed:.0%} of it for the COMMIT alone)")


def report_scale(s: Scale, out: Callable[[str], None]) -> None:
    target = TARGET_GRADE_S.get(s.name)
    out("")
    out(f"{s.name}: /grade (GradingService.compute) for all {s.branches} branches: {s.grade_total:.2f} s"
        + (f" (target <= {target} s): {verdict(s.grade_total <= target)}" if target else ""))
    out(f"  /grade of one branch: p50 {ms(pct(s.grade, .5))}, min {ms(min(s.grade))}, max {ms(max(s.grade))}")
    if s.command:
        out(f"  the /grade command of one branch's secretary (update -> {s.command_calls}), {len(s.command)} branches:"
            f" p50 {ms(pct(s.command, .5))}, max {ms(max(s.command))}"
            + (f" (target <= {target} s each): {verdict(max(s.command) <= target)}" if target else ""))
    out(f"  monthly notice of one branch (NoticeProducer.run: record, render, 1 group + {MEMBERS} private messages),"
        f" {s.notice_branches} branches: p50 {ms(pct(s.notice, .5))}, max {ms(max(s.notice))}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot bench", description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=tuple(SIZES), default="town", help="the year-end part: small (3 branches), town, county (also runs town)")
    parser.add_argument("--quick", action="store_true", help="fewer iterations (a quick look, noisier figures)")
    parser.add_argument("--iterations", type=int, default=None, help=argparse.SUPPRESS)  # the smoke test's tiny size
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite",
                        help="sqlite (a file, the default) or postgres (a throwaway cluster: initdb + pg_ctl, as 'nobody' when root)")
    parser.add_argument("--database-url", default=None, metavar="postgresql://USER@HOST:PORT/DB",
                        help="run on this PostgreSQL database instead (each part in its own schema bench_<pid>_<part>,"
                             " dropped afterwards; the role needs CREATE on the database)")
    args = parser.parse_args(argv)
    if args.database_url is not None and not is_postgres(args.database_url):
        parser.error("--database-url takes a postgresql:// URL (SQLite is the default: no URL needed)")
    iterations = args.iterations or (60 if args.quick else 300)
    out = print
    out(f"python {sys.version.split()[0]}, {_cpu()}, {_load()}")
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp, seed.places_for(Path(tmp), args.backend, args.database_url) as places:
        out(f"database: {asyncio.run(places.describe())}")
        series = asyncio.run(flows(places, iterations, out))
        report_flows(series, out)
        names = ["small"] if args.size == "small" else (["town"] if args.size == "town" else ["town", "county"])
        for name in names:
            notice_sample = 3 if name == "small" else (5 if args.quick else 20)
            result = asyncio.run(scale(places, name, SIZES[name], notice_sample, out))
            report_scale(result, out)
        memory = maxrss_mb()
        out("")
        out(f"at the end: {_load()}")
        out(f"peak memory (maxrss) of this process: {memory:.0f} MB"
            + (f" (target <= {TARGET_MEMORY_MB} MB for the county): {verdict(memory <= TARGET_MEMORY_MB)}" if "county" in names else ""))
    return 0


def _load() -> str:
    """The machine's load average (1, 5, 15 min): figures taken on a shared machine need it beside them."""
    import os

    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f}"


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                import os

                return f"{line.split(':', 1)[1].strip()} x {os.cpu_count()}"
    except OSError:
        pass
    return "cpu unknown"


if __name__ == "__main__":
    sys.exit(main())
