"""The benchmark runs end to end at a tiny size and prints every figure (a smoke test, not a timed one)."""

from __future__ import annotations

import re

from bench.run import main
from bot.cli import main as cli_main


def test_bench_prints_every_figure(capsys):
    assert main(["--size", "small", "--iterations", "3"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^python 3\.\d+", out, re.M)
    for flow in ("declaration step (place text)", "approval (recorder's Approve)", "/points", "/history"):
        line = next(l for l in out.splitlines() if l.startswith(flow) and "|" in l)
        # n, updates/s, p50, p99 | floor updates/s, p50, p99 | ratio
        assert re.fullmatch(
            re.escape(flow) + r"\s+3\s+\d+\s+[\d.]+ ms\s+[\d.]+ ms \|\s+\d+\s+[\d.]+ ms\s+[\d.]+ ms \|\s+[\d.]+x", line), line
        assert re.search(re.escape(flow) + r": Bot API calls per update: \w+", out)
    # the approval makes the same calls as the live bot: the popup, the card's edit, the declarant's message
    assert "approval (recorder's Approve): Bot API calls per update: answerCallbackQuery + editMessageText + sendMessage" in out
    assert re.search(r"small: /grade \(GradingService\.compute\) for all 3 branches: [\d.]+ s", out)
    assert re.search(r"/grade of one branch: p50 [\d.]+ ms, min [\d.]+ ms, max [\d.]+ ms", out)
    assert re.search(r"load average [\d.]+ [\d.]+ [\d.]+", out)  # beside every run: the machine is shared
    assert re.search(r"monthly notice of one branch .*3 branches: p50 [\d.]+ ms, max [\d.]+ ms", out)
    assert re.search(r"peak memory \(maxrss\) of this process: \d+ MB", out)


def test_bench_is_a_subcommand(monkeypatch):
    seen = []
    monkeypatch.setattr("bench.run.main", lambda argv: seen.append(argv) or 0)
    assert cli_main(["bench", "--size", "county", "--quick"]) == 0
    assert seen == [["--size", "county", "--quick"]]
