"""A branch's own items (自主设定项目) through /additem, validated with the whole rulebook."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.clock import FixedClock
from bot.harness import Harness, plain
from bot.services.branches import rulebook_of


async def test_secretary_adds_an_item_members_then_see_and_declare_it(tmp_path) -> None:
    async with Harness(tmp_path / "c.sqlite3", FixedClock(datetime(2026, 3, 20, 2, tzinfo=UTC))) as h:
        group = h.group(-100500, "东虎岭村党支部")
        secretary = h.user(1, "书记")
        member = h.user(2, "党员甲")
        h.world.set_admin(group.id, secretary.id)
        await h.say(secretary, group, "/setup")
        await h.tap(secretary, group.id, "三门峡")
        await h.say(member, group, "/join")
        await h.tap(secretary, group.id, "同意")

        calls = await h.say(member, group, "/additem contribution_poverty forsythia 15 种植连翘")
        assert "只有以下角色" in plain(calls[-1].params["text"])  # a plain member may not

        calls = await h.say(secretary, group, "/additem nosuch forsythia 15 种植连翘")
        assert "类别代码「nosuch」不对。可用的类别代码：" in plain(calls[-1].params["text"])
        calls = await h.say(secretary, group, "/additem Bad-Cat forsythia 15 种植连翘")  # pydantic's pattern: said in Chinese
        assert "类别代码「Bad-Cat」不对" in plain(calls[-1].params["text"])
        assert "String should match" not in plain(calls[-1].params["text"])
        calls = await h.say(secretary, group, "/additem bonus_custom x NaN 种植连翘")
        assert calls and "抱歉" not in plain(calls[-1].params["text"])

        branch = await h.services.branches.by_chat(group.id)
        category = next(c.code for c in __import__("bot.services.branches", fromlist=["x"]).rulebook_of(branch).categories)
        calls = await h.say(secretary, group, f"/additem {category} own_lotus 15 种植连翘50亩以上")
        assert "已增加" in plain(calls[-1].params["text"])
        calls = await h.say(secretary, group, f"/additem {category} Own-Lotus 5 大写代码")
        assert "事项代码「Own-Lotus」不对：只能用小写英文字母" in plain(calls[-1].params["text"])
        calls = await h.say(secretary, group, f"/additem {category} own_lotus 5 重复代码")
        assert "事项代码「own_lotus」已经有了" in plain(calls[-1].params["text"])  # duplicate code refused, nothing stored
        calls = await h.say(member, group, f"/additem {category} own_zero 0 零分项目")
        assert "只有以下角色" in plain(calls[-1].params["text"])  # authority is checked first
        for zero in ("0", "-0.00"):  # an item worth nothing is refused, and nothing is stored
            calls = await h.say(secretary, group, f"/additem {category} own_zero {zero} 零分项目")
            assert "分值「0」不行：自定项目的分值不能为 0" in plain(calls[-1].params["text"])
        assert rulebook_of(await h.services.branches.by_chat(group.id)).item("own_zero") is None
        calls = await h.say(secretary, group, f"/additem {category} gambling 5 预设里已有的代码")
        assert "事项代码「gambling」已经有了" in plain(calls[-1].params["text"])

        calls = await h.say(member, group, "/rules")
        assert any("种植连翘50亩以上" in plain(c.params.get("text", "")) for c in calls)
