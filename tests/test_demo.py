"""The README's main job: the offline demo runs the real handlers and ends with the expected scores."""

from __future__ import annotations

import subprocess
import sys

from bot.demo import run_demo


async def test_demo_month_scores(tmp_path) -> None:
    lines: list[str] = []
    results = await run_demo(tmp_path / "demo.sqlite3", echo=lines.append)
    # 浠水, March: 张三 lost 5 (study absence) and 3 (dues late), claimed posts 20, one practical thing +10
    assert results == {"王书记": "60.00", "李记录": "62.00", "张三": "62.00", "李四": "58.00", "Zhao Wu": "78.00"}
    transcript = "\n".join(lines)
    assert "申报 #2（李四）未通过" in transcript  # the rejection with its reason
    assert "这条申报已经处理过了" in transcript  # the second tap changed nothing
    assert "抱歉，处理时出错了" not in transcript  # no internal error anywhere


def test_demo_command_runs_offline() -> None:
    done = subprocess.run([sys.executable, "-m", "bot", "demo"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Zhao Wu" in done.stdout and "★★★★" in done.stdout
