"""/rules says how the year's result is made, not only the items (domain audit item 9).

Through the real Application for each shipped preset: the base (三门峡 100, 尖草坪 80), the method (sum,
monthly average, 张店's 60% quantified + 40% democratic with the democratic weights), 浠水's 优秀 quota
(≤ 20%) and probationary rule, the multi-year rules, an item's cap per period (三门峡 green_zone 10 a
quarter, 浠水 post_deed 10 a month per post), and a zero-out under 张店's weighted halves clears the
half-year ("本半年积分为零"), not the year. Every message stays within Telegram's 4096 characters.
The rendering helpers are also checked on a changed rulebook (the text follows the data).
"""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from bot.harness import plain
from bot.i18n import Translator
from bot.presets import preset
from handlers.common import visible_length
from handlers.queries import _item_value, _rules_year
from tests.conftest import said, setup_branch


async def rules_of(h, code: str, lang: str = "zh", n: int = 0) -> tuple[str, list[str]]:
    b = await setup_branch(h, preset=code, chat_id=-1001000000001 - n, base=1000 * (n + 1), title=f"{code}支部")
    person = b.zhang if lang == "zh" else h.user(b.zhang.id, "Zhang San", username=b.zhang.username, language="en")
    calls = await h.say(person, h.private(person), "/rules")
    messages = [c.params["text"] for c in calls if c.method == "sendMessage" and c.params.get("chat_id") == person.id]
    assert messages and all(visible_length(m) <= 4096 for m in messages)
    return plain(said(calls, person.id)), messages


def section(text: str, heading: str) -> list[str]:
    """The lines under a heading, up to the next blank line."""
    return text.split("\n" + heading + "\n", 1)[1].split("\n\n", 1)[0].split("\n")


async def test_rules_sanmenxia_base_sum_cumulative_and_the_green_zone_cap(h) -> None:
    text, _ = await rules_of(h, "sanmenxia")
    assert section(text, "年度积分") == [
        "· 基础分 100 分＋加分－扣分，一年累计",
        "· 3年累计积分排名靠后的，换届时不得提名为村党组织班子成员候选人",
    ]
    assert "· 绿化卫生责任区保持干净：+10（每季度最多 10 分）  green_zone" in text  # 000 l.25 每季度……加10分
    assert "年度积分为零" not in text and "本半年" not in text


async def test_rules_jiancaoping_base_80_and_the_zero_out_clears_the_year(h) -> None:
    text, _ = await rules_of(h, "jiancaoping")
    assert section(text, "年度积分") == [
        "· 基础分 80 分＋加分－扣分，一年累计",
        "· 连续 2 年不合格：劝其退党，劝而不退的予以除名",
    ]
    assert "· 违法犯罪：年度积分为零  crime" in text
    assert "预备党员" not in text  # 尖草坪 grades them like anyone: no rule to state


async def test_rules_xishui_average_bonus_quota_probation_and_multi_year(h) -> None:
    text, _ = await rules_of(h, "xishui")
    assert section(text, "年度积分") == [
        "· 各月得分的平均分",
        "· 另加“加分项”，每年最高 10 分",
        "· 优秀：原则上不超过参加定级党员的 20%（有人达到时至少 1 人）",
        "· 预备党员参加积分管理，但不确定等次",
        "· 预备党员年度积分不足 60 分的，延长预备期",
        "· 本年度不合格：由党组织班子成员“一对一”结对帮扶整改",
        "· 连续 2 年不合格：由镇党委组织学习班集中学习",
        "· 连续 3 年不合格：按照组织程序进行处理",
    ]
    assert "· 为民办一件实事：+10／每个岗位（每月最多 10 分／每个岗位）  post_deed" in text
    assert "· 违反政治纪律：年度积分为零  political_discipline" in text


async def test_rules_zhangdian_weighted_halves_and_the_veto_clears_the_half(h) -> None:
    text, _ = await rules_of(h, "zhangdian")
    assert section(text, "年度积分") == [
        "· 每半年考核评议分＝（6个月平均量化积分＋“激励加分”，每半年最高 20 分） × 60%＋民主评议分 × 40%；"
        "全年为两个半年的平均分",
        "· 民主评议分＝个人自评 10%＋党员互评 30%＋群众测评 30%＋党支部初评 30%",
    ]
    assert section(text, "一票否决") == [
        "· 违反政治、组织、廉洁纪律：本半年积分为零  party_discipline",
        "· 违反国家法律法规：本半年积分为零  law_breaking",
        "· 触犯党员管理“十条红线”：本半年积分为零  red_lines",
    ]
    assert "年度积分为零" not in text


async def test_rules_zhangdian_in_english(h) -> None:
    text, _ = await rules_of(h, "zhangdian", "en")
    assert section(text, "The year's result") == [
        "· each half-year: (the 6-month average of the quantified points + “Incentive bonus”, up to 20 per half-year)"
        " × 60% + the democratic evaluation × 40%; the year is the mean of the two halves",
        "· democratic evaluation = self 10% + peers 30% + the public 30% + the branch 30%",
    ]
    assert "the half-year's points become 0" in text and "year's points set to zero" not in text


async def test_rules_sanmenxia_in_english(h) -> None:
    text, _ = await rules_of(h, "sanmenxia", "en")
    assert "· base 100 + bonuses − deductions, summed over the year" in text
    assert "+10 (up to 10 per quarter)  green_zone" in text


# --- the text follows the rulebook (no event loop) ----------------------------------------------------------


def test_year_lines_follow_a_changed_rulebook() -> None:
    tr = Translator("zh")
    z = preset("zhangdian")
    weights = {"self": D("0.25"), "peer": D("0.25"), "public": D("0.25"), "branch": D("0.25")}
    changed = z.model_copy(update={"year_result": z.year_result.model_copy(update={
        "quantified_weight": D("0.7"), "democratic_weight": D("0.3"), "democratic_weights": weights})})
    lines = [plain(line) for line in _rules_year(tr, changed)]
    assert "× 70%＋民主评议分 × 30%" in lines[1]
    assert lines[2] == "· 民主评议分＝个人自评 25%＋党员互评 25%＋群众测评 25%＋党支部初评 25%"
    j = preset("jiancaoping")
    based = j.model_copy(update={"year_result": j.year_result.model_copy(update={"base": D(90)})})
    assert plain(_rules_year(tr, based)[1]) == "· 基础分 90 分＋加分－扣分，一年累计"
    # a name is escaped once, inside the 张店 formula too
    named = z.model_copy(update={"categories": tuple(
        c.model_copy(update={"name": c.name.model_copy(update={"zh": "激励<加分>&"})}) if c.code == "incentive" else c
        for c in z.categories)})
    assert "＋“激励&lt;加分&gt;&amp;”，每半年最高 20 分）" in _rules_year(tr, named)[1]
    graded = preset("xishui").model_copy(update={"settings": preset("xishui").settings.model_copy(
        update={"grade_probationary": True, "probation_extend_below": None})})
    assert not any("预备党员" in line for line in _rules_year(tr, graded))


@pytest.mark.parametrize(("code", "half"), [("zhangdian", True), ("xishui", False), ("jiancaoping", False)])
def test_a_zero_out_item_says_what_it_clears(code: str, half: bool) -> None:
    rulebook = preset(code)
    category, item = next((c, i) for c, i in rulebook.items() if i.kind.value == "zero_out")
    for lang, halves, year in (("zh", "本半年积分为零", "年度积分为零"),
                               ("en", "the half-year's points become 0", "year's points set to zero")):
        assert _item_value(Translator(lang), item, category, rulebook) == (halves if half else year)
