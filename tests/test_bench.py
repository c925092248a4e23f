"""The benchmark runs end to end at a tiny size and prints every figure (a smoke test, not a timed one)."""

from __future__ import annotations

import asyncio
import re

import pytest

from bench.run import main
from bot.cli import main as cli_main


def test_bench_prints_every_figure(capsys):
    assert main(["--size", "small", "--iterations", "3"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^database: SQLite 3\.\d+", out, re.M)
    assert_every_figure(out)


def test_bench_on_postgres_prints_every_figure(capsys, postgres):
    """The same benchmark on a fresh PostgreSQL database: each part in its own schema, dropped afterwards."""
    url = postgres.new_database()
    try:
        assert main(["--size", "small", "--iterations", "3", "--database-url", url]) == 0
        out = capsys.readouterr().out
        assert re.search(r"^database: PostgreSQL 1\d\.\d+ at postgresql://", out, re.M)
        assert_every_figure(out)
        schemas = asyncio.run(_bench_schemas(url))
        assert schemas == [], f"the bench left its schemas behind: {schemas}"
    finally:
        postgres.drop_database(url)


async def _bench_schemas(url: str) -> list[str]:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        return [r[0] for r in await conn.fetch("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'bench%'")]
    finally:
        await conn.close()


def assert_every_figure(out: str) -> None:
    assert re.search(r"^python 3\.\d+", out, re.M)
    for flow in ("declaration step (place text)", "approval (recorder's Approve)", "/points", "/history"):
        line = next(l for l in out.splitlines() if l.startswith(flow) and "|" in l)
        # n, updates/s, p50, p99 | floor updates/s, p50, p99 | ratio
        assert re.fullmatch(
            re.escape(flow) + r"\s+3\s+\d+\s+[\d.]+ ms\s+[\d.]+ ms \|\s+\d+\s+[\d.]+ ms\s+[\d.]+ ms \|\s+[\d.]+x", line), line
        assert re.search(re.escape(flow) + r": Bot API calls per update: \w+", out)
    # the approval makes the same calls as the live bot: the popup, the card's edit, the declarant's message
    assert "approval (recorder's Approve): Bot API calls per update: answerCallbackQuery + editMessageText + sendMessage" in out
    # the approval waits for its durable COMMIT before telling anyone: that share is measured and printed
    approval = out[out.index("approval (recorder's Approve): Bot API calls"):]
    assert re.match(r"approval .*\n.*\n    of each update, waiting for its durable COMMIT \(WAL write \+ flush\): mean [\d.]+ ms;"
                    r" 1\.5x the floor leaves [\d.]+ ms for everything that is ours \(\d+% of it for the COMMIT alone\)", approval)
    assert re.search(r"small: /grade \(GradingService\.compute\) for all 3 branches: [\d.]+ s", out)
    assert re.search(r"/grade of one branch: p50 [\d.]+ ms, min [\d.]+ ms, max [\d.]+ ms", out)
    assert re.search(r"load average [\d.]+ [\d.]+ [\d.]+", out)  # beside every run: the machine is shared
    assert re.search(r"monthly notice of one branch .*3 branches: p50 [\d.]+ ms, max [\d.]+ ms", out)
    assert re.search(r"peak memory \(maxrss\) of this process: \d+ MB", out)


def test_bench_is_a_subcommand(monkeypatch):
    seen = []
    monkeypatch.setattr("bench.run.main", lambda argv: seen.append(argv) or 0)
    assert cli_main(["bench", "--size", "county", "--quick"]) == 0
    assert cli_main(["bench", "--size", "small", "--database-url", "postgresql://u@h/db"]) == 0
    assert cli_main(["bench", "--backend", "postgres"]) == 0
    assert seen == [["--size", "county", "--quick"], ["--size", "small", "--database-url", "postgresql://u@h/db"],
                    ["--size", "town", "--backend", "postgres"]]


def test_bench_refuses_a_url_that_is_not_postgres(capsys):
    with pytest.raises(SystemExit):
        main(["--size", "small", "--database-url", "sqlite:///x.sqlite3"])
    assert "--database-url takes a postgresql:// URL" in capsys.readouterr().err
