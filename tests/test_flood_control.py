"""Outbound flood control and 429s, on a virtual clock.

How the clock is faked: each test runs the whole bot (real Application built with the production
AIORateLimiter, services, SQLite, the offline Telegram) inside its own event loop, ``VirtualTimeLoop``,
whose ``time()`` is a counter. The rate limiter (aiolimiter's leaky buckets) and ``asyncio.sleep`` read
and wait on ``loop.time()`` only. When the loop has nothing ready to run and its next timer is t seconds
away, it does not sleep: it advances the counter by t and fires the timer. Waiting on real I/O (the
aiosqlite thread answering) still blocks for real. So a minute of rate-limited sending takes
milliseconds, and every Bot API call is stamped with the virtual moment it reached "Telegram" (the
offline world's HTTP entry point is wrapped to record ``loop.time()``).

What is checked: Telegram's limits over every sliding window — in any 1 s at most 30 calls in all,
in any 60 s at most 20 to one group (bot/ratelimit.py). PTB's AIORateLimiter alone (leaky buckets: a
full bucket at once, then drained at the rate) lets about twice that into one window after a quiet
spell; a test below shows it does, so the sliding-window check is not vacuous. Without any limiter
everything lands at one instant.
"""

from __future__ import annotations

import asyncio
import math
import random
import selectors
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot import app as bot_app
from bot.ratelimit import SlidingWindowLimiter, SlidingWindowRateLimiter
from bot.clock import FixedClock
from handlers.common import send_group
from schedules import engine
from storage import members as member_repo
from tests.conftest import MOMENT, assert_healthy, setup_branch
from tests.test_faults import SameWorldHarness, only

APRIL_1 = datetime(2026, 4, 1, 1, 0, tzinfo=UTC)
# PTB's own notice about RetryAfter.retry_after becoming a timedelta in a future version
pytestmark = pytest.mark.filterwarnings("ignore:.*retry_after.*")


class _VirtualSelector:
    """A real selector that, instead of sleeping until the next timer, moves the loop's clock there."""

    def __init__(self) -> None:
        self._real = selectors.DefaultSelector()
        self.loop: VirtualTimeLoop | None = None

    def __getattr__(self, name: str):
        return getattr(self._real, name)

    def select(self, timeout: float | None = None):
        assert self.loop is not None
        if timeout is None:  # nothing scheduled: waiting for another thread (aiosqlite) — wait for real
            return self._real.select(None)
        # let a thread that is about to answer answer, then move the clock to the next timer; always by
        # at least a microsecond per turn, as real time would (aiolimiter re-arms a timer for a
        # float-rounding remainder, which would never pass on a clock that stood still)
        events = self._real.select(0 if timeout == 0 else min(timeout, 0.001))
        if not events:
            self.loop.virtual += max(timeout, 1e-6)
        return events


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    def __init__(self) -> None:
        self.virtual = 1000.0
        selector = _VirtualSelector()
        super().__init__(selector)
        selector.loop = self

    def time(self) -> float:
        return self.virtual


def run_virtual(body: Callable[[], Awaitable[None]]) -> None:
    with asyncio.Runner(loop_factory=VirtualTimeLoop) as runner:
        runner.run(body())


def stamp_calls(world) -> list[tuple[float, str, int | str | None]]:
    """Record (virtual time, method, chat id) of every Bot API call as it reaches the offline Telegram."""
    stamps: list[tuple[float, str, int | str | None]] = []
    original = world._handle_http

    async def recording(url, http_method, request_data=None):
        params = request_data.parameters if request_data is not None else {}
        stamps.append((asyncio.get_running_loop().time(), url.rsplit("/", 1)[-1], params.get("chat_id")))
        return await original(url, http_method, request_data)

    world._handle_http = recording
    return stamps


def max_in_window(times: list[float], window: float) -> int:
    times = sorted(times)
    best, start = 0, 0
    for end in range(len(times)):
        while times[end] - times[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


def sliding_bound(max_rate: int, period: float, window: float) -> int:
    """The most calls any window of ``window`` seconds may hold when no ``period`` holds more than max_rate."""
    return max_rate * math.ceil(window / period)


class LimitedHarness(SameWorldHarness):
    """A Harness whose Application has the production rate limiter."""

    __test__ = False

    def __init__(self, path: Path, clock: FixedClock):
        from bot.offline import OfflineTelegram

        super().__init__(path, clock, OfflineTelegram(), rate_limit=True)


def test_the_production_limiter_is_configured_explicitly() -> None:
    limiter = bot_app.rate_limiter()
    assert isinstance(limiter, SlidingWindowRateLimiter)
    assert isinstance(limiter._base_limiter, SlidingWindowLimiter)
    assert isinstance(limiter._get_group_limiter(-100), SlidingWindowLimiter)
    assert (limiter._base_limiter.max_rate, limiter._base_limiter.time_period) == (30, 1)
    assert (limiter._group_max_rate, limiter._group_time_period) == (20, 60)
    assert limiter._max_retries == 3


async def _large_branch(h: LimitedHarness, size: int):
    b = await setup_branch(h)
    async with h.db.transaction() as conn:
        for i in range(size):
            user_id = 50_000 + i
            user = h.user(user_id, f"党员{i:03d}")
            h.private(user)
            await member_repo.add_approved(conn, branch_id=b.branch.id, name=user.full_name, joined_on="2026-03-01", user_id=user_id)
    return b


def test_a_large_branch_notice_round_respects_30_a_second_overall_and_20_a_minute_in_the_group(tmp_path, monkeypatch) -> None:
    """The monthly notice of a 100-member branch: the notice in the group, 104 private confirmation
    requests and the secretary's sign-off request, all through the rate limiter."""
    only(monkeypatch, "notice")

    async def body() -> None:
        clock = FixedClock(MOMENT)
        async with LimitedHarness(tmp_path / "t.sqlite3", clock) as h:
            b = await _large_branch(h, 100)
            stamps = stamp_calls(h.world)
            clock.set(APRIL_1 + timedelta(minutes=1))
            assert (b.branch.id, "notice", "2026-03", "done") in await engine.tick(h.app, clock.now())
            sends = [(t, chat) for t, method, chat in stamps if method == "sendMessage"]
            private = [t for t, chat in sends if int(chat) > 0]
            group = [t for t, chat in sends if int(chat) == b.group.id]
            assert len(private) == 104 + 1 and group  # + the secretary's sign-off request
            everything = [t for t, _ in sends]
            for window in (1.0, 2.0, 3.0):
                assert max_in_window(everything, window) <= sliding_bound(30, 1, window), window
            assert max_in_window(group, 60.0) <= 20
            assert max(everything) - min(everything) >= (len(everything) - 1) // 30  # sustained ≤ 30/s
            assert_healthy(h)

    run_virtual(body)


def test_a_long_notice_in_one_group_respects_20_a_minute(tmp_path) -> None:
    """45 pieces for one group (a notice far over 4096 characters): never more than 20 in any minute."""

    async def body() -> None:
        clock = FixedClock(MOMENT)
        async with LimitedHarness(tmp_path / "t.sqlite3", clock) as h:
            b = await setup_branch(h)
            stamps = stamp_calls(h.world)
            text = "\n".join(f"第{i}段 " + "党员积分公示" * 600 for i in range(45))  # ~3600 characters a line
            assert await send_group(h.app, b.branch, text) is not None
            group = [t for t, method, chat in stamps if method == "sendMessage" and int(chat) == b.group.id]
            assert len(group) == 45
            for window in (60.0, 120.0):
                assert max_in_window(group, window) <= sliding_bound(20, 60, window), window
            assert max(group) - min(group) >= 2 * 60  # the 21st a minute after the 1st, the 41st after the 21st
            assert_healthy(h)

    run_virtual(body)


def _limited_send_times(limiter, n: int, durations: list[float], gaps: list[float]) -> list[float]:
    """n calls through ``limiter`` (an ``async with`` limiter) started with the given gaps, each taking its
    duration after it got through; returns the virtual moment each one got through (reached Telegram)."""
    times: list[float] = []

    async def call(duration: float) -> None:
        async with limiter:
            times.append(asyncio.get_running_loop().time())
            await asyncio.sleep(duration)

    async def body() -> None:
        tasks = []
        for i in range(n):
            tasks.append(asyncio.create_task(call(durations[i])))
            await asyncio.sleep(gaps[i])
        await asyncio.gather(*tasks)

    run_virtual(body)
    return times


def test_the_sliding_window_limiter_holds_over_every_window_whatever_the_timing() -> None:
    rng = random.Random(5)
    for _ in range(20):
        n = 80
        durations = [rng.choice([0.0, 0.01, 0.5, 5.0, 30.0]) for _ in range(n)]
        gaps = [rng.choice([0.0, 0.0, 0.1, 2.0, 20.0, 70.0]) for _ in range(n)]
        times = _limited_send_times(SlidingWindowLimiter(20, 60), n, durations, gaps)
        assert len(times) == n
        assert max_in_window(times, 60.0) <= 20


def test_a_leaky_bucket_alone_lets_almost_twice_the_limit_into_one_minute() -> None:
    """Why bot/ratelimit.py exists: PTB's default group limiter (aiolimiter, 20 per 60 s) after a quiet
    spell sends 20 at once and keeps draining, so 40 calls land within 60 s."""
    from aiolimiter import AsyncLimiter

    times = _limited_send_times(AsyncLimiter(20, 60), 45, [0.0] * 45, [0.0] * 45)
    assert max_in_window(times, 60.0) > 20
    times = _limited_send_times(SlidingWindowLimiter(20, 60), 45, [0.0] * 45, [0.0] * 45)
    assert max_in_window(times, 60.0) == 20


def test_retry_after_is_waited_out_and_the_message_sent_once(tmp_path) -> None:
    """Telegram answers 429 retry_after=1 to the first send: the limiter waits (at least 1 s of the
    virtual clock) and sends again; the user gets the answer exactly once."""

    async def body() -> None:
        clock = FixedClock(MOMENT)
        async with LimitedHarness(tmp_path / "t.sqlite3", clock) as h:
            b = await setup_branch(h)
            stamps = stamp_calls(h.world)
            h.world.fail_next("sendMessage", {"error_code": 429, "parameters": {"retry_after": 1}})
            calls = await h.say(b.zhang, h.private(b.zhang), "/points")
            attempts = [(t, chat) for t, method, chat in stamps if method == "sendMessage"]
            answers = [c for c in calls if c.method == "sendMessage" and c.ok]
            assert len(attempts) == 2 and len(answers) == 1
            assert attempts[1][0] - attempts[0][0] >= 1.0
            refused = [c for c in h.world.calls if not c.ok]
            assert [(c.method, c.error["error_code"]) for c in refused] == [("sendMessage", 429)]
            h.world.calls[:] = [c for c in h.world.calls if c.ok]
            assert_healthy(h)

    run_virtual(body)


def test_the_limiter_gives_up_after_three_retries(tmp_path) -> None:
    """Four 429s in a row: the limiter tries 1 + 3 times, then the error reaches the error handler."""

    async def body() -> None:
        clock = FixedClock(MOMENT)
        async with LimitedHarness(tmp_path / "t.sqlite3", clock) as h:
            b = await setup_branch(h)
            stamps = stamp_calls(h.world)
            for _ in range(5):
                h.world.fail_next("sendMessage", {"error_code": 429, "parameters": {"retry_after": 2}})
            with pytest.raises(Exception) as raised:
                await h.app.bot.send_message(b.zhang.id, "x")
            assert type(raised.value).__name__ == "RetryAfter"
            assert len([1 for _, method, _ in stamps if method == "sendMessage"]) == 4

    run_virtual(body)
