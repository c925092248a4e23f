"""/points offers the member's monthly trend as a picture; the button names nobody, so it shows the presser's own."""

from __future__ import annotations

import pytest

from tests.conftest import setup_branch


async def test_points_button_sends_the_presser_own_trend(h, b) -> None:
    chat = h.private(b.zhang)
    await h.say(b.zhang, chat, "/points")
    message, data = h.find_button(b.zhang.id, "📈")
    assert data == "ch:me"
    calls = await h.press(b.zhang, message, data)
    photos = [c for c in calls if c.method == "sendPhoto"]
    assert len(photos) == 1 and int(photos[0].params["chat_id"]) == b.zhang.id
    assert "张三" in str(photos[0].params.get("caption", ""))
    assert any(c.method == "answerCallbackQuery" for c in calls)


async def test_a_recorder_looking_at_someone_gets_no_trend_button(h, b) -> None:
    calls = await h.say(b.recorder, h.private(b.recorder), "/points @zhangsan")
    assert all("ch:me" not in str(c.params.get("reply_markup", "")) for c in calls)



@pytest.mark.parametrize("preset, drawn", [("xishui", True), ("sanmenxia", False)])
async def test_the_caption_mentions_band_lines_only_where_the_chart_draws_them(h, preset, drawn) -> None:
    """三门峡 has no bands (and 张店 ranks): its chart draws no dashed lines, so the caption says none (QA2 N10)."""
    b = await setup_branch(h, preset=preset)
    calls = await h.say(b.zhang, h.private(b.zhang), "/chart")
    captions = [str(c.params.get("caption", "")) for c in calls if c.method == "sendPhoto"]
    assert len(captions) == 1 and "张三" in captions[0]
    assert ("虚线为各等次分数线" in captions[0]) is drawn, captions[0]
