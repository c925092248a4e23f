"""`python -m bot demo`: a month of a branch, offline, through the real handlers.

No token, no network: the Application talks to bot.offline.OfflineTelegram. The script is what a
branch does in its first month: set-up, joins, roles, declarations, approvals, an adjustment, a
rejection, the recorder's deductions, and everyone's /points. It prints the conversation and ends
with the resulting scores, computed again from the ledger.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from bot.clock import FixedClock
from bot.harness import Harness
from bot.services.branches import Actor, rulebook_of
from bot.domain.scoring import publish

DEMO_MOMENT = datetime(2026, 3, 20, 2, 0, tzinfo=UTC)  # 10:00 in Asia/Shanghai


def _echo(line: str) -> None:
    print(line, flush=True)


async def run_demo(db_path: Path, echo=_echo) -> dict[str, str]:
    """Run the scripted month; returns {member name: published year figure}."""
    clock = FixedClock(DEMO_MOMENT)
    async with Harness(db_path, clock, echo=echo) as h:
        group = h.group(-1001000000001, "兰溪镇红星村党支部")
        secretary = h.user(1001, "王书记", username="wang_shuji")
        recorder = h.user(1002, "李记录", username="li_jilu")
        zhang = h.user(1003, "张三", username="zhangsan")
        lisi = h.user(1004, "李四")
        zhao = h.user(1005, "Zhao Wu", username="zhaowu", language="en")
        h.world.set_admin(group.id, secretary.id)
        people = (recorder, zhang, lisi, zhao)

        echo("══ 1. The bot joins the group; the secretary sets the branch up ══")
        await h.feed(h.world.bot_added(group, secretary))
        await h.say(secretary, group, "/setup")
        await h.tap(secretary, group.id, "浠水")

        echo("\n══ 2. Members join; the secretary approves; roles ══")
        for person in people:
            await h.say(person, group, "/join")
            await h.tap(secretary, group.id, "同意")
        await h.say(secretary, group, "/members")
        await h.say(secretary, group, "/role @li_jilu recorder")

        echo("\n══ 3. Declarations in private, decided by the recorder ══")
        for person in (secretary, *people):  # everyone opens a private chat with the bot
            await h.say(person, h.private(person), "/start")

        async def declare(person, category: str, item: str, place: str, text: str, photo: bool = False) -> None:
            chat = h.private(person)
            await h.say(person, group, "/declare")
            await h.say(person, chat, "/declare")
            await h.tap(person, chat.id, category)
            await h.tap(person, chat.id, item)
            await h.tap(person, chat.id, "今天" if person.language_code != "en" else "Today")
            await h.say(person, chat, place)
            await h.say(person, chat, text)
            if photo:
                await h.send_photo(person, chat)
            else:
                await h.tap(person, chat.id, "无照片" if person.language_code != "en" else "No photo")
            await h.tap(person, chat.id, "提交" if person.language_code != "en" else "Submit")

        await declare(zhang, "志愿服务岗位", "为民办一件实事", "村东头刘大爷家", "帮行动不便的刘大爷打扫院子、修好漏水的水管。", photo=True)
        await h.tap(recorder, recorder.id, "通过")
        await declare(lisi, "加分项", "受县级表彰", "县委党校", "获评县级“优秀志愿者”。")
        await h.tap(recorder, recorder.id, "不通过")
        await h.say(recorder, h.private(recorder), "表彰文件尚未下发，请收到文件后重新申报。")
        await declare(zhao, "Volunteer posts", "One practical thing", "Village square", "Taught five elderly villagers to pay the electricity bill on their phones.")
        message, data = h.find_button(recorder.id, "通过")
        await h.tap(recorder, recorder.id, "通过")
        echo("   (a second tap on the same button changes nothing)")
        echo(f"[private {recorder.full_name}] {recorder.full_name} taps the old button again")
        await h.press(recorder, message, data)
        echo("\n   (the recorder's own deed goes to the secretary)")
        await declare(recorder, "加分项", "参与“七一”“十一”系列活动", "村委会", "组织“七一”重温入党誓词活动。")
        await h.tap(secretary, secretary.id, "通过")

        echo("\n══ 4. The recorder's entries for the month: attendance and dues ══")
        await h.say(recorder, h.private(recorder), "/record @zhangsan study absent 3-5 集中学习无故缺席")
        await h.say(recorder, h.private(recorder), "/record @zhangsan dues late 3月党费逾期缴纳")
        await h.say(recorder, h.private(recorder), "/record 4 org_life leave 3月主题党日请假")
        await h.say(recorder, h.private(recorder), "/record 5 post_duty 8 治安巡逻岗本月巡逻3次")
        await h.say(recorder, h.private(recorder), "/pending")

        echo("\n══ 5. Everyone asks for their points ══")
        for person in (zhang, lisi, zhao, recorder):
            await h.say(person, h.private(person), "/points")
        await h.say(zhang, h.private(zhang), "/history")

        echo("\n══ Scores from the ledger (year so far, 浠水: mean of monthly scores + bonus ≤ 10) ══")
        branch = await h.services.branches.by_chat(group.id)
        rulebook = rulebook_of(branch)
        results: dict[str, str] = {}
        members = await h.services.roster.listing(branch, Actor(user_id=secretary.id, name=secretary.full_name))
        for member, _roles in members:
            standing = await h.services.points.standing(branch, member)
            stars = "★" * standing.band.stars if standing.band else ""
            label = standing.band.label.zh if standing.band else ""
            figure = publish(standing.year.figure, rulebook.settings.rounding_places)
            results[member.name] = str(figure)
            echo(f"  {member.name:<10} month {standing.month.total:>5}   year {figure:>6}   {label} {stars}")
        return results


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="branch-demo-") as tmp:
        asyncio.run(run_demo(Path(tmp) / "demo.sqlite3"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
