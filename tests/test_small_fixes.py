"""Small things the year-end sessions noted: lines that end where their text ends (尖草坪's bands have no
stars), the grade warning that names the branch's own notice period (三门峡 publishes quarterly), and a
distribution chart for the schemes that grade by rank without score lines (三门峡, 张店)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from types import SimpleNamespace

from bot.harness import plain
from bot.i18n import Translator
from bot.presets import preset
from bot.services.grading import GradeWarning
from handlers.grading import short_result, warning_text
from tests.conftest import said, setup_branch
from tests.test_grading_flow import branch_at, put


def trailing_spaces(text: str) -> list[str]:
    return [line for line in text.split("\n") if line != line.rstrip()]


async def test_points_in_a_scheme_without_stars_shows_the_band_alone(h) -> None:
    b = await setup_branch(h, preset="jiancaoping")
    text = plain(said(await h.say(b.zhang, h.private(b.zhang), "/points"), b.zhang.id))
    assert "当前等次：80至89分" in text
    assert "无星" not in text  # 尖草坪 gives no stars at all: "no stars" would suggest a bad result
    assert trailing_spaces(text) == []


async def test_points_in_a_scheme_with_stars_still_says_no_stars_for_the_lowest_band(h) -> None:
    b = await setup_branch(h)  # 浠水: 5 stars down to 0
    await put(h, b, "zhang", "law_breaking", "0", date(2026, 3, 2))  # zeroed: the lowest band, 0 stars
    text = plain(said(await h.say(b.zhang, h.private(b.zhang), "/points"), b.zhang.id))
    assert "无星" in text and trailing_spaces(text) == []


async def test_rules_lines_end_where_their_text_ends(h) -> None:
    for preset_code, chat_id, base in (("jiancaoping", -1001000000001, 1000), ("sanmenxia", -1001000000002, 2000)):
        b = await setup_branch(h, preset=preset_code, chat_id=chat_id, base=base)
        text = plain(said(await h.say(b.zhang, h.private(b.zhang), "/rules"), b.zhang.id))
        assert trailing_spaces(text) == [], preset_code


def test_a_grade_without_stars_ends_with_its_band() -> None:
    line = SimpleNamespace(figure=85, band_code="encourage", label_zh="80至89分", label_en="80-89", stars=0,
                           graded=True, rank=1)
    assert short_result(Translator("zh"), line) == "85 分，80至89分"  # type: ignore[arg-type]


def test_the_unconfirmed_warning_names_the_branchs_own_notice_period() -> None:
    warning = GradeWarning("grade.warn.unconfirmed", count=1, names=["张三(2)"])
    zh, en = Translator("zh"), Translator("en")
    assert "未确认的季度公示" in warning_text(zh, warning, preset("sanmenxia"))
    assert "月度" not in warning_text(zh, warning, preset("sanmenxia"))
    assert "未确认的月度公示" in warning_text(zh, warning, preset("xishui"))
    assert "quarterly notices" in warning_text(en, warning, preset("sanmenxia"))


async def test_a_scheme_without_bands_gets_its_distribution_chart_with_a_caption(h, clock) -> None:
    b = await branch_at(h, clock, datetime(2026, 1, 2, 2, 0, tzinfo=UTC), preset="sanmenxia")
    await put(h, b, "zhang", "forsythia", "15", date(2026, 5, 1))
    await put(h, b, "lisi", "gambling", "-5", date(2026, 6, 1))
    clock.set(datetime(2027, 1, 2, 2, 0, tzinfo=UTC))
    calls = await h.say(b.secretary, h.private(b.secretary), "/grade 2026")
    photos = [c for c in calls if c.method == "sendPhoto" and c.ok]
    assert len(photos) == 1
    assert "按排名定等，没有分数线" in photos[0].params["caption"]


async def test_an_unknown_command_in_private_is_answered_and_a_flow_keeps_its_draft(h) -> None:
    """A command no handler takes gets a reply in private (not silence), also in the middle of /declare,
    whose draft stays; in the group the bot stays quiet (other bots' commands). "/" followed by a space is
    text (Telegram makes no command of it): the place step takes it."""
    b = await setup_branch(h)
    chat = h.private(b.zhang)
    text = plain(said(await h.say(b.zhang, chat, "/nosuch"), b.zhang.id))
    assert "没有 /nosuch 这个命令" in text and "/help" in text
    assert await h.say(b.zhang, b.group, "/nosuch@other_bot") == []
    await h.say(b.zhang, chat, "/declare")
    await h.tap(b.zhang, chat.id, "志愿服务岗位")
    await h.tap(b.zhang, chat.id, "为民办一件实事")
    await h.tap(b.zhang, chat.id, "今天")
    text = plain(said(await h.say(b.zhang, chat, "/abc"), b.zhang.id))
    assert "没有 /abc 这个命令" in text
    calls = await h.say(b.zhang, chat, "/ 村委会")  # the place: still the step the draft waits at
    assert "请讲清楚经过" in plain(said(calls, b.zhang.id))
    from handlers.menus import _known_commands  # what tells "not now" from "no such command"

    assert {"cancel", "roster", "meeting", "points", "declare"} <= _known_commands(h.app)  # conversations' too
    assert "abc" not in _known_commands(h.app)
    en = h.user(4242, "Tom", username="tom", language="en")
    assert "There is no command /skipit" in plain(said(await h.say(en, h.private(en), "/skipit"), en.id))
    await h.say(b.zhang, chat, "/cancel")  # ends the declaration
    assert "现在没有进行中的操作" in plain(said(await h.say(b.zhang, chat, "/cancel"), b.zhang.id))
