"""The roster upload and a member's identity, through the real Application on the offline Telegram.

A branch's secretary has members /join first and uploads the roster CSV later (or the other way round,
or both, or twice): each person stays one member row. A name several members share is refused with
their numbers, in the upload and in /record and the other commands that take a name. /remove takes a
member who left the party organisation for good off the roster, after a confirm button.
"""

from __future__ import annotations

import pytest

from tests.conftest import card_message, count, declare, member_row, popups, rows, said

pytestmark = pytest.mark.asyncio


async def upload(h, b, content: str) -> str:
    chat = h.private(b.secretary)
    await h.say(b.secretary, chat, "/roster")
    return said(await h.send_document(b.secretary, chat, "roster.csv", content.encode()), chat.id)


async def approved_names(h, b) -> list[str]:
    return [r["name"] for r in await rows(h, "SELECT name FROM members WHERE branch_id = ? AND status = 'approved' ORDER BY id",
                                           b.branch.id)]


async def test_upload_after_join_updates_the_members_and_a_second_upload_changes_nothing(h, b):
    text = await upload(h, b, "姓名,性别,出生年月,联系电话\n王书记,男,1970-01,13800000001\n张三,男,1980-02,13800000003\n"
                              "赵六,女,1990-03,\n")
    assert "已导入 3 名党员：新增 1 人，更新 2 人，无变化 0 人。" in text
    assert "新增：赵六" in text and "更新：王书记、张三" in text
    assert await approved_names(h, b) == ["王书记", "李记录", "张三", "李四", "赵六"]
    zhang = await member_row(h, b.zhang.id)
    assert (zhang["id"], zhang["sex"], zhang["birth_month"], zhang["phone"]) == (b.member_ids["zhang"], "男", "1980-02", "13800000003")
    members = said(await h.say(b.secretary, b.group, "/members"), b.group.id)
    assert "（5 人）" in members and members.count("张三") == 1

    # the same file again: nobody added, nothing changed
    text = await upload(h, b, "姓名,性别,出生年月,联系电话\n王书记,男,1970-01,13800000001\n张三,男,1980-02,13800000003\n"
                              "赵六,女,1990-03,\n")
    assert "已导入 3 名党员：新增 0 人，更新 0 人，无变化 3 人。" in text and "新增：" not in text
    assert await count(h, "members", "branch_id = ?", b.branch.id) == 5

    # an updated file: a new phone, a state; an empty cell or a missing column keeps what is stored
    text = await upload(h, b, "姓名,性别,联系电话,状态\n张三,,13900000003,\n赵六,,,\n李四,,,预备\n")
    assert "新增 0 人，更新 2 人，无变化 1 人" in text and "更新：张三、李四" in text
    zhang = await member_row(h, b.zhang.id)
    assert (zhang["sex"], zhang["birth_month"], zhang["phone"], zhang["state"]) == ("男", "1980-02", "13900000003", "active")
    zhao = (await rows(h, "SELECT * FROM members WHERE name = '赵六'"))
    assert len(zhao) == 1 and (zhao[0]["sex"], zhao[0]["birth_month"], zhao[0]["user_id"]) == ("女", "1990-03", None)
    assert (await member_row(h, b.lisi.id))["state"] == "probationary"
    # an exempt state with its reason, then a file without a state column: the state and reason stay
    await upload(h, b, "姓名,状态,原因\n李四,不纳入积分管理,年老体弱\n")
    await upload(h, b, "姓名,联系电话\n李四,13700000004\n")
    lisi = await member_row(h, b.lisi.id)
    assert (lisi["state"], lisi["state_reason"], lisi["phone"]) == ("exempt", "年老体弱", "13700000004")
    assert await count(h, "members", "branch_id = ?", b.branch.id) == 5


async def test_upload_then_join_and_join_then_upload_give_one_person(h, b):
    await upload(h, b, "姓名,联系电话\n赵六,13800000006\n")
    zhao = h.user(1006, "赵六")
    await h.say(zhao, b.group, "/join")
    await h.tap(b.secretary, b.group.id, "同意")
    found = await rows(h, "SELECT * FROM members WHERE name = '赵六'")
    assert len(found) == 1 and found[0]["user_id"] == zhao.id and found[0]["phone"] == "13800000006"
    text = await upload(h, b, "姓名,联系电话\n赵六,13900000006\n")
    assert "新增 0 人，更新 1 人" in text
    found = await rows(h, "SELECT * FROM members WHERE name = '赵六'")
    assert len(found) == 1 and found[0]["user_id"] == zhao.id and found[0]["phone"] == "13900000006"

    # a /join still waiting for the secretary when the roster arrives: the approval claims the roster row
    qian = h.user(1007, "钱七")
    await h.say(qian, b.group, "/join")
    text = await upload(h, b, "姓名,性别\n钱七,男\n")
    assert "新增 1 人" in text
    await h.tap(b.secretary, b.group.id, "同意")
    found = await rows(h, "SELECT * FROM members WHERE name = '钱七'")
    assert len(found) == 1 and (found[0]["user_id"], found[0]["status"], found[0]["sex"]) == (qian.id, "approved", "男")


async def test_a_name_twice_in_the_file_refuses_the_whole_file(h, b):
    text = await upload(h, b, "姓名,联系电话\n赵六,1\n钱七,2\n赵六,3\n")
    assert "第 2、4 行的姓名都是“赵六”" in text and "未保存任何内容" in text
    assert await count(h, "members", "name IN ('赵六', '钱七')") == 0
    # still waiting for a file: a corrected one is taken
    chat = h.private(b.secretary)
    text = said(await h.send_document(b.secretary, chat, "roster.csv", "姓名,联系电话\n赵六,1\n钱七,2\n".encode()), chat.id)
    assert "新增 2 人" in text
    # one number on two rows, and one member named by number on one row and by name on another
    text = await upload(h, b, f"编号,姓名\n{b.member_ids['lisi']},李四\n#{b.member_ids['lisi']},李四\n")
    assert f"第 2、3 行的编号都是 #{b.member_ids['lisi']}" in text
    text = await upload(h, b, f"编号,姓名,联系电话\n{b.member_ids['lisi']},李四,1\n,李四,2\n")
    assert f"第 2、3 行都是 #{b.member_ids['lisi']} 李四" in text
    assert (await member_row(h, b.lisi.id))["phone"] is None


async def test_a_name_several_members_share_is_refused_with_their_numbers(h, b):
    other = h.user(1008, "张三")  # a second 张三 joins: a different person, the same name
    await h.say(other, b.group, "/join")
    await h.tap(b.secretary, b.group.id, "同意")
    first, second = b.member_ids["zhang"], (await member_row(h, other.id))["id"]
    assert first != second

    text = await upload(h, b, "姓名,联系电话\n赵六,1\n张三,13800000003\n")
    assert f"第 3 行“张三”对应本支部多位党员（#{first} / #{second}）" in text and "未保存任何内容" in text
    assert await count(h, "members", "name = '赵六'") == 0 and await count(h, "members", "phone IS NOT NULL") == 0
    # the 编号 column says which
    text = await upload(h, b, f"编号,姓名,联系电话\n{first},张三,13800000003\n#{second},张三,13800000008\n,赵六,1\n")
    assert "新增 1 人，更新 2 人" in text
    assert (await member_row(h, b.zhang.id))["phone"] == "13800000003" and (await member_row(h, other.id))["phone"] == "13800000008"
    # a number that is not this name, or nobody's
    text = await upload(h, b, f"编号,姓名\n{b.member_ids['lisi']},张三\n999999,钱七\nx1,孙八\n")
    assert "第 4 行的编号“x1”无法识别" in text
    text = await upload(h, b, f"编号,姓名\n{b.member_ids['lisi']},张三\n999999,钱七\n")
    assert f"第 2 行：#{b.member_ids['lisi']} 是“李四”，不是“张三”" in text and "第 3 行：本支部没有编号为 #999999 的党员" in text

    # /record by the shared name: ambiguous, not "not found"; by number it works
    recorder = h.private(b.recorder)
    text = said(await h.say(b.recorder, recorder, "/record 张三 study absent 缺席"), recorder.id)
    assert "“张三”对应多位党员" in text and f"#{first}" in text and f"#{second}" in text and "找不到" not in text
    assert await count(h, "ledger") == 0
    text = said(await h.say(b.recorder, recorder, f"/record #{second} study absent 缺席"), recorder.id)
    assert "已为 张三 记录" in text
    assert [r["member_id"] for r in await rows(h, "SELECT member_id FROM ledger")] == [second]
    text = said(await h.say(b.secretary, b.group, "/state 张三 probationary"), b.group.id)
    assert "对应多位党员" in text


async def test_remove_a_member_after_confirming(h, b):
    lisi = b.member_ids["lisi"]
    await h.say(b.secretary, b.group, "/role @lisi_1000 supervisor")
    recorder = h.private(b.recorder)
    await h.say(b.recorder, recorder, "/record 李四 study absent 缺席")
    ledger_before = await rows(h, "SELECT * FROM ledger ORDER BY id")
    assert len(ledger_before) == 1

    assert "用法：/remove 编号 原因" in said(await h.say(b.secretary, b.group, "/remove 李四"), b.group.id)
    assert "只有以下角色可以这样做" in said(await h.say(b.zhang, b.group, "/remove 李四 去世"), b.group.id)
    assert "只有以下角色可以这样做" in said(await h.say(b.recorder, b.group, f"/remove {lisi} 去世"), b.group.id)
    text = said(await h.say(b.secretary, b.group, f"/remove {b.member_ids['secretary']} 调离"), b.group.id)
    assert "唯一的书记，不能移出" in text

    text = said(await h.say(b.secretary, b.group, f"/remove {lisi} 因病去世"), b.group.id)
    assert f"确认将 #{lisi} 李四 移出本支部？" in text and "原因：因病去世" in text
    assert "作废" not in text  # something is recorded for 李四: leaving, not a mistake
    message, data = h.find_button(b.group.id, "确认移出")
    assert len(data.encode()) <= 64
    # a member pressing the secretary's button changes nothing
    calls = await h.press(b.zhang, message, data)
    assert "只有以下角色可以这样做" in popups(calls)[0].params["text"]
    assert (await member_row(h, b.lisi.id))["status"] == "approved"

    press = h.world.press(b.secretary, message, data)
    calls = await h.feed(press)
    assert popups(calls)[0].params["text"] == "已移出 李四。"
    edited = said(calls, b.group.id)
    assert f"已将 #{lisi} 李四 移出本支部（2026-03-20 起；原因：因病去世）" in edited and "已取消其角色：积分监督员" in edited
    row = await member_row(h, b.lisi.id)
    assert (row["status"], row["left_on"] if isinstance(row["left_on"], str) else row["left_on"].isoformat()) == ("left", "2026-03-20")
    assert await count(h, "roles", "member_id = ?", lisi) == 0
    assert await rows(h, "SELECT * FROM ledger ORDER BY id") == ledger_before
    assert "您已被移出 兰溪镇红星村党支部（原因：因病去世）" in said(h.world.sent(b.lisi.id), b.lisi.id)
    # the reason is kept with the record, with who removed and when
    kept = await rows(h, "SELECT * FROM member_removals")
    assert [(r["member_id"], r["removed_by"], r["reason"], r["voided"]) for r in kept] == [
        (lisi, b.member_ids["secretary"], "因病去世", 0)]
    # repeat-safe: the same press again changes nothing and says so
    calls = await h.feed(press)
    assert "已经按过了，同一操作不会做两次" in popups(calls)[0].params["text"]
    assert await count(h, "members", "user_id = ?", b.lisi.id) == 1
    assert await count(h, "member_removals") == 1

    members = said(await h.say(b.secretary, b.group, "/members"), b.group.id)
    assert "李四" not in members and "（3 人）" in members
    assert "找不到党员“李四”" in said(await h.say(b.recorder, recorder, "/record 李四 study absent 缺席"), recorder.id)
    assert "您还没有加入任何支部" in said(await h.say(b.lisi, h.private(b.lisi), "/points"), b.lisi.id)
    # an old roster file naming them does not add them back
    text = await upload(h, b, "姓名,联系电话\n李四,1\n赵六,2\n")
    assert f"第 2 行“李四”未添加：同名党员 #{lisi} 已离开本支部" in text and "新增 1 人" in text
    assert await count(h, "members", "name = '李四'") == 1

    # a removal made by mistake: they /join again and the secretary approves; the same row comes back
    await h.say(b.lisi, b.group, "/join")
    await h.tap(b.secretary, b.group.id, "同意")
    row = await member_row(h, b.lisi.id)
    assert (row["id"], row["status"], row["left_on"]) == (lisi, "approved", None)


async def test_remove_cancelled_or_by_name(h, b):
    text = said(await h.say(b.secretary, b.group, "/remove 张三 出党"), b.group.id)
    assert f"#{b.member_ids['zhang']} 张三" in text
    message, data = h.find_button(b.group.id, "不移出")
    calls = await h.press(b.zhang, message, data)  # only a secretary may cancel it
    assert "只有以下角色可以这样做" in popups(calls)[0].params["text"]
    calls = await h.press(b.secretary, message, data)
    assert "已取消，未移出任何人。" in said(calls, b.group.id) and popups(calls)
    assert (await member_row(h, b.zhang.id))["status"] == "approved"
    # a confirm button the bot no longer knows (it restarted): refused, nothing removed
    calls = await h.press(b.secretary, message, f"mr:ok:{b.member_ids['zhang']}")
    assert "已失效" in popups(calls)[0].params["text"]
    assert (await member_row(h, b.zhang.id))["status"] == "approved"


async def test_a_heading_without_rows_and_the_replies_in_english(h, b):
    assert "文件是空的" in await upload(h, b, "姓名,联系电话\n\n,\n")
    alice = h.user(1009, "Alice", username="alice", language="en")
    await h.say(alice, b.group, "/join")
    await h.tap(b.secretary, b.group.id, "同意")
    await h.say(b.secretary, b.group, "/role @alice secretary")
    chat = h.private(alice)
    await h.say(alice, chat, "/start")
    await h.say(alice, chat, "/roster")
    text = said(await h.send_document(alice, chat, "roster.csv", "name,phone\nAlice,1\nBob,2\nBob,3\n".encode()), chat.id)
    assert "Rows 3, 4 all have the name “Bob”" in text and "nothing was saved" in text
    text = said(await h.send_document(alice, chat, "roster.csv", "name,phone\nAlice,1\nBob,2\n".encode()), chat.id)
    assert "Roster imported (2 members): 1 added, 1 updated, 0 unchanged." in text and "Added: Bob" in text
    other = h.user(1010, "Bob")  # a second Bob joins: the roster row is claimed, so the third one is new
    await h.say(other, b.group, "/join")
    await h.tap(b.secretary, b.group.id, "同意")
    third = h.user(1011, "Bob")
    await h.say(third, b.group, "/join")
    await h.tap(b.secretary, b.group.id, "同意")
    bobs = [r["id"] for r in await rows(h, "SELECT id FROM members WHERE name = 'Bob' ORDER BY id")]
    assert len(bobs) == 2
    text = said(await h.say(alice, chat, "/state Bob probationary"), chat.id)
    assert f"“Bob” matches several members (#{bobs[0]} / #{bobs[1]}; ⌀: not on Telegram yet)" in text


async def test_a_phantom_left_by_the_old_upload_is_voided_and_the_roster_then_applies(h, b, clock):
    from schedules import engine
    from storage import members as member_repo
    from datetime import datetime
    from zoneinfo import ZoneInfo

    async with h.db.transaction() as conn:  # what an upload before this fix left behind: a second, unlinked 张三
        phantom = (await member_repo.add_approved(conn, branch_id=b.branch.id, name="张三", joined_on="2026-03-20")).id
    zhang = b.member_ids["zhang"]
    text = await upload(h, b, "姓名,联系电话\n张三,13800000003\n")
    assert f"“张三”对应本支部多位党员（#{zhang} / #{phantom} ⌀）" in text and "/remove" in text

    text = said(await h.say(b.secretary, b.group, f"/remove {phantom} 重复导入"), b.group.id)
    assert "作废" in text
    message, data = h.find_button(b.group.id, "作废")
    assert data.startswith("mr:void:")
    calls = await h.press(b.zhang, message, data)
    assert "只有以下角色可以这样做" in popups(calls)[0].params["text"]
    calls = await h.press(b.secretary, message, data)
    assert f"已作废 #{phantom} 张三（误加入；原因：重复导入）" in said(calls, b.group.id)
    assert (await rows(h, "SELECT status FROM members WHERE id = ?", phantom))[0]["status"] == "rejected"
    calls = await h.press(b.secretary, message, data)
    assert "已经按过了" in popups(calls)[0].params["text"]
    assert [(r["member_id"], r["reason"], r["voided"]) for r in await rows(h, "SELECT * FROM member_removals")] == [
        (phantom, "重复导入", 1)]

    text = await upload(h, b, "姓名,联系电话\n张三,13800000003\n")
    assert "更新 1 人" in text and (await member_row(h, b.zhang.id))["phone"] == "13800000003"
    assert "张三" in said(await h.say(b.recorder, h.private(b.recorder), "/record 张三 study absent 缺席"), b.recorder.id)
    assert [r["member_id"] for r in await rows(h, "SELECT member_id FROM ledger")] == [zhang]
    # the voided row counts nowhere: the March notice lists the four members once each
    clock.set(datetime(2026, 4, 1, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai")))
    await engine.tick(h.app, clock.now())
    notice = "\n".join(m.text or "" for m in h.world.messages(b.group.id) if "积分公示" in (m.text or ""))
    assert notice.count("张三：") == 1 and "共 4 名党员" in notice


async def test_void_an_approval_made_by_mistake_and_not_once_something_is_recorded(h, b):
    stranger = h.user(1012, "路人甲")
    await h.say(stranger, b.group, "/join")
    await h.tap(b.secretary, b.group.id, "同意")
    number = (await member_row(h, stranger.id))["id"]
    await h.say(b.secretary, b.group, f"/remove {number} 误批准")
    message, data = h.find_button(b.group.id, "作废")
    # something is recorded for them between the question and the press: voiding is refused, nothing changes
    await h.say(b.recorder, h.private(b.recorder), f"/record {number} study absent 缺席")
    calls = await h.press(b.secretary, message, data)
    assert "已有申报或积分记录，不能作废" in popups(calls)[0].params["text"]
    assert (await member_row(h, stranger.id))["status"] == "approved"

    other = h.user(1013, "路人乙")
    await h.say(other, b.group, "/join")
    await h.tap(b.secretary, b.group.id, "同意")
    await h.say(b.secretary, b.group, f"/remove {(await member_row(h, other.id))['id']} 误批准")
    message, data = h.find_button(b.group.id, "作废")
    calls = await h.press(b.secretary, message, data)
    assert "已作废" in said(calls, b.group.id)
    assert "书记已撤销您加入 兰溪镇红星村党支部 的批准（原因：误批准）" in said(h.world.sent(other.id), other.id)
    assert (await member_row(h, other.id))["status"] == "rejected"
    # as a refused request: they may ask again, and the secretary decides again
    await h.say(other, b.group, "/join")
    await h.tap(b.secretary, b.group.id, "不同意")
    assert (await member_row(h, other.id))["status"] == "rejected"


async def test_removing_a_member_withdraws_their_declarations_still_waiting(h, b):
    """Approved after the removal, a waiting declaration wrote points for someone no notice lists any more
    (QA2 N1): the removal withdraws it in its transaction, and the recorder's card then refuses."""
    waiting = await declare(h, b.lisi)
    decided = await declare(h, b.lisi, item="为民办一件实事")
    await h.press(b.recorder, card_message(h, b.recorder.id, decided), f"dc:ok:{decided}")
    lisi = b.member_ids["lisi"]
    await h.say(b.secretary, b.group, f"/remove {lisi} 出党")
    message, data = h.find_button(b.group.id, "确认移出")
    calls = await h.press(b.secretary, message, data)
    assert f"其待审核的申报 #{waiting} 已一并撤回。" in said(calls, b.group.id)
    statuses = {r["id"]: r["status"] for r in await rows(h, "SELECT id, status FROM declarations")}
    assert statuses == {waiting: "withdrawn", decided: "approved"}
    calls = await h.press(b.recorder, card_message(h, b.recorder.id, waiting), f"dc:ok:{waiting}")
    assert "这条申报已经处理过了" in popups(calls)[0].params["text"]
    assert await count(h, "ledger", "reference = ?", f"decl:{waiting}") == 0
    assert await count(h, "ledger", "reference = ?", f"decl:{decided}") == 1


async def test_a_declaration_submitted_as_the_member_is_removed_is_refused(h, b, monkeypatch):
    """/remove between submit's membership check and its write (the lock is FIFO): the write re-checks,
    under the lock, so no waiting declaration appears after the removal withdrew the others."""
    from datetime import date

    from bot.errors import NotAuthorized
    from bot.services.declarations import Draft
    from handlers.common import actor as as_actor

    service = h.services.declarations
    stale = await service.declarant(b.branch, as_actor(b.lisi))  # checked: still a member
    await h.say(b.secretary, b.group, f"/remove {b.member_ids['lisi']} 出党")
    message, data = h.find_button(b.group.id, "确认移出")
    await h.press(b.secretary, message, data)

    async def checked_before_the_removal(branch, actor):
        return stale

    monkeypatch.setattr(service, "declarant", checked_before_the_removal)
    draft = Draft(item_code="post_deed", occurred_on=date(2026, 3, 20), place="村里", description="帮忙")
    with pytest.raises(NotAuthorized):
        await service.submit(b.branch, as_actor(b.lisi), draft, client_key="race")
    assert await count(h, "declarations") == 0
