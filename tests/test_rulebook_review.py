"""What a review of /rulebook found (each failed before its fix):
- 张店's democratic weights changed after a round had closed recomputed that round's ratings and its 不合格
  list (a member rated qualified turned 不合格 months later): refused once a round has closed;
- an older confirm button pressed after a newer change was confirmed put its value back over the newer
  one: a button carries the digest of the overrides it was worked out from and is refused if they changed;
- a meeting's absence charge withdrawn by an upheld objection was booked again at the new value after the
  item's value changed: the objection's decision was about the absence, not the amount."""

from __future__ import annotations

import json
from types import SimpleNamespace

from bot.domain.meetings import Attendance, BookedRow, MeetingKind, booking, reconcile
from bot.services.branches import rulebook_of
from tests.conftest import popups, rows, said, setup_branch
from tests.test_year_end_presets import new_branch, noon
from tests.test_zhangdian_halves_app import evaluate


def test_a_withdrawn_absence_charge_stays_withdrawn_after_a_value_change() -> None:
    before = rulebook_of(SimpleNamespace(preset="sanmenxia", custom_items="[]", rule_overrides="{}"))
    after = rulebook_of(SimpleNamespace(preset="sanmenxia", custom_items="[]", rule_overrides=json.dumps({"skip_org_life": "-4"})))
    kind = next(iter(MeetingKind))
    old = booking(before, kind, Attendance.ABSENT, migrant=False, migrant_absences_count=True)
    new = booking(after, kind, Attendance.ABSENT, migrant=False, migrant_absences_count=True)
    assert old is not None and new is not None and old.value != new.value
    settled = [BookedRow(id=1, status=old.status, item_code=old.item_code, event_code=old.event_code, value=old.value)]
    assert reconcile([], old, settled) == ([], None)
    assert reconcile([], new, settled) == ([], None)


async def test_an_older_confirm_does_not_undo_a_newer_change(h) -> None:
    b = await setup_branch(h, preset="jiancaoping")
    chat = h.private(b.secretary)
    await h.say(b.secretary, chat, "/rulebook base 85")
    old_message, old_data = h.find_button(b.secretary.id, "确认修改")
    await h.say(b.secretary, chat, "/rulebook base 90")
    new_message, new_data = h.find_button(b.secretary.id, "确认修改")
    await h.press(b.secretary, new_message, new_data)
    calls = await h.press(b.secretary, old_message, old_data)
    assert any("按钮已失效" in str(c.params.get("text", "")) for c in popups(calls)) or "按钮已失效" in said(calls, b.secretary.id)
    kept = json.loads((await rows(h, "SELECT rule_overrides FROM branches WHERE id = ?", b.branch.id))[0]["rule_overrides"])
    assert kept == {"base": "90"}


async def test_the_democratic_weights_stay_once_a_round_has_closed(h, clock) -> None:
    b = await new_branch(h, clock, "zhangdian", "张店区某局机关党支部")
    await h.say(b.secretary, b.group, f"/role @{b.lisi.username} deputy")
    clock.set(noon(2026, 7, 6))
    await evaluate(h, b, 1, {k: "80" for k in b.users} | {"zhang": "100"}, {k: "80" for k in b.users} | {"zhang": "50"},
                   {k: ("80", "80") for k in b.users} | {"zhang": ("50", "70")})
    before = await h.services.democratic.unqualified(b.branch.id, 2026, 1)
    clock.set(noon(2026, 9, 10))
    calls = await h.say(b.secretary, h.private(b.secretary), "/rulebook democratic_weights 0.05/0.4/0.4/0.15")
    assert "2026 年已有结束的民主评议" in said(calls, b.secretary.id)
    assert await h.services.democratic.unqualified(b.branch.id, 2026, 1) == before
    assert (await rows(h, "SELECT rule_overrides FROM branches WHERE id = ?", b.branch.id))[0]["rule_overrides"] in ("{}", "", None)
