"""Small things a reader trips over (third round): each through the real Application."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.services.branches import rulebook_of
from tests.conftest import TestHarness, said, setup_branch


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --- 尖草坪's grade preview: a band label that holds its threshold ------------------------------------------


async def test_a_band_label_in_two_parts_reads_cleanly_before_its_count(h: TestHarness, clock) -> None:
    """尖草坪's lowest band is labelled "60分以下：不合格党员": before a count it read "60分以下：不合格党员：2 人"."""
    clock.set(utc(2026, 1, 5, 2, 0))
    b = await setup_branch(h, preset="jiancaoping", title="尖草坪区某社区党支部")
    clock.set(utc(2027, 1, 2, 2, 0))
    shown = said(await h.say(b.secretary, h.private(b.secretary), "/grade 2026"), b.secretary.id)
    assert "90分及以上：" in shown and "80至89分：" in shown and "60至79分：" in shown
    assert "60分以下（不合格党员）：0 人" in shown and "不合格党员：" not in shown

    english = h.user(b.secretary.id, b.secretary.full_name, username=b.secretary.username, language="en")
    shown = said(await h.say(english, h.private(english), "/grade 2026"), english.id)
    assert "Below 60 (unqualified): 0" in shown and "unqualified: 0" not in shown


# --- /additem's usage names a category the branch's rulebook has --------------------------------------------


@pytest.mark.parametrize("preset", ["xishui", "zhangdian", "jiancaoping", "sanmenxia"])
async def test_the_additem_example_names_a_category_of_the_branch_and_works_as_shown(h: TestHarness, preset: str) -> None:
    """The example named `bonus`, which 尖草坪, 张店 and 三门峡 do not have: copied, it was refused."""
    b = await setup_branch(h, preset=preset)
    shown = said(await h.say(b.secretary, b.group, "/additem"), b.group.id)
    example = next(line for line in shown.splitlines() if line.startswith("例："))
    category = example.split()[1]
    codes = [c.code for c in rulebook_of(await h.services.branches.by_id(b.branch.id)).categories]
    assert category in codes and f"类别代码：{', '.join(codes)}" in shown
    calls = await h.say(b.secretary, b.group, example.removeprefix("例："))  # sent as shown: accepted
    assert "种植连翘50亩以上" in said(calls, b.group.id)
    assert "own_forsythia" in [i.code for i in rulebook_of(await h.services.branches.by_id(b.branch.id)).category(category).items]
