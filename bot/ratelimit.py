"""Outbound flood control that holds over every sliding window, not on average.

PTB's AIORateLimiter uses aiolimiter's leaky buckets: a bucket of ``max_rate`` drained at ``max_rate``
per ``time_period``. After a quiet spell it lets a full bucket through at once and then keeps draining,
so a window of one period can hold almost twice the rate: 20 messages to a group at once and 20 more
within the same minute (40 in 60 s), 30 private messages at once and about 30 more within that second.
Telegram's limits (about 30 messages a second in all, 20 a minute in one group) are stated per window.

``SlidingWindowLimiter`` is a semaphore of ``max_rate`` slots whose slot comes back ``time_period``
after the call that held it has finished. At the moment any call reaches Telegram it holds a slot, and
every call made in the ``time_period`` before still holds its own (it is returned only ``time_period``
after that call ended), so no window of ``time_period`` ever contains more than ``max_rate`` calls —
even when a call waits on the other limiter, or the network, after taking its slot.
"""

from __future__ import annotations

import asyncio
from types import TracebackType

from telegram.ext import AIORateLimiter


class SlidingWindowLimiter:
    """At most ``max_rate`` calls in any window of ``time_period`` seconds (``async with limiter:``)."""

    def __init__(self, max_rate: int, time_period: float) -> None:
        self.max_rate = int(max_rate)
        self.time_period = time_period  # seconds (a time, not points: int or float as given)
        self._slots = asyncio.Semaphore(self.max_rate)
        self._held = 0  # taken and not yet returned (in flight, or finished less than time_period ago)

    def has_capacity(self, amount: float = 1) -> bool:
        return self.max_rate - self._held >= amount

    async def __aenter__(self) -> None:
        await self._slots.acquire()
        self._held += 1

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        # the call may have reached Telegram even when it failed: its slot is returned a period later
        asyncio.get_running_loop().call_later(self.time_period, self._return_slot)

    def _return_slot(self) -> None:
        self._held -= 1
        self._slots.release()


class SlidingWindowRateLimiter(AIORateLimiter):
    """AIORateLimiter (429s waited out and retried, paid broadcasts) with sliding-window limits for all
    chats together and for each group."""

    def __init__(self, overall_max_rate: int, overall_time_period: float, group_max_rate: int,
                 group_time_period: float, max_retries: int = 0) -> None:
        super().__init__(overall_max_rate=overall_max_rate, overall_time_period=overall_time_period,
                         group_max_rate=group_max_rate, group_time_period=group_time_period, max_retries=max_retries)
        self._base_limiter = SlidingWindowLimiter(overall_max_rate, overall_time_period)  # type: ignore[assignment]

    def _get_group_limiter(self, group_id: str | int | bool) -> SlidingWindowLimiter:  # type: ignore[override]
        if len(self._group_limiters) > 512:  # forget idle groups, as AIORateLimiter does
            for key, limiter in list(self._group_limiters.items()):
                if key != group_id and limiter.has_capacity(limiter.max_rate):
                    del self._group_limiters[key]
        if group_id not in self._group_limiters:
            self._group_limiters[group_id] = SlidingWindowLimiter(int(self._group_max_rate), self._group_time_period)  # type: ignore[assignment]
        return self._group_limiters[group_id]  # type: ignore[return-value]
