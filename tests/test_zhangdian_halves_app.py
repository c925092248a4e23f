"""张店 through the real Application: 不合格 in the first half's democratic evaluation leaves the member out of
that half's 考核评议 only (seed 003 l.47); the second half ranks them with everyone; the year is handled
separately (no year rank, no tier). The /grade preview and the group's publicity say so.

Nothing is recorded or assessed, so every month is meetings 30 + dues 20 + four unassessed vanguard items
(default 0) = 50, and a half = 50 × 0.6 + democratic × 0.4 = 30 + 0.4 × democratic.
Democratic (weights 10/30/30/30):
  H1: everyone 80 on every part → 80, except 李四, whose branch rating is 50 (不合格): 8 + 24 + 24 + 15 = 71.
  H2: 李四 95 on every part → 95; 张三 90 → 90; the others 80.
Halves: H1 李四 30 + 28.4 = 58.4 (left out), the others 30 + 32 = 62 (all rank 1).
        H2 李四 30 + 38 = 68 (rank 1), 张三 30 + 36 = 66 (2), 王书记 and 李记录 62 (3).
Year:   张三 (62 + 66) / 2 = 64 (rank 1, top ceil(0.3) = 1); 王书记, 李记录 62 (rank 2, bottom ceil(0.09) = 1:
        the tie at the cut is in); 李四 (58.4 + 68) / 2 = 63.2, not ranked — before, 李四 had no H2 rank either
        and 张三 was H2's first.
"""

from __future__ import annotations

import json
from decimal import Decimal

from tests.conftest import count, rows, said
from tests.test_year_end_presets import alerts, close_month, grade_lines, new_branch, noon, texts


async def evaluate(h, b, half: int, self_rating: dict[str, str], rated: dict[str, str], marks: dict[str, tuple[str, str]]) -> None:
    """/evaluate open; each member rates themselves and every peer (a peer's rating depends only on who is rated);
    the secretary enters public and branch ratings (the deputy the secretary's own); /evaluate close, 确认结束."""
    sec = b.secretary
    calls = await h.say(sec, h.private(sec), f"/evaluate open 2026-H{half}")
    assert "已通知 4 人" in said(calls, sec.id), said(calls, sec.id)
    for rater, user in b.users.items():
        chat = h.private(user)
        assert "已记录自评" in said(await h.say(user, chat, f"/evaluate rate me {self_rating[rater]}"), user.id)
        for ratee in b.users:
            if ratee != rater:
                calls = await h.say(user, chat, f"/evaluate rate {b.member_ids[ratee]} {rated[ratee]}")
                assert "已记录对" in said(calls, user.id), said(calls, user.id)
    for who, (public, branch) in marks.items():
        by = b.lisi if who == "secretary" else sec
        calls = await h.say(by, h.private(by), f"/evaluate set {b.member_ids[who]} public {public} branch {branch}")
        assert b.users[who].full_name in said(calls, by.id), said(calls, by.id)
    await h.say(sec, h.private(sec), "/evaluate close")
    await h.tap(sec, sec.id, "确认结束")
    assert await count(h, "democratic_rounds", "status = 'closed'") == half


async def test_unqualified_in_h1_is_ranked_in_h2_and_the_year_is_handled_separately(h, clock) -> None:
    b = await new_branch(h, clock, "zhangdian", "张店区某局机关党支部")
    await h.say(b.secretary, b.group, f"/role @{b.lisi.username} deputy")
    everyone = {k: "80" for k in b.users}
    clock.set(noon(2026, 7, 6))
    await evaluate(h, b, 1, everyone, everyone, {k: ("80", "50" if k == "lisi" else "80") for k in b.users})
    await close_month(h, clock, 2026, 12)  # November's and December's notices: the year may be publicised
    clock.set(noon(2027, 1, 1))
    h2 = {**everyone, "lisi": "95", "zhang": "90"}
    await evaluate(h, b, 2, h2, h2, {k: (v, v) for k, v in h2.items()})
    ids = b.member_ids
    assert await h.services.democratic.unqualified(b.branch.id, 2026, 1) == {ids["lisi"]}
    assert await h.services.democratic.unqualified(b.branch.id, 2026, 2) == set()

    clock.set(noon(2027, 1, 2))
    sec = b.secretary
    shown = said(await h.say(sec, h.private(sec), "/grade 2026"), sec.id)
    assert "参加评定 3 人（名单共 4 人）" in shown and "暂定" not in shown, shown
    assert "1. 张三　64 分（上半年 62 分 第1名、下半年 66 分 第2名）　〔排名前10%：评先树优优先考虑〕" in shown, shown
    assert "2. 王书记　62 分（上半年 62 分 第1名、下半年 62 分 第3名）" in shown
    lisi = next(line for line in shown.split("\n") if "李四" in line and "63.2" in line)
    assert lisi.startswith("— 李四　63.2 分（不定等次）（上半年 58.4 分〔民主评议不合格，不参加本半年考核评议〕、"
                           "下半年 68 分 第1名）"), lisi
    assert "民主评议不合格：该半年不参加考核评议，全年另行处置（组织处置），不参加年度排名" in lisi
    d = Decimal
    preview = await grade_lines(h, b)
    assert {n: (l.figure, l.rank, l.half_ranks, l.excluded_halves, l.tiers) for n, l in preview.items()} == {
        "张三": (d("64.00"), 1, {1: 1, 2: 2}, [], ["top"]),
        "王书记": (d("62.00"), 2, {1: 1, 2: 3}, [], ["lagging"]),
        "李记录": (d("62.00"), 2, {1: 1, 2: 3}, [], ["lagging"]),
        "李四": (d("63.20"), None, {2: 1}, [1], []),
    }

    # The group's publicity says why 李四 has no year rank, and the stored line keeps the excluded half.
    calls = await h.tap(sec, sec.id, "确认并公示")
    assert "正在公示" in alerts(calls), alerts(calls)
    publicity = texts(h, b.group.id)
    assert "— 李四　63.2 分（不定等次）（上半年 58.4 分〔民主评议不合格，不参加本半年考核评议〕、下半年 68 分 第1名）" in publicity
    assert "全年另行处置（组织处置）" in publicity
    stored = await rows(h, "SELECT rank, detail FROM grade_results WHERE member_id = ? AND stage = 'published'", ids["lisi"])
    assert len(stored) == 1 and stored[0]["rank"] is None
    detail = json.loads(stored[0]["detail"])
    assert detail["excluded_halves"] == [1] and detail["half_ranks"] == {"2": 1}
