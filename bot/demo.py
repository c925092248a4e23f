"""`python -m bot demo`: a month of a branch, offline, through the real handlers.

No token, no network: the Application talks to bot.offline.OfflineTelegram, and time is a FixedClock
moved forward by the script, with the calendar's scheduled work run by ``schedules.engine.tick`` as the
live bot's minute job would. The script is a branch's first month: set-up, joins, roles, declarations,
approvals, a rejection; a theme party day with attendance, leave, reminders, check-in and the roll call;
the month's dues; the monthly assessment; on 1 April the month close, the public notice and the members'
confirmations; an objection that withdraws an entry; and everyone's /points. It prints the conversation
and ends with the resulting scores, computed again from the ledger.
"""

from __future__ import annotations

import asyncio
import re
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import telegram

from bot.clock import FixedClock
from bot.domain.scoring import month_score, publish
from bot.harness import Harness, plain
from bot.services.branches import Actor, rulebook_of
from bot.services.posts import member_posts
from schedules import engine
from storage import ledger as ledger_repo

SHANGHAI = ZoneInfo("Asia/Shanghai")
DEMO_MOMENT = datetime(2026, 3, 20, 2, 0, tzinfo=UTC)  # 10:00 in Asia/Shanghai


def local(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    """A moment in 2026, given as the branch's wall-clock time (Asia/Shanghai)."""
    return datetime(2026, month, day, hour, minute, tzinfo=SHANGHAI).astimezone(UTC)


def _echo(line: str) -> None:
    print(line, flush=True)


async def run_demo(db_path: Path, echo=_echo) -> dict[str, dict[str, str]]:
    """Run the scripted month; returns {member name: {"march": March score, "year": year so far}},
    as published (rounded to the rulebook's places), as of 1 April."""
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

        async def at(moment: datetime) -> None:
            """Move the clock, then run the calendar's scheduled work as the bot's minute job does."""
            clock.set(moment)
            when = moment.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")
            echo(f"\n   ⏱ {when} (Asia/Shanghai): the bot's minute tick runs what is due")
            before = len(h.world.calls)
            await engine.tick(h.app, clock.now())
            for call in h.world.calls[before:]:  # scheduled work is not an update: print what it sent
                h.print_call(call)

        async def tap_exact(user: telegram.User, label: str) -> None:
            """Tap the button whose text is exactly ``label`` in the user's private chat (values like 1 and 16)."""
            for message in reversed(h.world.messages(user.id)):
                for text, data in h.world.buttons(message):
                    if text == label:
                        echo(f"[private {user.full_name}] {user.full_name} taps [{label}]")
                        await h.press(user, message, data)
                        return
            raise LookupError(f"no button '{label}' for {user.full_name}")

        async def mark(user: telegram.User, name: str, status: str) -> None:
            """On the newest roll call in the user's private chat, tap ``status`` in ``name``'s row."""
            for message in reversed(h.world.messages(user.id)):
                row_of = None
                for text, data in h.world.buttons(message):
                    if data == "mt:n":
                        row_of = text
                    elif row_of == name and data.startswith("mt:m:") and text.lstrip("●") == status:
                        echo(f"[private {user.full_name}] {user.full_name} taps [{name} · {status}]")
                        await h.press(user, message, data)
                        return
            raise LookupError(f"no roll call row for {name}")

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

        async def declare(person, category: str, item: str, place: str, text: str, photo: bool = False,
                          day: str = "今天") -> None:
            chat = h.private(person)
            await h.say(person, group, "/declare")
            await h.say(person, chat, "/declare")
            await h.tap(person, chat.id, category)
            await h.tap(person, chat.id, item)
            await h.tap(person, chat.id, day if person.language_code != "en" else "Today")
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
        echo("\n   (张三 declares a second practical thing; the recorder approves it — it comes back at the notice)")
        await declare(zhang, "志愿服务岗位", "为民办一件实事", "村里的巷道", "清扫了村里的巷道，清走了堆积的垃圾。", day="昨天")
        await h.tap(recorder, recorder.id, "通过")

        echo("\n══ 4. The secretary schedules the theme party day; members answer ══")
        await h.say(secretary, group, "/meeting")
        await h.tap(secretary, group.id, "主题党日")
        await h.say(secretary, group, "2026-03-25 15:00")
        await h.say(secretary, group, "村委会会议室")
        await h.say(secretary, group, "重温入党誓词，学习新修订的《中国共产党纪律处分条例》")
        await h.tap(secretary, group.id, "发布")
        await h.tap(zhang, group.id, "参加")
        await h.tap(lisi, group.id, "请假")
        await h.say(lisi, h.private(lisi), "在县医院陪护住院的母亲，无法参加。")
        await h.tap(secretary, secretary.id, "准假")

        echo("\n══ 5. The recorder's entries for the month: dues and a study absence ══")
        await h.say(recorder, h.private(recorder), "/dues")
        await h.tap(recorder, recorder.id, "张三")
        await h.tap(recorder, recorder.id, "逾期缴纳")
        await h.tap(recorder, recorder.id, "其余全部按时足额")
        await h.tap(recorder, recorder.id, "确认标记")
        echo("   (the recorder's own dues are recorded by the secretary)")
        await h.say(secretary, h.private(secretary), "/dues @li_jilu paid")
        await h.say(recorder, h.private(recorder), "/record @zhangsan study absent 3-5 集中学习无故缺席")
        await h.say(recorder, h.private(recorder), "/pending")

        echo("\n══ 6. The theme party day: reminder, check-in, roll call, close ══")
        await at(local(3, 24, 15, 0))  # a day before: the reminder
        await at(local(3, 25, 14, 35))  # the check-in opens half an hour before
        for person in (zhang, zhao, recorder):
            await h.tap(person, group.id, "签到")
        await at(local(3, 25, 15, 35))  # the check-in has closed: the recorder is asked for the roll call
        await h.tap(recorder, recorder.id, "点名")
        echo("   (王书记 chaired the meeting without checking in: the recorder marks him present)")
        await mark(recorder, "王书记", "出席")
        await h.tap(recorder, recorder.id, "结束会议并记分")

        echo("\n══ 7. The monthly assessment: everyone good, then one exception ══")
        await h.say(recorder, h.private(recorder), "/assess 3月")
        await h.tap(recorder, recorder.id, "其余全部记为")
        await tap_exact(recorder, "确定")
        await h.say(recorder, h.private(recorder), "/assess 3月")
        await h.tap(recorder, recorder.id, "Zhao Wu")
        await h.tap(recorder, recorder.id, "爱岗敬业")
        await tap_exact(recorder, "16")
        echo("   (the recorder's own assessment is the secretary's; nobody gives it, so the default applies at the notice)")

        echo("\n══ 8. 1 April: the month closes, the public notice, confirmations ══")
        await at(local(4, 1, 9, 0))
        await h.tap(zhang, zhang.id, "确认无误")

        echo("\n══ 9. An objection: 李四 says the lanes were not swept ══")
        branch = await h.services.branches.by_chat(group.id)
        notice = next(plain(m.text or "") for m in reversed(h.world.messages(group.id)) if "党员积分公示" in (m.text or ""))
        lanes = re.search(r"#(\d+) 03-19 为民办一件实事", notice).group(1)  # the entry's number, as 李四 reads it
        await h.say(lisi, h.private(lisi), f"/object {lanes} 他只扫了自家和亲戚家门口，村里的巷道没有扫")
        await h.tap(secretary, secretary.id, "撤销该分")

        echo("\n══ 10. Everyone asks for their points ══")
        for person in (zhang, lisi, zhao, recorder):
            await h.say(person, h.private(person), "/points")
        await h.say(zhang, h.private(zhang), "/history")

        echo("\n══ Scores from the ledger as of 1 April (浠水: March's monthly score; year so far = mean of the months")
        echo("   that have ended (March; April joins when it ends) + bonus ≤ 10) ══")
        rulebook = rulebook_of(branch)
        places = rulebook.settings.rounding_places
        results: dict[str, dict[str, str]] = {}
        members = await h.services.roster.listing(branch, Actor(user_id=secretary.id, name=secretary.full_name))
        for member, _roles in members:
            standing = await h.services.points.standing(branch, member)
            async with h.db.read() as conn:
                rows = await ledger_repo.of_member(conn, member.id, 2026)
                posts = await member_posts(conn, rulebook, member.id)
            march = publish(month_score(rulebook, [r.entry() for r in rows], 2026, 3, posts=posts).total, places)
            stars = "★" * standing.band.stars if standing.band else ""
            label = standing.band.label.zh if standing.band else ""
            figure = publish(standing.year.figure, places)
            results[member.name] = {"march": str(march), "year": str(figure)}
            echo(f"  {member.name:<10} March {march:>6}   year {figure:>6}   {label} {stars}")
        return results


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="branch-demo-") as tmp:
        asyncio.run(run_demo(Path(tmp) / "demo.sqlite3"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
