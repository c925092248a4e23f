"""The README's main job: the offline demo runs the real handlers and ends with the expected scores."""

from __future__ import annotations

import subprocess
import sys

from bot.demo import run_demo

# 浠水, by hand from bot/presets/xishui.toml. A month is obligations 40 (study 10, org life 10, dues 10,
# law 10, minus deductions) + volunteer posts (nobody claimed posts, so 2 posts count: 2 × 10 for the claim,
# the assessed duty 0–10 per post, "good" = 10 for two, and 10 per practical thing, at most 20) ≤ 60.
# The year so far on 1 April counts the months that have ended (March): April is in progress and joins
# the average when it ends (bot.domain.scoring.months_so_far), so /points agrees with the notice.
#   王书记  March 40 (marked present at the roll call; dues on time) + 20 + duty 10            = 70; year 70
#   李记录  March 40 (checked in; dues marked by the secretary) + 20 + duty 0 (default: the
#           recorder's own assessment is the secretary's and was not given)                   = 60; year 60 + 2 = 62
#   张三    March 40 − 5 (study absent) − 3 (dues late, at the close) + 20 + duty 10
#           + practical things 10 + 10 − 10 (the lanes, withdrawn on 李四's objection)         = 72; year 72
#   李四    March 40 − 2 (approved leave from the theme party day) + 20 + duty 10              = 68; year 68
#           (his county commendation was rejected: no bonus)
#   Zhao Wu March 40 + 20 + duty 16 (the exception) + practical thing 10                       = 86; year 86
EXPECTED = {
    "王书记": {"march": "70.00", "year": "70.00"},
    "李记录": {"march": "60.00", "year": "62.00"},
    "张三": {"march": "72.00", "year": "72.00"},
    "李四": {"march": "68.00", "year": "68.00"},
    "Zhao Wu": {"march": "86.00", "year": "86.00"},
}


async def test_demo_month_scores(tmp_path) -> None:
    lines: list[str] = []
    results = await run_demo(tmp_path / "demo.sqlite3", echo=lines.append)
    assert results == EXPECTED
    transcript = "\n".join(lines)
    assert "申报 #2（李四）未通过" in transcript  # the rejection with its reason
    assert "这条申报已经处理过了" in transcript  # the second tap changed nothing
    # the theme party day: leave approved, reminded, checked in, closed with the roll call
    assert "✅ 您的请假已获批准（王书记）" in transcript
    assert "⏰ 会议提醒" in transcript and "🖊 开始签到" in transcript
    assert "会议 #1 的签到已结束（签到 3 人）" in transcript
    assert "🔒 会议 #1 已结束：出席 4，迟到 0，早退 0，请假 1，缺席 0。" in transcript
    assert "李四：请假，积分变动 -2" in transcript
    assert "🔒 会议已结束：出席 4，迟到 0，早退 0，请假 1，缺席 0。" in transcript  # the group's announcement
    # dues and the assessment
    assert "2026-03 党费已结账：按时 4 · 逾期 1 · 不足额 0 · 未缴 0" in transcript
    assert "已记为“良好”：4 项" in transcript and "已记录：Zhao Wu · 爱岗敬业、充分履职 16" in transcript
    # the notice on 1 April, before the objection (张三 still has the lanes), and a confirmation
    assert "兰溪镇红星村党支部 2026年3月 党员积分公示" in transcript
    assert "未考评、按默认分计入：1 人（李记录）" in transcript
    assert "张三：本月 82 分" in transcript and "Zhao Wu：本月 86 分" in transcript
    assert "✅ 已确认 2026年3月 积分" in transcript
    # the objection and its outcome, in the group
    assert "异议理由：他只扫了自家和亲戚家门口" in transcript
    assert "📋 异议 #1 处理结果：经核实，张三 的记录 #" in transcript and "已撤销，积分相应扣回" in transcript
    assert "抱歉，处理时出错了" not in transcript  # no internal error anywhere
    assert "Sorry, something went wrong" not in transcript


def test_demo_command_runs_offline() -> None:
    done = subprocess.run([sys.executable, "-m", "bot", "demo"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Zhao Wu" in done.stdout and "★★★★" in done.stdout
    assert "党员积分公示" in done.stdout and "抱歉，处理时出错了" not in done.stdout
