"""The branch's time zone in /settings (QA3 #6): listed first, changed by /settings timezone X as by
/timezone X, and a zone name matched whatever its case (``asia/shanghai`` is Asia/Shanghai).

Through the real Application; the stored branches.timezone is read back."""

from __future__ import annotations

import pytest

from bot.domain.timezones import canonical_timezone
from tests.conftest import rows, said


async def stored_zone(h, b) -> str:
    return (await rows(h, "SELECT timezone FROM branches WHERE id = ?", b.branch.id))[0]["timezone"]


async def test_settings_lists_the_time_zone_first(h, b):
    calls = await h.say(b.secretary, h.private(b.secretary), "/settings")
    lines = said(calls).splitlines()
    assert lines[1].startswith("· timezone = Asia/Shanghai　时区：以下各项的日子和钟点都按此时区计算")
    assert "/settings timezone 地区/城市" in lines[1]


@pytest.mark.parametrize("command", ["/settings timezone europe/london", "/settings 时区 Europe/London",
                                     "/settings TIMEZONE EUROPE/LONDON"])
async def test_settings_timezone_sets_the_zone(h, b, command):
    calls = await h.say(b.secretary, b.group, command)
    assert "时区已设为 Europe/London。" in said(calls)
    assert "· timezone = Europe/London" in said(calls)
    assert await stored_zone(h, b) == "Europe/London"


async def test_settings_timezone_refuses_what_is_no_zone_and_members(h, b):
    calls = await h.say(b.secretary, b.group, "/settings timezone 北京")
    assert "无法识别时区“北京”" in said(calls) and await stored_zone(h, b) == "Asia/Shanghai"
    calls = await h.say(b.zhang, h.private(b.zhang), "/settings timezone Europe/London")
    assert "时区已设为" not in said(calls) and await stored_zone(h, b) == "Asia/Shanghai"


def test_canonical_timezone_keeps_what_names_no_zone():
    assert canonical_timezone(" asia/SHANGHAI ") == "Asia/Shanghai"
    assert canonical_timezone("ＵＴＣ") == "UTC"
    assert canonical_timezone("UTC+8") == "UTC+8" and canonical_timezone("北京") == "北京"
