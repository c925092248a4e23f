"""Volunteer posts (浠水 设岗定责、认岗): the branch's posts, members' claim requests and their approval,
the secretary's own edits, and scoring by the posts a member really holds.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from bot.domain.assessment import Claim, parse_post_numbers, posts_by_month, posts_held_on
from bot.presets import preset
from schedules import engine
from tests.conftest import MOMENT, count, popups, rows, said, setup_branch

XISHUI = preset("xishui")


def alerts(calls) -> str:
    return "\n".join(str(c.params.get("text", "")) for c in popups(calls))


async def month_total(h, b, name: str) -> Decimal:
    member = await h.services.roster.member_of_id(b.member_ids[name])
    return (await h.services.points.standing(b.branch, member)).month.total


async def held(h, member_id: int) -> list[int]:
    found = await rows(h, "SELECT p.number FROM post_claims c JOIN posts p ON p.id = c.post_id"
                          " WHERE c.member_id = ? AND c.released_on IS NULL ORDER BY p.number", member_id)
    return [r["number"] for r in found]


async def test_posts_are_seeded_from_the_rulebook_once(h, b):
    calls = await h.say(b.zhang, h.private(b.zhang), "/posts")
    text = said(calls, b.zhang.id)
    assert "志愿服务岗位（每人认领 2 个）" in text
    assert "1. 政策宣传志愿服务岗 — 暂无人认领" in text and "11. 家风家教岗" in text
    assert "您还没有认领岗位（计分暂按 2 个岗位）" in text
    await h.say(b.lisi, b.group, "/posts")
    assert await count(h, "posts") == 11 and await count(h, "post_boards") == 1


async def test_a_member_requests_with_buttons_and_the_secretary_approves(h, b):
    zhang = b.member_ids["zhang"]
    await h.say(b.zhang, h.private(b.zhang), "/posts")
    await h.tap(b.zhang, b.zhang.id, "申请调整认领")
    await h.tap(b.zhang, b.zhang.id, "3. 治安巡逻")
    await h.tap(b.zhang, b.zhang.id, "5. 环境卫生")
    calls = await h.tap(b.zhang, b.zhang.id, "7. 信访")  # a third post: refused
    assert "每人最多认领 2 个岗位" in alerts(calls)
    labels = [t for t, _ in h.world.buttons(h.world.last_message(b.zhang.id))]
    assert labels[2].startswith("✅ 3. 治安巡逻")
    assert labels[4].startswith("✅ 5.") and labels[6].startswith("⬜ 7.")
    submit, data = h.find_button(b.zhang.id, "提交申请（已选 2 个）")
    calls = await h.press(b.zhang, submit, data)
    assert "已提交认领申请" in alerts(calls)
    await h.press(b.zhang, submit, data)  # a double tap: the same request
    assert await count(h, "post_requests") == 1
    request = (await rows(h, "SELECT * FROM post_requests"))[0]
    assert request["status"] == "pending" and request["member_id"] == zhang
    card = said(h.world.sent(b.secretary.id))
    assert f"岗位认领申请 #{request['id']}" in card and "申请改为：3. 治安巡逻志愿服务岗（每月至少2次）、5. 环境卫生" in card
    assert await held(h, zhang) == []

    # the member cannot approve their own request; a stranger neither
    calls = await h.press(b.zhang, h.world.last_message(b.zhang.id), f"po:ok:{request['id']}")
    assert "只有以下角色可以这样做" in alerts(calls)
    card_message, approve = h.find_button(b.secretary.id, "同意")
    calls = await h.press(b.secretary, card_message, approve)
    assert "已由 王书记 同意" in alerts(calls)
    assert await held(h, zhang) == [3, 5]
    assert "您的岗位认领申请" in said(h.world.sent(b.zhang.id)) and "现认领：3. 治安巡逻" in said(h.world.sent(b.zhang.id))
    calls = await h.press(b.secretary, card_message, approve)  # the old card, tapped again
    assert "已经处理过了" in alerts(calls)
    assert await count(h, "post_claims") == 2
    calls = await h.say(b.lisi, b.group, "/posts")
    assert "3. 治安巡逻志愿服务岗（每月至少2次） — 张三" in said(calls)


async def test_scoring_counts_the_posts_really_held(h, b):
    # never claimed: the seed's 2 posts (obligations 40 + claimed posts 2 × 10)
    assert await month_total(h, b, "zhang") == 60
    await h.say(b.zhang, h.private(b.zhang), "/posts claim 4")
    await h.tap(b.secretary, b.secretary.id, "同意")
    assert await held(h, b.member_ids["zhang"]) == [4]
    assert await month_total(h, b, "zhang") == 50  # one post: 10 claim points
    # and /record's range for a per-post item follows: post_duty is 0-10 for one post
    calls = await h.say(b.recorder, h.private(b.recorder), "/record @zhang_1000 post_duty 15 巡逻")
    assert "不在该事项允许的范围内" in said(calls)
    calls = await h.say(b.recorder, h.private(b.recorder), "/record @zhang_1000 post_duty 10 巡逻")
    assert await month_total(h, b, "zhang") == 60
    # a member who gave up every post counts none
    await h.say(b.secretary, b.group, "/posts set @zhang_1000")
    assert await held(h, b.member_ids["zhang"]) == []
    assert await month_total(h, b, "zhang") == 40 + 10
    assert await month_total(h, b, "lisi") == 60  # untouched: still the seed's 2


async def test_bad_requests_are_refused_and_nothing_is_written(h, b):
    chat = h.private(b.zhang)
    cases = {
        "/posts claim 3 3": "同一个岗位写了两次",
        "/posts claim 99": "没有编号为 99 的岗位",
        "/posts claim 1 2 3": "每人最多认领 2 个岗位",
        "/posts claim x": "请写岗位编号",
        "/posts claim 3 <b>": "请写岗位编号",
    }
    for text, expected in cases.items():
        assert expected in said(await h.say(b.zhang, chat, text)), text
    assert await count(h, "post_requests") == 0
    await h.say(b.secretary, b.group, "/posts set @zhang_1000 3 5")
    assert "与现在认领的岗位相同" in said(await h.say(b.zhang, chat, "/posts claim 5,3"))
    assert await count(h, "post_requests") == 0
    # crafted presses
    for data, expected in {"po:ok:999": "找不到这条认领申请", "po:t:999:1:2": "找不到这个支部", f"po:s:{b.branch.id}:1.2.3": "每人最多认领"}.items():
        calls = await h.press(b.zhang, h.world.last_message(b.zhang.id), data)
        assert expected in alerts(calls), data
    assert await count(h, "post_requests") == 0


async def test_a_newer_request_replaces_a_pending_one_and_a_refusal_keeps_the_posts(h, b):
    await h.say(b.secretary, b.group, "/posts set @zhang_1000 1 2")
    await h.say(b.zhang, h.private(b.zhang), "/posts claim 3 4")
    await h.say(b.zhang, h.private(b.zhang), "/posts claim 5 6")
    statuses = [r["status"] for r in await rows(h, "SELECT status FROM post_requests ORDER BY id")]
    assert statuses == ["withdrawn", "pending"]
    calls = await h.tap(b.secretary, b.secretary.id, "不同意")
    assert "未获 王书记 同意" in alerts(calls)
    assert await held(h, b.member_ids["zhang"]) == [1, 2]
    assert "原认领岗位不变" in said(h.world.sent(b.zhang.id))


async def test_the_secretary_adds_and_removes_posts(h, b):
    await h.say(b.secretary, b.group, "/posts set @zhang_1000 3")
    calls = await h.say(b.zhang, b.group, "/posts add 垃圾分类宣传岗")
    assert "只有以下角色可以这样做" in said(calls)
    calls = await h.say(b.secretary, b.group, "/posts add 垃圾分类<b>宣传</b>岗")
    assert "已增加岗位 12. 垃圾分类&lt;b&gt;宣传&lt;/b&gt;岗" in str(h.world.sent(b.group.id)[-1].params["text"])
    assert "已经有" in said(await h.say(b.secretary, b.group, "/posts add 垃圾分类<b>宣传</b>岗"))
    calls = await h.say(b.secretary, b.group, "/posts remove 3")
    assert "已撤销岗位 3. 治安巡逻" in said(calls) and "需重新认领：张三" in said(calls)
    assert await held(h, b.member_ids["zhang"]) == []
    assert "没有编号为 3 的岗位" in said(await h.say(b.secretary, b.group, "/posts remove 3"))
    calls = await h.say(b.secretary, h.private(b.secretary), "/posts")
    text = said(calls, b.secretary.id)
    assert "3. 治安巡逻" not in text and "12. 垃圾分类<b>宣传</b>岗" in text
    assert "尚未认领岗位：王书记、李记录、张三、李四" in text  # the secretary sees who holds none
    # a new post is numbered after every post the branch ever had
    await h.say(b.secretary, b.group, "/posts add 新岗位")
    assert await count(h, "posts", "number = 13") == 1


async def test_a_request_for_a_post_removed_meanwhile_cannot_be_approved(h, b):
    await h.say(b.zhang, h.private(b.zhang), "/posts claim 3")
    await h.say(b.secretary, b.group, "/posts remove 3")
    calls = await h.tap(b.secretary, b.secretary.id, "同意")
    assert "已被撤销" in alerts(calls)
    assert await held(h, b.member_ids["zhang"]) == []
    assert (await rows(h, "SELECT status FROM post_requests"))[0]["status"] == "pending"


async def test_a_scheme_without_posts_says_so(h):
    b = await setup_branch(h, preset="zhangdian")
    assert "没有志愿服务岗位" in said(await h.say(b.zhang, h.private(b.zhang), "/posts"))
    member = await h.services.roster.member_of_id(b.member_ids["zhang"])
    assert (await h.services.points.standing(b.branch, member)).month.total == 50  # unchanged: 1 "post"


async def test_english_speakers_see_english_post_names(h, b):
    zhao = h.user(1005, "Zhao Wu", username="zhaowu", language="en")
    await h.say(zhao, b.group, "/join")
    await h.tap(b.secretary, b.group.id, "同意")
    await h.say(zhao, h.private(zhao), "/start")
    text = said(await h.say(zhao, h.private(zhao), "/posts"))
    assert "3. Security patrol (at least 2 a month) — nobody yet" in text
    assert "You have not claimed posts yet (scored as 2 posts for now)." in text


# --- posts counted per month (finding 4) ---------------------------------------------------------------


async def joined_in_january(h, member_id: int) -> None:
    async with h.db.transaction() as conn:
        await conn.execute("UPDATE members SET joined_on = '2026-01-10' WHERE id = ?", (member_id,))


async def test_a_change_of_posts_never_alters_a_month_that_has_ended(h, b, clock):
    """李四 claims one post on 20 March and gives it up on 10 June: only June counts no post; January and
    February (before any claim) count the seed's 2 (the transition rule), March to May one."""
    lisi = b.member_ids["lisi"]
    await joined_in_january(h, lisi)
    await h.say(b.secretary, b.group, "/posts set @lisi_1000 3")
    clock.set(datetime(2026, 6, 10, 2, 0, tzinfo=UTC))
    await h.say(b.secretary, b.group, "/posts set @lisi_1000")
    assert await held(h, lisi) == []
    member = await h.services.roster.member_of_id(lisi)
    standing = await h.services.points.standing(b.branch, member)
    assert [(m.month, m.total) for m in standing.year.months] == [(1, 60), (2, 60), (3, 50), (4, 50), (5, 50)]
    assert standing.month.total == 40  # June: no post held
    assert standing.year.figure == 54  # (60 + 60 + 50 + 50 + 50) / 5
    calls = await h.say(b.lisi, h.private(b.lisi), "/points")
    assert "54" in said(calls, b.lisi.id)


async def test_the_notice_scores_each_month_with_the_posts_held_then(h, b, clock, monkeypatch):
    """May's notice (1 June): 李四 gave up his post on 10 May, so May counts none, March and April one."""
    monkeypatch.setattr(engine, "PRODUCERS", [p for p in engine.PRODUCERS if p.kind == "notice"])
    async with h.db.transaction() as conn:
        await conn.execute("UPDATE branches SET created_at = ? WHERE id = ?", (MOMENT.isoformat(), b.branch.id))
    lisi = b.member_ids["lisi"]
    await joined_in_january(h, lisi)
    await h.say(b.secretary, b.group, "/posts set @lisi_1000 3")
    clock.set(datetime(2026, 5, 10, 2, 0, tzinfo=UTC))
    await h.say(b.secretary, b.group, "/posts set @lisi_1000")
    clock.set(datetime(2026, 6, 1, 1, 5, tzinfo=UTC))
    done = await engine.tick(h.app, clock.now())
    assert (b.branch.id, "notice", "2026-05", "done") in done
    found = await rows(h, "SELECT m.score, m.year_score FROM notice_members m JOIN notices n ON n.id = m.notice_id"
                          " WHERE n.period_key = '2026-05' AND m.member_id = ?", lisi)
    assert [(Decimal(r["score"]), Decimal(r["year_score"])) for r in found] == [(40, 52)]  # (60+60+50+50+40)/5
    published = said(h.world.sent(b.group.id))
    assert "李四：本月 50 分，全年至今 55 分" in published  # April's notice: (60 + 60 + 50 + 50) / 4
    assert "李四：本月 40 分，全年至今 52 分" in published  # May's


def test_posts_by_month_follow_the_claims():
    claims = [Claim(date(2026, 3, 20), date(2026, 6, 10)), Claim(date(2026, 4, 30)), Claim(date(2026, 5, 5), date(2026, 5, 5))]
    counted = posts_by_month(XISHUI, claims, 2026, date(2026, 6, 20))
    assert [counted[(2026, m)] for m in range(1, 7)] == [2, 2, 1, 2, 2, 1]
    assert counted[(2026, 12)] == 1  # a month still to come: as held today
    assert posts_held_on(XISHUI, claims, date(2026, 5, 5)) == 2  # claimed and released the same day: never held
    assert posts_held_on(preset("zhangdian"), claims, date(2026, 5, 5)) == 1  # no posts in the scheme


# --- nobody decides their own posts (finding 5) ------------------------------------------------------


async def test_nobody_approves_or_sets_their_own_posts(h, b):
    secretary = b.member_ids["secretary"]
    calls = await h.say(b.secretary, b.group, "/posts set @wang_1000 3")
    assert "不能直接设置自己的认领岗位" in said(calls)
    assert await count(h, "post_claims") == 0

    # the secretary's own request: no deputy, so nobody is asked (never the secretary)
    calls = await h.say(b.secretary, h.private(b.secretary), "/posts claim 3")
    assert "已提交认领申请" in said(calls) and "目前联系不到书记或副书记" in said(calls)
    assert not [c for c in calls if "岗位认领申请 #" in str(c.params.get("text", ""))]
    request = (await rows(h, "SELECT * FROM post_requests"))[0]
    calls = await h.press(b.secretary, h.world.last_message(b.secretary.id), f"po:ok:{request['id']}")  # crafted
    assert "不能审批自己的岗位认领申请" in alerts(calls)
    assert await held(h, secretary) == [] and (await rows(h, "SELECT status FROM post_requests"))[0]["status"] == "pending"
    calls = await h.say(b.secretary, h.private(b.secretary), "/posts")
    assert "岗位认领申请 #" not in said(calls)  # their own request is not listed for them to decide

    # with a deputy, the deputy alone is asked and decides
    await h.say(b.secretary, b.group, "/role @zhang_1000 deputy")
    calls = await h.say(b.secretary, h.private(b.secretary), "/posts claim 4")
    assert [c.chat_id for c in calls if "岗位认领申请 #" in str(c.params.get("text", ""))] == [b.zhang.id]
    await h.tap(b.zhang, b.zhang.id, "同意")
    assert await held(h, secretary) == [4]
    # and the deputy cannot set their own posts either
    assert "不能直接设置自己的认领岗位" in said(await h.say(b.zhang, b.group, "/posts set @zhang_1000 5"))
    assert await held(h, b.member_ids["zhang"]) == []


@given(st.lists(st.integers(min_value=0, max_value=999), max_size=4), st.sampled_from([" ", ",", "，", "、"]))
def test_post_numbers_parse_whatever_the_separator(numbers, separator):
    assert parse_post_numbers([separator.join(str(n) for n in numbers)]) == numbers
    assert parse_post_numbers([str(n) for n in numbers]) == numbers
