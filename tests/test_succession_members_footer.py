"""/members' management hints go to whoever may use them (QA3 #8): the secretary sees /role, /state and
/remove; a deputy /state; a recorder or a plain member only the roster and what ⌀ means.

Through the real Application; /members is open to every member of the branch (the numbers /record,
/points MEMBER and the refusals point to)."""

from __future__ import annotations

from tests.conftest import said

SECRETARY_HINT = "设置角色：/role 编号 recorder；设置状态：/state 编号 probationary；移出（去世、出党等）：/remove 编号 原因"
DEPUTY_HINT = "设置状态：/state 编号 probationary"


async def test_members_footer_by_role(h, b):
    await h.say(b.secretary, b.group, f"/role {b.member_ids['lisi']} deputy")
    secretary = said(await h.say(b.secretary, b.group, "/members"))
    assert SECRETARY_HINT in secretary and "⌀ 表示该党员尚未在 Telegram 加入。" in secretary
    deputy = said(await h.say(b.lisi, h.private(b.lisi), "/members"))
    assert DEPUTY_HINT in deputy and "/role" not in deputy and "/remove" not in deputy
    for person in (b.zhang, b.recorder):
        text = said(await h.say(person, h.private(person), "/members"))
        assert "党员名册（4 人）" in text and "⌀ 表示该党员尚未在 Telegram 加入。" in text
        assert "/role" not in text and "/state" not in text and "/remove" not in text
