"""The town's dashboard names a branch's bands as the branch's own grade preview does: a label in two
parts (尖草坪's "60分以下：不合格党员") has its name in brackets before the count, not a second colon."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.domain.records import Branch
from bot.domain.town import BranchFigures
from bot.i18n import Translator
from bot.services.branches import rulebook_of
from handlers.town import grades_text


def _branch(preset: str) -> Branch:
    return Branch(id=1, chat_id=-1, title="t", preset=preset, custom_items="[]", timezone="Asia/Shanghai", language="zh",
                  reachable=True, created_by=1, created_at=datetime(2026, 1, 1, tzinfo=UTC))


@pytest.mark.parametrize("lang, expected", [
    ("zh", "2026年度（已定级）：90分及以上 1、80至89分 2、60至79分 3、60分以下（不合格党员） 4"),
    ("en", "2026 (final): 90 and above 1, 80 to 89 2, 60 to 79 3, Below 60 (unqualified) 4"),
])
def test_a_two_part_band_label_reads_cleanly_on_the_town_dashboard(lang: str, expected: str) -> None:
    branch = _branch("jiancaoping")
    codes = [band.code for band in rulebook_of(branch).bands]
    figures = BranchFigures(branch_id=1, title="t", grade_year=2026, grade_final=True,
                            distribution=tuple((code, n) for n, code in enumerate(codes, start=1)))
    assert grades_text(Translator(lang), branch, figures) == expected


def test_one_part_labels_keep_their_stars() -> None:
    branch = _branch("xishui")
    figures = BranchFigures(branch_id=1, title="t", grade_year=2026, grade_final=False,
                            distribution=((rulebook_of(branch).bands[0].code, 3),))
    assert grades_text(Translator("zh"), branch, figures).endswith("优秀★★★★★ 3")
