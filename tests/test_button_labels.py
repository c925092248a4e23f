"""Button labels are plain text (Telegram shows them as they are): a name typed with & < > " reads on
the button exactly as typed, while the message beside it carries the same name escaped for HTML.

Through the real Application: the member's Redeem button, the secretary's catalog (edit and Keep
buttons), the merchants' Remove button and the town dashboard's branch buttons."""

from __future__ import annotations

from decimal import Decimal

from bot.i18n import Safe, Translator
from bot.services import Actor
from tests.conftest import TestHarness, said, setup_branch
from tests.test_rewards import add_item, put
from tests.test_town import joined, make_town

HOSTILE = 'A&B <i>"x"</i>'  # what a secretary may type as a name
ESCAPED = 'A&amp;B &lt;i&gt;"x"&lt;/i&gt;'  # the same inside a message (HTML, quotes need no escape there)


def labels(h: TestHarness, chat_id: int) -> list[str]:
    return [text for text, _ in h.world.buttons(h.world.last_message(chat_id))]


def sent_html(calls, chat_id: int) -> str:
    return "\n".join(str(c.params.get("text", "")) for c in calls
                     if c.method in ("sendMessage", "editMessageText") and c.chat_id == chat_id)


def test_label_fills_parameters_unescaped_and_messages_stay_escaped() -> None:
    for lang, redeem in (("zh", f"兑换：{HOSTILE}（2.5分）"), ("en", f"Redeem: {HOSTILE} (2.5)")):
        tr = Translator(lang)
        assert tr.plain("rewards.redeem_button", name=HOSTILE, cost=Decimal("2.50")) == redeem
        assert ESCAPED in tr("rewards.item_line", number=1, name=HOSTILE, cost=Decimal(2), stock="∞")
    # an already rendered fragment reads as Telegram would show it
    assert Translator("zh").plain("catalog.edit_button", name=Safe("<b>A&amp;B</b>")) == "✏ A&B"


async def test_reward_and_merchant_buttons_show_the_name_as_typed(h: TestHarness) -> None:
    b = await setup_branch(h, preset="jiancaoping")
    sec, zhang = h.private(b.secretary), h.private(b.zhang)
    await h.say(b.secretary, sec, "/rewards")
    await h.tap(b.secretary, sec.id, "开启积分兑换")
    await add_item(h, b, HOSTILE, "2", "5")
    await put(h, b, "zhang", "brave_deed", "5")

    calls = await h.say(b.zhang, zhang, "/rewards")
    assert f"兑换：{HOSTILE}（2分）" in labels(h, zhang.id)
    assert ESCAPED in sent_html(calls, zhang.id) and HOSTILE in said(calls, zhang.id)
    calls = await h.tap(b.zhang, zhang.id, f"兑换：{HOSTILE}")  # the button found by its literal label
    assert ESCAPED in sent_html(calls, zhang.id)

    calls = await h.say(b.secretary, sec, "/catalog")
    assert f"✏ {HOSTILE}" in labels(h, sec.id) and ESCAPED in sent_html(calls, sec.id)
    await h.tap(b.secretary, sec.id, f"✏ {HOSTILE}")
    await h.tap(b.secretary, sec.id, "修改")
    assert f"保持不变：{HOSTILE}" in labels(h, sec.id)

    await h.services.rewards.add_merchant(b.branch, Actor(user_id=b.secretary.id, name="王书记"), user_id=8001,
                                          name=HOSTILE, discount="九五折")
    await h.say(b.secretary, sec, "/cancel")
    calls = await h.say(b.secretary, sec, "/merchants")
    assert f"✖ 移除 {HOSTILE}" in labels(h, sec.id) and ESCAPED in sent_html(calls, sec.id)
    assert not any("&amp;" in label or "&lt;" in label for label in labels(h, sec.id))


async def test_town_dashboard_branch_buttons_show_the_title_as_typed(h: TestHarness) -> None:
    b = await setup_branch(h, title=HOSTILE)
    t = await make_town(h)
    await joined(h, b, t)
    calls = await h.say(t.admin, h.private(t.admin), "/town")
    assert f"🔍 1. {HOSTILE}" in labels(h, t.admin.id)
    assert ESCAPED in sent_html(calls, t.admin.id)
