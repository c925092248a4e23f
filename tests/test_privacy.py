"""Personal data (phone, birth month and the other profile fields of the record sheet) is shown only to
the member and the secretary.

Where the profile fields appear at all (grep PROFILE_FIELDS / phone / birth_month): they are stored by
the roster upload (storage/members.py) and shown only in the record sheets of the year's forms
(bot/services/exports.py). /members lists number, name and state only; the ledger CSV and the summary
sheet carry no profile field. So: /export by the secretary fills the profile block; by the deputy or the
recorder it leaves the personal cells empty; and no other message of the bot carries them.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime

from openpyxl import load_workbook

from bot.services import Actor
from tests.conftest import said, setup_branch

JANUARY = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)
LATER = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)
PHONE, BIRTH, HEALTH = "13800000000", "1980-05", "慢性病"
ROSTER = ("姓名,性别,出生年月,民族,学历,入党时间,身体状况,联系电话,状态,原因\n"
          f"赵六,女,{BIRTH},回族,高中,2001-07,{HEALTH},{PHONE},,\n").encode("utf-8")
PERSONAL_VALUES = ("女", BIRTH, "回族", "高中", "2001-07", HEALTH, PHONE)


def me(user) -> Actor:
    return Actor(user_id=user.id, name=user.full_name, username=user.username)


def record_sheet(calls) -> bytes:
    files = {c.files["document"][0]: c.files["document"][1] for c in calls if c.method == "sendDocument"}
    names = [n for n in files if n.endswith(".xlsx") and "记录表" in n]
    assert names, list(files)
    return files[names[0]]


def profile_block(data: bytes, name: str) -> dict[str, object]:
    sheet = load_workbook(io.BytesIO(data))[name]
    cells = [sheet.cell(r, c).value for r in (3, 4) for c in range(2, 10)]
    return dict(zip(cells[0::2], cells[1::2]))


def everything_in(data: bytes) -> str:
    book = load_workbook(io.BytesIO(data))
    return "\n".join(str(c.value) for s in book.worksheets for row in s.iter_rows() for c in row if c.value is not None)


async def test_only_the_secretary_gets_the_profile_in_the_record_sheets(h, clock):
    clock.set(JANUARY)
    b = await setup_branch(h)
    await h.services.roster.import_roster(b.branch, me(b.secretary), ROSTER)
    await h.say(b.secretary, h.private(b.secretary), f"/role @{b.zhang.username} deputy")
    clock.set(LATER)

    calls = await h.say(b.secretary, h.private(b.secretary), "/export 2026")
    block = profile_block(record_sheet(calls), "赵六")
    assert block["联系电话"] == PHONE and block["出生年月"] == BIRTH and block["身体状况"] == HEALTH
    assert block["姓名"] == "赵六"

    for who in (b.zhang, b.recorder):  # the deputy, the recorder
        calls = await h.say(who, h.private(who), "/export 2026")
        data = record_sheet(calls)
        block = profile_block(data, "赵六")
        assert block["姓名"] == "赵六"  # the layout and the name stay
        assert "联系电话" in block and "出生年月" in block
        text = everything_in(data)
        for value in PERSONAL_VALUES[1:]:  # 女 may occur elsewhere in Chinese text; the rest must not
            assert value not in text, (who.full_name, value)
        assert block["性别"] in (None, "")
        # nor in the other files or messages
        for c in calls:
            if c.method == "sendDocument":
                name, content = c.files["document"][:2]
                if name.endswith(".csv"):
                    assert PHONE not in content.decode("utf-8-sig") and BIRTH not in content.decode("utf-8-sig")
        assert PHONE not in said(calls)

    # the documents made for the finalisation (sent to the secretary AND the recorders) are the safe kind
    docs = dict(await h.services.exports.year_documents(b.branch, 2026))
    record = next(v for k, v in docs.items() if "记录表" in k)
    assert PHONE not in everything_in(record) and BIRTH not in everything_in(record)
    docs = dict(await h.services.exports.year_documents(b.branch, 2026, personal=True))
    record = next(v for k, v in docs.items() if "记录表" in k)
    assert PHONE in everything_in(record)


async def test_no_message_of_the_bot_carries_personal_data(h, clock):
    """The roster upload, /members in the group and in private: names, never phone or birth month."""
    clock.set(JANUARY)
    b = await setup_branch(h)
    data = ROSTER
    calls = await h.send_document(b.secretary, h.private(b.secretary), "roster.csv", data)
    calls += await h.say(b.secretary, h.private(b.secretary), "/roster")
    calls += await h.send_document(b.secretary, h.private(b.secretary), "roster.csv", data)
    for who, chat in ((b.secretary, b.group), (b.zhang, b.group), (b.recorder, h.private(b.recorder)),
                      (b.zhang, h.private(b.zhang))):
        calls += await h.say(who, chat, "/members")
    assert "赵六" in said(h.world.calls)
    everything = said(h.world.calls)
    for value in (PHONE, BIRTH, HEALTH, "回族"):
        assert value not in everything
