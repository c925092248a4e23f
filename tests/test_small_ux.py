"""Small things people hit (QA #12, #14, #17, #22 and the popups' language), through the real Application."""

from __future__ import annotations


from bot.harness import plain
from tests.conftest import said, setup_branch


def sent_texts(calls) -> str:
    return said(calls)


# --- /rules: every band says where it starts (QA #12) ------------------------------------------------------


async def rules_bands(h, preset: str, lang: str = "zh") -> list[str]:
    b = await setup_branch(h, preset=preset)
    person = b.zhang if lang == "zh" else h.user(b.zhang.id, "Zhang San", username=b.zhang.username, language="en")
    text = said(await h.say(person, h.private(person), "/rules"))
    heading = "等次" if lang == "zh" else "Bands"
    if heading not in text.split("\n"):
        return []
    return text.split("\n" + heading + "\n", 1)[1].split("\n")


async def test_rules_bands_xishui_say_the_lowest_band_s_threshold(h):
    bands = await rules_bands(h, "xishui")
    assert bands == ["· 80分及以上 优秀 ★★★★★", "· 70分及以上 合格 ★★★★", "· 60分及以上 基本合格 ★★★",
                     "· 55分及以上 不合格 ★★", "· 50分及以上 不合格 ★", "· 50分以下 不合格"]


async def test_rules_bands_xishui_in_english(h):
    bands = await rules_bands(h, "xishui", "en")
    assert bands[0] == "· 80 and above Excellent ★★★★★" and bands[-1] == "· below 50 Unqualified"


async def test_rules_bands_jiancaoping_labels_name_their_figures_once(h):
    bands = await rules_bands(h, "jiancaoping")
    assert bands == ["· 90分及以上", "· 80至89分", "· 60至79分", "· 60分以下：不合格党员"]


async def test_rules_bands_jiancaoping_in_english(h):
    bands = await rules_bands(h, "jiancaoping", "en")
    assert bands == ["· 90 and above", "· 80 to 89", "· 60 to 79", "· Below 60: unqualified"]


async def test_rules_zhangdian_shows_its_ranking_tiers(h):
    b = await setup_branch(h, preset="zhangdian")
    text = said(await h.say(b.zhang, h.private(b.zhang), "/rules"))
    assert text.endswith("排名\n· 排名前10%：评先树优优先考虑\n· 排名后3%：落后党员")


async def test_rules_of_schemes_without_bands_show_no_threshold_line(h):
    for preset, chat_id, base in (("zhangdian", -1001000000002, 2000), ("sanmenxia", -1001000000003, 3000)):
        b = await setup_branch(h, preset=preset, chat_id=chat_id, base=base, title=f"{preset}支部")
        text = said(await h.say(b.zhang, h.private(b.zhang), "/rules"))
        assert "积分细则" in text and "· <" not in text and "等次" not in text.split("\n")


# --- /branch and /cancel (QA #14, #22) -----------------------------------------------------------------------


async def test_branch_with_one_branch_names_it(h):
    b = await setup_branch(h)
    calls = await h.say(b.zhang, h.private(b.zhang), "/branch")
    text = said(calls)
    assert text == "您在“兰溪镇红星村党支部”。" and "多个支部" not in text


async def test_branch_with_two_branches_offers_the_choice_and_says_the_current_one(h):
    b = await setup_branch(h)
    other = h.group(-1001000000009, "东风村党支部")
    h.world.set_admin(other.id, b.secretary.id)
    await h.feed(h.world.bot_added(other, b.secretary))
    await h.say(b.secretary, other, "/setup")
    await h.tap(b.secretary, other.id, "浠水")
    chat = h.private(b.secretary)
    calls = await h.say(b.secretary, chat, "/branch")
    assert "您在多个支部，请选择要操作的支部" in said(calls)
    await h.tap(b.secretary, chat.id, "东风村党支部")
    calls = await h.say(b.secretary, chat, "/branch")
    assert "现在操作的是：东风村党支部" in said(calls)


async def test_branch_in_a_group_says_which_branch_it_is(h):
    b = await setup_branch(h)
    calls = await h.say(b.zhang, b.group, "/branch")
    assert said(calls, b.group.id) == "本群是支部“兰溪镇红星村党支部”。切换支部请私聊我发送 /branch。"
    stranger_group = h.group(-1001000000077, "未设置的群")
    await h.feed(h.world.bot_added(stranger_group, b.zhang))
    calls = await h.say(b.zhang, stranger_group, "/branch")
    assert "本群还没有设为党支部" in said(calls, stranger_group.id)


# --- English wording (QA #17) ---------------------------------------------------------------------------------


async def test_english_counts_read_right_with_one(h):
    b = await setup_branch(h)
    zhang_en = h.user(b.zhang.id, "Zhang San", username=b.zhang.username, language="en")
    await h.say(b.recorder, h.private(b.recorder), "/record 3 study late 3-10 late")
    text = said(await h.say(zhang_en, h.private(zhang_en), "/points"))
    assert "1-month average" in text and "average of 1 months" not in text
    text = said(await h.say(zhang_en, h.private(zhang_en), "/history"))
    assert "(latest: 1)" in text and "1 records" not in text
