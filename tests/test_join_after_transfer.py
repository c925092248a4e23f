"""/join back into a branch one was transferred out of, while still in the new branch, is refused with
the way back (a transfer from the new branch): it gave the person two branches at once and flipped which
branch grades the year (a reviewer's finding). After leaving the new branch, /join works as before."""

from __future__ import annotations

from tests.conftest import count, rows, said
from tests.test_transfers import branches, move, utc


async def test_join_back_while_still_in_the_new_branch_is_refused_with_the_way_back(h, clock) -> None:
    b1, b2 = await branches(h, clock)
    zhang_b2 = await move(h, clock, utc(2026, 3, 10, 2, 0), b1, b2, b1.zhang)
    clock.set(utc(2026, 10, 10, 2, 0))
    calls = await h.say(b1.zhang, b1.group, "/join")
    assert "您的组织关系已转到“兰溪镇青山村党支部”，目前仍在该支部" in said(calls, b1.group.id)
    assert await count(h, "members", "branch_id = ? AND user_id = ? AND status = 'pending'", b1.branch.id, b1.zhang.id) == 0
    # once they have left the new branch, coming back by /join is the ordinary return
    await h.say(b2.secretary, b2.group, f"/remove {zhang_b2} 外出务工")
    await h.tap(b2.secretary, b2.group.id, "确认移出")
    assert (await rows(h, "SELECT status FROM members WHERE id = ?", zhang_b2))[0]["status"] == "left"
    calls = await h.say(b1.zhang, b1.group, "/join")
    assert await count(h, "members", "branch_id = ? AND user_id = ? AND status = 'pending'", b1.branch.id, b1.zhang.id) == 1
