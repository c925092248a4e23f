"""QA2 N8: the redemptions workbook's 积分 column holds numbers (was the text '3'), through /export."""

from __future__ import annotations

import io
from decimal import Decimal

from openpyxl import load_workbook

from tests.conftest import setup_branch
from tests.test_rewards import add_item, redeem


async def test_the_redemptions_sheet_has_number_costs(h, clock):
    b = await setup_branch(h, preset="jiancaoping")
    sec = h.private(b.secretary)
    await h.say(b.secretary, sec, "/rewards")
    await h.tap(b.secretary, sec.id, "开启积分兑换")
    await add_item(h, b, "毛巾", "3", None)
    await add_item(h, b, "茶壶", "2.5", None)
    for task in ("完成支部任务", "完成第二项支部任务"):  # +3 each: 6 to spend
        await h.say(b.recorder, h.private(b.recorder), f"/record 3 branch_tasks {task}")
    await redeem(h, b.zhang, "兑换：毛巾（3分）")
    await redeem(h, b.zhang, "兑换：茶壶（2.5分）")
    await h.say(b.secretary, sec, "/export 2026")
    found = [c.files["document"][1] for c in h.world.sent(b.secretary.id, "sendDocument")
             if "兑换" in c.files["document"][0]]
    assert len(found) == 1
    sheet = load_workbook(io.BytesIO(found[0])).worksheets[0]
    assert sheet.cell(2, 4).value == "积分"
    costs = {sheet.cell(r, 3).value: sheet.cell(r, 4) for r in range(3, sheet.max_row + 1)}
    assert set(costs) == {"毛巾", "茶壶"}
    assert costs["毛巾"].value == 3 and costs["毛巾"].data_type == "n" and costs["毛巾"].number_format == "0"
    assert Decimal(str(costs["茶壶"].value)) == Decimal("2.5") and costs["茶壶"].data_type == "n"
