"""/points YEAR and /chart YEAR of a year that has ended (QA2 N2, N3, N5), through the real Application.

- N2: a past year shows no band as if it were the grade; once finalised, the snapshot's line (grade, stars,
  figure and public flags, as the publicity says it), before that a note that the grade is pending. Nobody
  is sent to /grade (the secretary's command).
- N3: 张店 (weighted halves): the year's figure counts the democratic evaluations, as /grade does.
- N5: a member's /points 2026-03 gets a usage line (not "only the recorder…"); /chart 2026 draws last year.
"""

from __future__ import annotations

from bot.harness import plain
from tests import test_year_end_presets as presets
from tests.conftest import rows, said
from tests.test_grading_flow import as_actor, only_year_end, tick, utc, xishui_year  # noqa: F401 (a fixture)


async def points(h, person, words: str) -> str:
    return said(await h.say(person, h.private(person), words), person.id)


async def test_points_year_shows_the_final_grade_not_the_band(h, clock, only_year_end) -> None:  # noqa: F811
    b = await xishui_year(h, clock)
    await tick(h, clock, utc(2027, 1, 1, 1, 1))  # November's and December's notices
    clock.set(utc(2027, 1, 2, 2, 0))
    sec = b.secretary
    await h.say(sec, h.private(sec), "/grade 2026")
    await h.tap(sec, sec.id, "☐ 张三")  # 张三 and 李四 tie at 85 for the one excellent place
    await h.tap(sec, sec.id, "确认并公示")

    # During the publicity: the figure, no band as a grade, no pointer to /grade.
    lisi = await points(h, b.lisi, "/points 2026")
    assert "全年：85分（12 个月平均分" in lisi
    assert "★" not in lisi and "等次：" not in lisi and "/grade" not in lisi
    assert "年度等次由支部年终评定确定" in lisi and "定级后在此显示" in lisi
    zhao = await points(h, b.zhao, "/points 2026")  # probationary: the band would say 不合格 ★★
    assert "全年：58分" in zhao and "不合格" not in zhao

    # The window ends; the secretary finalises.
    await tick(h, clock, utc(2027, 1, 9, 2, 1))
    message, data = h.find_button(sec.id, "定级并锁定")
    await h.press(sec, message, data)
    final = await h.services.grading.snapshot(b.branch.id, 2026)
    assert final is not None

    lisi = await points(h, b.lisi, "/points 2026")
    assert "年度评定结果（支部已定级）：85 分，合格 ★★★★　〔优秀名额已满〕" in lisi
    assert "优秀 ★★★★★" not in lisi and "/grade" not in lisi and "定级后在此显示" not in lisi
    assert "年度评定结果（支部已定级）：85 分，优秀 ★★★★★" in await points(h, b.zhang, "/points 2026")
    zhao = await points(h, b.zhao, "/points 2026")
    assert "年度评定结果（支部已定级）：58 分（不定等次）　〔预备党员，不定等次〕" in zhao and "不合格" not in zhao
    # a decider asking about someone else sees the same line; the figure shown is the snapshot's
    recorder = await points(h, sec, f"/points {b.member_ids['recorder']} 2026")
    assert f"全年：{final.line(b.member_ids['recorder']).figure}分" in recorder
    assert "年度评定结果（支部已定级）：59.17 分，不合格 ★★" in recorder
    for key in ("zhang", "lisi", "secretary", "recorder", "zhao", "sun"):  # /points YEAR's figure is /grade's
        member = await h.services.roster.find(b.branch, str(b.member_ids[key]))
        standing = await h.services.points.year_standing(b.branch, member, 2026)
        assert standing is not None and standing.published == final.line(member.id).figure, key

    # The English catalog says it too.
    english = await points(h, h.user(b.lisi.id, b.lisi.full_name, username=b.lisi.username, language="en"), "/points 2026")
    assert "The year's grade (finalised by the branch): 85 points" in english and "/grade" not in english


async def test_a_member_asks_for_a_month_or_last_years_chart(h, clock, only_year_end) -> None:  # noqa: F811
    b = await xishui_year(h, clock)
    clock.set(utc(2027, 1, 5, 2, 0))

    month = await points(h, b.zhang, "/points 2026-03")
    assert "只有以下角色" not in month and "/points 2025" in month and "/history" in month
    assert "只有以下角色" not in await points(h, b.zhang, "/points 2026年3月")

    calls = await h.say(b.zhang, h.private(b.zhang), "/chart 2026")  # January: last year's twelve months
    photos = [c for c in calls if c.method == "sendPhoto"]
    assert len(photos) == 1, said(calls)
    caption = plain(str(photos[0].params.get("caption", "")))
    assert "张三 2026 年每月得分" in caption and "本月仍在进行中" not in caption
    trend = await h.services.exports.trend(b.branch, as_actor(b.zhang), None, 2026)
    assert trend.year == 2026 and [m for m, _ in trend.points] == list(range(1, 13))
    assert all(v == 85 for _, v in trend.points), trend.points  # 40 + 20 + 15 + 10 every month
    sun = await h.services.exports.trend(b.branch, as_actor(b.sun), None, 2026)
    assert [m for m, _ in sun.points] == list(range(7, 13))  # joined in July

    calls = await h.say(b.zhang, h.private(b.zhang), "/chart")  # this year: January alone, as before
    caption = plain(str([c for c in calls if c.method == "sendPhoto"][0].params.get("caption", "")))
    assert "2027 年每月得分" in caption and "本月仍在进行中" in caption
    assert "2028年还没有到" in await points(h, b.zhang, "/chart 2028")
    assert "孙八 在 2025 年没有计入积分的月份" in await points(h, b.sun, "/chart 2025")
    # naming someone else is still the deciders' (with or without a year)
    assert "只有以下角色可以这样做" in await points(h, b.zhang, "/chart 李四 2026")
    calls = await h.say(b.recorder, h.private(b.recorder), "/chart 李四 2026")
    assert [c for c in calls if c.method == "sendPhoto"], said(calls)


async def test_zhangdian_points_year_counts_the_democratic_evaluation(h, clock) -> None:
    await presets.test_zhangdian_year_with_halves_and_tiers(h, clock)
    branch_id = (await rows(h, "SELECT id FROM branches"))[0]["id"]
    branch = await h.services.branches.by_id(branch_id)
    final = await h.services.grading.snapshot(branch_id, 2026)
    assert final is not None
    wang = (await rows(h, "SELECT id, user_id FROM members WHERE branch_id = ? AND name = '王书记'", branch_id))[0]
    person = h.user(wang["user_id"], "王书记")
    shown = await points(h, person, "/points 2026")
    assert "全年成绩：83.5分（上、下半年考核评议分的平均" in shown  # the publicity's and the xlsx's 83.5, not 85.5
    assert "民主评议尚未进行" not in shown and "85.5" not in shown
    assert "年度评定结果（支部已定级）：83.5 分，排名第 2" in shown
    listed = await rows(h, "SELECT id FROM members WHERE branch_id = ? AND status = 'approved'", branch_id)
    for row in listed:
        member = await h.services.roster.find(branch, str(row["id"]))
        line = final.line(member.id)
        if line.figure is None:
            continue
        standing = await h.services.points.year_standing(branch, member, 2026)
        assert standing is not None and standing.published == line.figure, member.name


async def test_zhangdian_points_this_year_counts_a_closed_democratic_round(h, clock) -> None:
    """This year's /points on 张店 once a half's democratic evaluation is in: the figure is the weighted one
    (as /grade works it out), not the quantified points with "民主评议尚未进行"."""
    await presets.test_zhangdian_year_with_halves_and_tiers(h, clock)
    clock.set(utc(2026, 12, 20, 2, 0))  # still 2026: the year so far, its rounds held
    branch_id = (await rows(h, "SELECT id FROM branches"))[0]["id"]
    wang = (await rows(h, "SELECT id, user_id FROM members WHERE branch_id = ? AND name = '王书记'", branch_id))[0]
    shown = await points(h, h.user(wang["user_id"], "王书记"), "/points")
    assert "本年至今成绩：" in shown and "民主评议尚未进行" not in shown and "本年至今量化积分" not in shown
    branch = await h.services.branches.by_id(branch_id)
    member = await h.services.roster.find(branch, str(wang["id"]))
    standing = await h.services.points.standing(branch, member)
    assert [half.democratic is not None for half in standing.summary.halves] == [True, True]
