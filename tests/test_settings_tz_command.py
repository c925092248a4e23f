"""/timezone in the group matches a zone name whatever its case (QA3 #6): ``asia/shanghai`` is
Asia/Shanghai. Through the real Application; the stored branches.timezone is read back."""

from __future__ import annotations

import pytest

from tests.conftest import rows, said


async def stored_zone(h, b) -> str:
    return (await rows(h, "SELECT timezone FROM branches WHERE id = ?", b.branch.id))[0]["timezone"]


@pytest.mark.parametrize("typed, zone", [("asia/shanghai", "Asia/Shanghai"), ("ASIA/SHANGHAI", "Asia/Shanghai"),
                                         ("etc/gmt-8", "Etc/GMT-8"), ("utc", "UTC")])
async def test_timezone_command_matches_any_case(h, b, typed, zone):
    await h.say(b.secretary, b.group, "/timezone Europe/London")
    calls = await h.say(b.secretary, b.group, f"/timezone {typed}")
    assert f"时区已设为 {zone}。" in said(calls) and await stored_zone(h, b) == zone


async def test_timezone_command_still_refuses_what_is_no_zone(h, b):
    for typed in ("UTC+8", "beijing", "北京"):
        calls = await h.say(b.secretary, b.group, f"/timezone {typed}")
        assert f"无法识别时区“{typed}”" in said(calls)
    assert await stored_zone(h, b) == "Asia/Shanghai"
