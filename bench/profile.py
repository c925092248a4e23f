"""cProfile of one part of the benchmark: `python -m bench.profile grade|command|notice|points|history|approve [--branches N]
[--backend postgres | --database-url postgresql://…]`.

Prints the top functions by cumulative and by own time, so a shortfall can be traced to a file:function.
The profile is in this process's CPU time: a PostgreSQL server's work (another process) shows only as
the time the profile does not account for, so each run also prints its wall time and CPU time.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from pathlib import Path

from bench import seed
from bench.run import MEMBERS, NOW, YEAR, _branch, build_branch, make_secretaries
from bot.clock import FixedClock
from bot.harness import Harness
from schedules.engine import Due, Late
from schedules.notices import NoticeProducer
from storage.backends import open_database


async def _scale_db(places, where, branches: int) -> dict[int, list[tuple[int, int]]]:
    db = await open_database(where)
    await db.close()
    seeder = await places.seeder(where)
    try:
        made = await seeder.add_branches(branches)
        members = await seeder.add_members([b for b, _ in made], MEMBERS, user_base=10_000_000)
        await seeder.add_history(members, range(1, 13))
        await seeder.analyze()
    finally:
        await seeder.close()
    return members


def _feeding(h: Harness, updates: list) -> Callable[[], Awaitable[None]]:
    async def feed() -> None:
        for update in updates:
            await h.app.process_update(update)

    return feed


async def run(places, part: str, branches: int, iterations: int, top: int) -> None:
    where = await places.new("profile")
    try:
        await _run(places, where, part, branches, iterations, top)
    finally:
        await places.drop(where)


async def _profiled(profiler: cProfile.Profile, work: Callable[[], Awaitable[None]]) -> tuple[float, float]:
    """Run ``work`` under the profiler: its wall time and this process's CPU time."""
    wall, cpu = time.perf_counter(), time.process_time()
    profiler.enable()
    await work()
    profiler.disable()
    return time.perf_counter() - wall, time.process_time() - cpu


async def _run(places, path, part: str, branches: int, iterations: int, top: int) -> None:
    profiler = cProfile.Profile(time.process_time)  # CPU time: waits and other processes left out
    if part in ("grade", "command", "notice"):
        members = await _scale_db(places, path, branches)
        async with Harness(path, FixedClock(NOW)) as h:
            targets = [await _branch(h, i) for i in range(1, branches + 1)]
            for branch in targets:
                h.world.group(branch.chat_id, branch.title)
            if part == "command":  # each branch's first member is its secretary and sends /grade in private
                secretaries = await make_secretaries(h, [b.id for b in targets], members)
                wall, cpu = await _profiled(profiler, _feeding(h, [h.world.text(s, h.private(s), "/grade") for s in secretaries]))
            else:
                async def each_branch() -> None:
                    for branch in targets:
                        if part == "grade":
                            await h.services.grading.compute(branch, YEAR)
                        else:
                            due = Due("notice", "2026-11", datetime(2026, 12, 1, 1, tzinfo=UTC), Late.CATCH_UP,
                                      data={"first": date(2026, 11, 1), "last": date(2026, 11, 30)})
                            await NoticeProducer().run(h.app, branch, due, False)

                wall, cpu = await _profiled(profiler, each_branch)
    else:
        async with Harness(path, FixedClock(NOW)) as h:
            b = await build_branch(h, places, path)
            members = b["members"]
            if part in ("points", "history"):
                updates = [h.world.text(members[i % len(members)], h.private(members[i % len(members)]), f"/{part}")
                           for i in range(iterations)]
            else:  # approve
                for i in range(iterations):
                    person = members[i % len(members)]
                    for step in ("/declare", "志愿服务岗位", "为民办一件实事", "今天", "某地", "经过", "无照片", "提交"):
                        if step.startswith("/") or step in ("某地", "经过"):
                            await h.say(person, h.private(person), step)
                        else:
                            await h.tap(person, person.id, step)
                from bench.run import _card

                async with h.db.read() as conn:
                    async with conn.execute("SELECT id FROM declarations WHERE status = 'pending'") as cursor:
                        numbers = [r[0] for r in await cursor.fetchall()]
                updates = [h.world.press(b["recorder"], _card(h, b["recorder"].id, n), f"dc:ok:{n}") for n in numbers]
            wall, cpu = await _profiled(profiler, _feeding(h, updates))
    stats = pstats.Stats(profiler)
    stats.sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(top)
    print(f"{part} on {places.backend}: wall {wall:.3f} s, this process's CPU {cpu:.3f} s (under the profiler)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("part", choices=("grade", "command", "notice", "points", "history", "approve"))
    parser.add_argument("--branches", type=int, default=5)
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, seed.places_for(Path(tmp), args.backend, args.database_url) as places:
        asyncio.run(run(places, args.part, args.branches, args.iterations, args.top))


if __name__ == "__main__":
    main()
