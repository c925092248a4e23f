"""The tick: every due effect once, catch-up after downtime, late reminders skipped, failures recorded."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from bot.clock import FixedClock
from bot.domain.calendar import CalendarSettings, clamp_day, notice_moment, previous_periods
from bot.domain.rulebook import Period
from bot.harness import Harness
from schedules import engine
from schedules.engine import Due, Late

T0 = datetime(2026, 3, 1, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai


class Recorder:
    """A producer with one notice-like and one reminder-like effect."""

    kind = "test_effect"

    def __init__(self) -> None:
        self.runs: list[tuple[str, bool]] = []
        self.fail = False

    async def due(self, services, branch, now):
        return [
            Due(self.kind, "notice:2026-02", T0, Late.CATCH_UP),
            Due(self.kind, "reminder:m1", T0, Late.SKIP),
            Due(self.kind, "future", T0 + timedelta(days=1)),
        ]

    async def run(self, app, branch, due, late):
        if self.fail:
            raise RuntimeError("send failed")
        self.runs.append((due.key, late))


@pytest.fixture
def producer(monkeypatch):
    recorder = Recorder()
    monkeypatch.setattr(engine, "PRODUCERS", [recorder])
    return recorder


async def _branch(h: Harness) -> None:
    group = h.group(-100700, "测试支部")
    secretary = h.user(1, "书记")
    h.world.set_admin(group.id, secretary.id)
    await h.say(secretary, group, "/setup")
    await h.tap(secretary, group.id, "浠水")


async def test_on_time_each_effect_runs_once_across_ticks_and_restarts(database_url, producer) -> None:
    clock = FixedClock(T0 + timedelta(minutes=1))
    async with Harness(database_url, clock) as h:
        await _branch(h)
        first = await engine.tick(h.app, clock.now())
        assert sorted(k for _, _, k, _ in first) == ["notice:2026-02", "reminder:m1"]
        assert await engine.tick(h.app, clock.now()) == []  # a second tick: nothing again
    async with Harness(database_url, clock) as h:  # a restart
        assert await engine.tick(h.app, clock.now()) == []
    assert producer.runs == [("notice:2026-02", False), ("reminder:m1", False)]


async def test_down_across_the_moment_catches_up_late_but_skips_reminders(database_url, producer) -> None:
    clock = FixedClock(T0 + timedelta(hours=5))
    async with Harness(database_url, clock) as h:
        await _branch(h)
        result = await engine.tick(h.app, clock.now())
    assert ("notice:2026-02", True) in producer.runs
    assert all(key != "reminder:m1" for key, _ in producer.runs)
    assert any(k == "reminder:m1" and o == "skipped" for _, _, k, o in result)


async def test_a_failed_effect_is_recorded_and_not_repeated(database_url, producer) -> None:
    clock = FixedClock(T0 + timedelta(minutes=1))
    producer.fail = True
    async with Harness(database_url, clock) as h:
        await _branch(h)
        result = await engine.tick(h.app, clock.now())
        assert {o for *_, o in result} == {"failed"}
        producer.fail = False
        assert await engine.tick(h.app, clock.now()) == []  # a failed send is not retried blindly
        branch = (await h.services.calendar.branches())[0]
        assert await h.services.calendar.outcome(branch.id, "test_effect", "notice:2026-02") == "failed"


def test_short_months_and_year_boundary() -> None:
    assert clamp_day(2026, 2, 31) == date(2026, 2, 28)
    assert clamp_day(2028, 2, 30) == date(2028, 2, 29)
    assert clamp_day(2026, 4, 31) == date(2026, 4, 30)
    settings = CalendarSettings(notice_day=31, notice_hour=9)
    moment = notice_moment(date(2026, 1, 31), settings, "Asia/Shanghai")  # January's notice, in February
    assert moment.date() == date(2026, 2, 28) and moment.hour == 9
    december = notice_moment(date(2026, 12, 31), CalendarSettings(), "Asia/Shanghai")
    assert december.date() == date(2027, 1, 1)
    assert [p[0] for p in previous_periods(date(2027, 1, 1), Period.MONTH, 2)] == ["2026-11", "2026-12"]
    assert [p[0] for p in previous_periods(date(2026, 4, 1), Period.QUARTER, 1)] == ["2026-Q1"]
    assert previous_periods(date(2026, 4, 1), Period.QUARTER, 1)[0][2] == date(2026, 3, 31)


async def test_an_idempotent_effect_that_failed_is_tried_again_a_few_times(database_url, monkeypatch) -> None:
    class Flaky:
        kind = "flaky"

        def __init__(self) -> None:
            self.tries = 0

        async def due(self, services, branch, now):
            return [Due(self.kind, "k", T0, Late.CATCH_UP, retry=True)]

        async def run(self, app, branch, due, late):
            self.tries += 1
            if self.tries < 3:
                raise RuntimeError("Bad Gateway")

    flaky = Flaky()
    monkeypatch.setattr(engine, "PRODUCERS", [flaky])
    clock = FixedClock(T0 + timedelta(minutes=1))
    async with Harness(database_url, clock) as h:
        await _branch(h)
        outcomes = [o for _ in range(6) for *_, o in await engine.tick(h.app, clock.now())]
    assert outcomes == ["failed", "failed", "done"] and flaky.tries == 3


async def test_a_failed_effect_is_tried_again_with_growing_delays_for_about_a_week_then_given_up(database_url, monkeypatch) -> None:
    """A Telegram outage at the notice's moment: a few quick tries (a blip), then waits that double up to
    RETRY_CAP, for about RETRY_FOR; it was 5 tries in 5 minutes, then never again."""

    class Broken:
        kind = "broken"

        def __init__(self) -> None:
            self.tries: list[datetime] = []

        async def due(self, services, branch, now):
            return [Due(self.kind, "k", T0, Late.CATCH_UP, retry=True)]

        async def run(self, app, branch, due, late):
            self.tries.append(clock.now())
            raise RuntimeError("still down")

    broken = Broken()
    monkeypatch.setattr(engine, "PRODUCERS", [broken])
    clock = FixedClock(T0)
    moments = ([T0 + timedelta(minutes=m) for m in range(1, 11)] + [T0 + timedelta(minutes=m) for m in range(15, 120, 5)]
               + [T0 + timedelta(hours=h) for h in range(2, 24 * 9)])
    async with Harness(database_url, clock) as h:
        await _branch(h)
        for moment in moments:
            clock.set(moment)
            await engine.tick(h.app, moment)
        branch = (await h.services.calendar.branches())[0]
        assert await h.services.calendar.outcome(branch.id, "broken", "k") == "failed"
    tries = broken.tries
    assert len(tries) == engine.MAX_ATTEMPTS > 30
    assert tries[:5] == [T0 + timedelta(minutes=m) for m in range(1, 6)]  # the quick ones, at each tick
    gaps = [b - a for a, b in zip(tries, tries[1:])]
    assert all(later >= earlier for earlier, later in zip(gaps, gaps[1:]))  # the waits only grow…
    assert max(gaps) == engine.RETRY_CAP  # …up to the cap
    assert timedelta(days=6) < tries[-1] - tries[0] < timedelta(days=8)  # about a week, then no more
    assert engine.retry_delay(engine.QUICK_RETRIES + 1) == engine.RETRY_STEP


class Ordered:
    """A producer with one effect due at T0, recording its runs."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.runs: list[str] = []

    async def due(self, services, branch, now):
        return [Due(self.kind, "2026-02", T0, Late.CATCH_UP)]

    async def run(self, app, branch, due, late):
        self.runs.append(due.key)


async def test_an_effect_waits_while_an_earlier_one_runs_in_another_process(database_url, monkeypatch) -> None:
    """Two processes on one database: the notice is not taken while the other process is closing the month
    (claimed, not finished) — the order of producers holds across processes; a claim older than BUSY_FOR
    (its process died) holds nothing up."""
    close, notice = Ordered("close"), Ordered("notice")
    monkeypatch.setattr(engine, "PRODUCERS", [close, notice])
    clock = FixedClock(T0 + timedelta(minutes=1))
    async with Harness(database_url, clock) as h:
        await _branch(h)
        branch = (await h.services.calendar.branches())[0]
        assert await h.services.calendar.claim(branch.id, "close", "2026-02", T0)  # the other process, mid-close
        assert await engine.tick(h.app, clock.now()) == []
        assert close.runs == [] and notice.runs == []
        assert await h.services.calendar.outcome(branch.id, "notice", "2026-02") is None  # not claimed: tried again
        await h.services.calendar.finish(branch.id, "close", "2026-02", "done")  # the other process is done
        assert await engine.tick(h.app, clock.now()) == [(branch.id, "notice", "2026-02", "done")]
        assert notice.runs == ["2026-02"] and close.runs == []

        # A claim its process never finished stops holding the branch up after BUSY_FOR.
        later, stuck = Ordered("later"), Ordered("stuck")
        monkeypatch.setattr(engine, "PRODUCERS", [stuck, later])
        assert await h.services.calendar.claim(branch.id, "stuck", "2026-02", T0)
        assert await engine.tick(h.app, clock.now()) == []
        clock.set(clock.now() + engine.BUSY_FOR + timedelta(seconds=1))
        assert await engine.tick(h.app, clock.now()) == [(branch.id, "later", "2026-02", "done")]
        assert stuck.runs == [] and later.runs == ["2026-02"]  # the dead run's effect is never done twice


async def test_a_retry_also_waits_while_an_earlier_effect_runs_in_another_process(database_url, monkeypatch) -> None:
    """The retry of a failed effect keeps the producers' order across processes as the first claim does:
    a failed notice is not tried again while the other process is closing the month."""

    class FailsOnce(Ordered):
        async def run(self, app, branch, due, late):
            self.runs.append(due.key)
            if len(self.runs) == 1:
                raise RuntimeError("Telegram was down")

        async def due(self, services, branch, now):
            return [Due(self.kind, "2026-02", T0, Late.CATCH_UP, retry=True)]

    close, notice = Ordered("close"), FailsOnce("notice")
    monkeypatch.setattr(engine, "PRODUCERS", [close, notice])
    clock = FixedClock(T0 + timedelta(minutes=1))
    async with Harness(database_url, clock) as h:
        await _branch(h)
        branch = (await h.services.calendar.branches())[0]
        assert await h.services.calendar.claim(branch.id, "close", "2026-03", T0)  # the other process closes next month
        await h.services.calendar.finish(branch.id, "close", "2026-03", "done")
        assert await engine.tick(h.app, clock.now()) == [(branch.id, "close", "2026-02", "done"),
                                                          (branch.id, "notice", "2026-02", "failed")]
        assert await h.services.calendar.claim(branch.id, "close", "2026-04", T0)  # in progress elsewhere
        assert await engine.tick(h.app, clock.now()) == []  # the retry waits
        assert notice.runs == ["2026-02"]
        assert await h.services.calendar.outcome(branch.id, "notice", "2026-02") == "failed"  # still waiting to retry
        await h.services.calendar.finish(branch.id, "close", "2026-04", "done")
        assert await engine.tick(h.app, clock.now()) == [(branch.id, "notice", "2026-02", "done")]
        assert notice.runs == ["2026-02", "2026-02"]
