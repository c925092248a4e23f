"""Year-end grading (评定/定级): every member's year result, band, rank and flags, by the rulebook.

Pure domain: no Telegram, no SQL, no clock. The inputs are each member's ``YearScore`` (from
``bot.domain.scoring.year_score``) and a few facts the services gather (state, months counted, past
finalised years, 张店's democratic evaluation); the output is the ``GradeResult`` the preview shows, the
publicity notice posts and the snapshot keeps.

Every rule comes from the rulebook (bands, quota, ranking tiers, multi-year rules, settings); nothing
is written per preset. The decisions where DOMAIN.md and the seeds are silent:

* **Who is graded.** Exempt members are listed, not scored, not graded; so is a member who moved to
  another branch that grades the year (``transferred_out``, bot.domain.town.year_part). Probationary
  members are graded like anyone else unless ``settings.grade_probationary`` is false (浠水, seed 004:
  "预备党员参加积分制管理，但不确定等次"): then they are scored, flagged ``probationary``, not graded, not
  ranked. Where ``settings.probation_extend_below`` is set (浠水 60), a probationary member's published
  figure below it flags ``extend_probation`` (not judged with too few months). A member with fewer than
  ``settings.min_months_to_grade`` counted months is ``not_enough_months``, not graded — except a
  zero-out under ``zero_out_stops_scoring`` (尖草坪: "直接确定为不合格党员"), which is graded unqualified
  however few months.
* **张店's democratic 不合格, per half** (seed 003 l.47: "每半年民主评议党员工作结束后，组织开展一次党员考核
  评议工作。民主评议中被评定为不合格党员的，按照有关规定进行组织处置，不参加考核评议"): the exclusion is
  from THAT half's 考核评议. The member is flagged ``democratic_unqualified``; the half is listed in
  ``excluded_halves`` (its figure shown for the record, no half rank); each other half is ranked with
  everyone else's. **The year** (a decision, the seed is silent — the year result is our summary of the
  halves, DOMAIN decision 5): the member is handled separately (组织处置) for the year — the year figure
  is computed as for everyone (the mean of the halves) and shown, but the member is not graded, ranked
  or put in a year tier. Reason: the year's tiers decide "评先树优优先考虑" (top 10%) and "落后党员"
  (bottom 3%); a member rated 不合格党员 that year is on the 组织处置 track the seed prescribes, so neither
  an award preference from the qualified half alone nor the 落后 label (a milder track) fits.
* **The figure** is published (rounded half up to ``rounding_places``) and the band is decided on it.
  A zero-out makes it exactly 0 (flag ``zeroed``); under ``zero_out_stops_scoring`` the band is the
  lowest band whatever its minimum.
* **张店 (weighted halves)**: per half, quantified × quantified_weight + democratic × democratic_weight;
  a vetoed half is 0; the year is the mean of the halves the member has (a member who joined in
  August has one half). A missing democratic evaluation uses the quantified part alone for that half,
  flags ``democratic_missing`` and makes the result ``provisional``.
* **Ranks**: competition ranking (1, 2, 2, 4) of graded members by published figure, best first.
* **Quota** (浠水): places = floor(share × graded), at least ``min_count`` when anyone qualifies.
  Qualifiers are taken by figure; when a tie straddles the cut the tied ids are in ``GradeResult.tie``
  and the secretary's ``tie_choice`` names exactly the remaining places. Until chosen the result is
  ``provisional`` and the tied members are placed in the overflow band with flag ``tie`` (nobody in
  the tie is in the quota band). Qualifiers left out get the overflow band and flag ``quota``.
* **Ranking tiers** (张店): n = ceil(share × ranked); everyone tied with the n-th from that end is in
  the tier (so a tier may hold more than n). A member in a top tier is never also in a bottom tier
  (only matters in very small branches or when everybody ties).
* **Consecutive failing years**: this year's band is not passing and so were the immediately preceding
  finalised years (year-1, year-2, … without a gap; a year not graded breaks the chain). The rule with
  the highest ``consecutive_failing_years`` that the count reaches applies (its code is the flag).
* **Cumulative ranking** (三门峡, ``cumulative_years`` = k): members graded this year whose past has a
  figure for each of the k-1 preceding years; cumulative = this year's published figure + those. The
  "bottom" (排名靠后) are those with the lowest cumulative, ties included — only when at least two
  members are eligible and they do not all share the same cumulative. Flag ``not_nominable``.
* **Lagging** (三门峡 settings): a graded member whose published figure is below the base, or who
  earned no bonus, or who had a major deduction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from pydantic import BaseModel, field_validator

from bot.domain.records import MemberState
from bot.domain.rulebook import Band, Rulebook, YearMethod
from bot.domain.scoring import ZERO, Entry, YearScore, effective, major_codes, publish, zero_out_codes

# Flag codes (catalog keys under grade.flag.<code>). A multi-year rule's flag is its rule code
# (mentoring, study_class, org_handling, persuade_withdraw); a cumulative-ranking rule flags NOT_NOMINABLE.
EXEMPT = "exempt"
PROBATIONARY = "probationary"
EXTEND_PROBATION = "extend_probation"
NOT_ENOUGH_MONTHS = "not_enough_months"
ZEROED = "zeroed"
QUOTA = "quota"
TIE = "tie"
LAGGING = "lagging"
TOP_TIER = "top_tier"
BOTTOM_TIER = "bottom_tier"
NOT_NOMINABLE = "not_nominable"
DEMOCRATIC_MISSING = "democratic_missing"
DEMOCRATIC_UNQUALIFIED = "democratic_unqualified"
TRANSFERRED_OUT = "transferred_out"  # moved to another branch, which grades the year (bot.domain.town.year_part)
TRANSFERRED_IN = "transferred_in"  # graded here over the whole chain: another branch's months and rows count


class PastYear(BaseModel):
    """A finalised earlier year of the same member (from the snapshot table)."""

    year: int
    figure: Decimal | None = None
    band_code: str | None = None
    passing: bool | None = None
    rank: int | None = None
    ranked: int | None = None


class MemberYear(BaseModel):
    """Everything grading needs about one member for one year."""

    member_id: int
    name: str
    state: MemberState
    joined_on: date | None = None
    left_on: date | None = None
    score: YearScore | None  # year_score(...) over the member's counted months; None for exempt
    months_counted: int
    major_deduction: bool = False  # 三门峡: an effective row of an item flagged major this year
    bonus_earned: Decimal = ZERO  # 三门峡: sum of positive (contribution) rows this year
    democratic: dict[int, Decimal] = {}  # 张店: half (1|2) -> democratic evaluation 0..100
    # 张店: the halves (1|2) whose democratic evaluation rated the member 不合格 — left out of that half's
    # 考核评议 and, for the year, handled separately (module docstring). True (the older form) means both.
    democratic_unqualified: frozenset[int] = frozenset()
    past: list[PastYear] = []  # earlier finalised years, newest first
    transferred_out: bool = False  # listed, not scored, not graded: another branch grades the year
    transferred_in: bool = False  # the score counts the months and rows of the member's earlier branch(es)

    @field_validator("democratic_unqualified", mode="before")
    @classmethod
    def _unqualified_halves(cls, value: object) -> object:
        if isinstance(value, bool):
            return frozenset((1, 2)) if value else frozenset()
        return value

    @field_validator("democratic_unqualified")
    @classmethod
    def _unqualified_known(cls, value: frozenset[int]) -> frozenset[int]:
        if not value <= {1, 2}:
            raise ValueError(f"democratic_unqualified: halves {sorted(value)} are not 1 or 2")
        return value

    @field_validator("democratic")
    @classmethod
    def _halves(cls, value: dict[int, Decimal]) -> dict[int, Decimal]:
        for half, rating in value.items():
            if half not in (1, 2):
                raise ValueError(f"democratic: half {half} is not 1 or 2")
            if not rating.is_finite() or not ZERO <= rating <= 100:
                raise ValueError(f"democratic: {rating} is not within 0..100")
        return value


class GradeLine(BaseModel):
    member_id: int
    name: str
    figure: Decimal | None  # the published (rounded) year figure; None when not scored
    band_code: str | None
    stars: int | None
    label_zh: str | None
    label_en: str | None
    graded: bool  # False for exempt, probationary (grade_probationary false), not enough months, democratic-unqualified
    rank: int | None  # competition rank among the graded, 1 = best
    flags: list[str]
    # additions (all defaulted)
    state: MemberState | None = None
    passing: bool | None = None  # the band's "passing" (None when not graded or no band): feeds PastYear
    half_figures: dict[int, Decimal] = {}  # 张店: published per-half result (quantified alone while democratic is missing)
    half_ranks: dict[int, int] = {}  # 张店: rank per half among those who take part in the half's 考核评议
    excluded_halves: list[int] = []  # 张店: halves left out of 考核评议 (民主评议不合格): figure shown, no rank
    tiers: list[str] = []  # codes of the rulebook's ranking tiers the member falls in
    cumulative: Decimal | None = None  # 三门峡: the multi-year cumulative figure, when the member has every year
    cumulative_rank: int | None = None


class GradeResult(BaseModel):
    year: int
    rulebook_code: str
    lines: list[GradeLine]  # every member listed, graded or not, ordered by rank then name
    distribution: dict[str, int]  # band_code -> graded members (every band of the rulebook, in band order)
    tie: list[int] = []  # member ids tied across the quota cut (DOMAIN decision 4)
    quota_places: int | None = None  # how many may be in the quota band
    provisional: bool = False  # an unresolved tie, or a democratic evaluation missing
    ranked: int = 0  # how many members were ranked (feeds PastYear.ranked)

    def line(self, member_id: int) -> GradeLine:
        return next(line for line in self.lines if line.member_id == member_id)

    def past_year(self, member_id: int) -> PastYear | None:
        """The member's line as a ``PastYear`` for later years' multi-year rules (None if not listed)."""
        line = next((x for x in self.lines if x.member_id == member_id), None)
        if line is None:
            return None
        return PastYear(year=self.year, figure=line.figure, band_code=line.band_code, passing=line.passing,
                        rank=line.rank, ranked=self.ranked if line.rank is not None else None)


# --- helpers ------------------------------------------------------------------------------------


def competition_ranks(values: Iterable[tuple[int, Decimal]]) -> dict[int, int]:
    """Ranks 1, 2, 2, 4 … of (key, figure) pairs, the highest figure first."""
    ordered = sorted(values, key=lambda kv: kv[1], reverse=True)
    ranks: dict[int, int] = {}
    for position, (key, value) in enumerate(ordered, start=1):
        if position > 1 and value == ordered[position - 2][1]:
            ranks[key] = ranks[ordered[position - 2][0]]
        else:
            ranks[key] = position
    return ranks


def quota_places(rulebook: Rulebook, graded: int, anyone_qualifies: bool) -> int | None:
    """floor(share × graded), at least min_count where anyone qualifies (DOMAIN decision 4)."""
    quota = rulebook.quota
    if quota is None:
        return None
    places = int((quota.share * graded).to_integral_value(rounding=ROUND_FLOOR))
    return max(places, quota.min_count) if anyone_qualifies else places


def year_facts(rulebook: Rulebook, entries: Iterable[Entry], year: int) -> tuple[Decimal, bool]:
    """(bonus_earned, major_deduction) of a member's ledger rows for ``year`` (三门峡's lagging rules).

    bonus_earned = the sum of the year's effective positive rows (zero-out rows carry no points);
    major_deduction = an effective row of an item flagged ``major`` this year.
    """
    rows = [e for e in effective(entries) if e.occurred_on.year == year]
    majors, zero_codes = major_codes(rulebook), zero_out_codes(rulebook)  # built once per rulebook
    bonus = sum((e.value for e in rows if e.value > 0 and e.item_code not in zero_codes), ZERO)
    return bonus, any(e.item_code in majors for e in rows)


def tier_size(share: Decimal, ranked: int) -> int:
    """ceil(share × ranked) (DOMAIN decision 5)."""
    return int((share * ranked).to_integral_value(rounding=ROUND_CEILING)) if ranked else 0


@dataclass
class _Line:
    member: MemberYear
    figure: Decimal | None = None
    band: Band | None = None
    graded: bool = False
    flags: list[str] = field(default_factory=list)
    half_figures: dict[int, Decimal] = field(default_factory=dict)
    half_ranks: dict[int, int] = field(default_factory=dict)
    tiers: list[str] = field(default_factory=list)
    excluded_halves: list[int] = field(default_factory=list)
    half_only: bool = False  # not graded for the year, but ranked in the halves not excluded (张店)
    rank: int | None = None
    cumulative: Decimal | None = None
    cumulative_rank: int | None = None

    def flag(self, code: str) -> None:
        if code not in self.flags:
            self.flags.append(code)


def _exact_figure(rulebook: Rulebook, member: MemberYear, line: _Line) -> Decimal | None:
    """The exact year figure; for weighted halves recombined with the member's democratic ratings."""
    score = member.score
    if score is None:
        return None
    if score.zeroed and rulebook.year_result.method is not YearMethod.WEIGHTED_HALVES:
        return ZERO
    if rulebook.year_result.method is not YearMethod.WEIGHTED_HALVES or not score.halves:
        return score.figure
    rule = rulebook.year_result
    places = rulebook.settings.rounding_places
    parts: list[Decimal] = []
    for half in score.halves:
        if half.zeroed:  # a veto makes the half 0
            value = ZERO
        else:
            rating = member.democratic.get(half.half, half.democratic)
            if rating is None:
                line.flag(DEMOCRATIC_MISSING)
                value = half.quantified
            else:
                value = half.quantified * rule.quantified_weight + rating * rule.democratic_weight
        line.half_figures[half.half] = publish(value, places)
        parts.append(value)
    figure = sum(parts, ZERO) / len(parts)
    return max(ZERO, figure) if rulebook.settings.year_floor_zero else figure


def _judge(rulebook: Rulebook, member: MemberYear, year: int) -> _Line:
    """One member on their own: figure, whether graded, the band and the individual flags."""
    settings = rulebook.settings
    line = _Line(member=member)
    if member.transferred_out:
        line.flag(TRANSFERRED_OUT)
        return line
    if member.transferred_in:
        line.flag(TRANSFERRED_IN)
    if member.state is MemberState.EXEMPT:
        line.flag(EXEMPT)
        return line
    if member.score is not None and member.score.year != year:
        raise ValueError(f"member {member.member_id}: score is for {member.score.year}, not {year}")
    exact = _exact_figure(rulebook, member, line)
    line.figure = None if exact is None else publish(exact, settings.rounding_places)
    zeroed = member.score is not None and member.score.zeroed
    if zeroed:
        line.flag(ZEROED)
    line.excluded_halves = _excluded_halves(member)
    if line.excluded_halves:
        line.flag(DEMOCRATIC_UNQUALIFIED)
    enough = member.months_counted >= settings.min_months_to_grade and line.figure is not None
    probationary = member.state is MemberState.PROBATIONARY
    if probationary and not settings.grade_probationary:  # 浠水: 预备党员参加积分制管理，但不确定等次
        line.flag(PROBATIONARY)
        if not enough:
            line.flag(NOT_ENOUGH_MONTHS)
        else:
            _extend_probation(rulebook, line)
        return line
    stops = zeroed and settings.zero_out_stops_scoring
    if not enough and not stops:
        line.flag(NOT_ENOUGH_MONTHS)
        return line
    if probationary and enough:
        _extend_probation(rulebook, line)
    if line.excluded_halves:  # 张店: the year handled separately; the other half ranked (grade())
        line.half_only = True
        return line
    line.graded = True
    if line.figure is None:  # a zero-out with no score at all
        line.figure = ZERO
    line.band = rulebook.band_for(line.figure)
    if stops and rulebook.bands:
        line.band = rulebook.bands[-1]  # 直接确定为不合格党员
    return line


def _excluded_halves(member: MemberYear) -> list[int]:
    """The halves the member is left out of (张店's democratic 不合格), among the halves they were scored in."""
    if not member.democratic_unqualified:
        return []
    scored = {h.half for h in member.score.halves} if member.score is not None and member.score.halves else None
    return sorted(h for h in member.democratic_unqualified if scored is None or h in scored)


def _extend_probation(rulebook: Rulebook, line: _Line) -> None:
    below = rulebook.settings.probation_extend_below
    if below is not None and line.figure is not None and line.figure < below:
        line.flag(EXTEND_PROBATION)


def _apply_quota(rulebook: Rulebook, graded: list[_Line], tie_choice: set[int] | None) -> tuple[list[int], int | None, bool]:
    """Caps the quota band; returns (tie, places, provisional)."""
    quota = rulebook.quota
    if quota is None:
        if tie_choice:
            raise ValueError("tie_choice given, but the rulebook has no quota")
        return [], None, False
    by_code = {b.code: b for b in rulebook.bands}
    overflow = by_code[quota.overflow_band]
    qualifiers = sorted((l for l in graded if l.band is not None and l.band.code == quota.band),
                        key=lambda l: l.figure, reverse=True)  # type: ignore[arg-type, return-value]
    places = quota_places(rulebook, len(graded), bool(qualifiers))
    assert places is not None
    tie: list[int] = []
    provisional = False
    if len(qualifiers) <= places:
        keep = qualifiers
    elif places == 0:
        keep = []
    else:
        cut = qualifiers[places - 1].figure
        above = [l for l in qualifiers if l.figure > cut]  # type: ignore[operator]
        at = [l for l in qualifiers if l.figure == cut]
        if len(above) + len(at) <= places:
            keep = above + at
        else:
            free = places - len(above)
            tie = sorted(l.member.member_id for l in at)
            if tie_choice is None:
                keep, provisional = above, True
                for l in at:
                    l.band = overflow
                    l.flag(TIE)
            else:
                if not set(tie_choice) <= set(tie) or len(set(tie_choice)) != free:
                    raise ValueError(f"choose exactly {free} of the tied members {tie}")
                keep = above + [l for l in at if l.member.member_id in tie_choice]
    if not tie and tie_choice:
        raise ValueError("tie_choice given, but no tie straddles the quota cut")
    kept = {id(l) for l in keep}
    for l in qualifiers:
        if id(l) not in kept and TIE not in l.flags:
            l.band = overflow
            l.flag(QUOTA)
    return tie, places, provisional


def _apply_tiers(rulebook: Rulebook, graded: list[_Line]) -> None:
    ranked = sorted(graded, key=lambda l: l.figure, reverse=True)  # type: ignore[arg-type, return-value]
    in_top: set[int] = set()
    for tier in sorted(rulebook.ranking_tiers, key=lambda t: t.side != "top"):  # top tiers first
        n = tier_size(tier.share, len(ranked))
        if n == 0:
            continue
        if tier.side == "top":
            threshold = ranked[n - 1].figure
            members = [l for l in ranked if l.figure >= threshold]  # type: ignore[operator]
        else:
            threshold = ranked[len(ranked) - n].figure
            members = [l for l in ranked if l.figure <= threshold and id(l) not in in_top]  # type: ignore[operator]
        for l in members:
            if tier.side == "top":
                in_top.add(id(l))
            l.tiers.append(tier.code)
            l.flag(TOP_TIER if tier.side == "top" else BOTTOM_TIER)


def _failing_run(line: _Line, year: int) -> int:
    """This year and the immediately preceding finalised years, all failing, without a gap."""
    if line.band is None or line.band.passing:
        return 0
    past = {p.year: p for p in line.member.past if p.year < year}
    run, previous = 1, year - 1
    while (p := past.get(previous)) is not None and p.passing is False:
        run, previous = run + 1, previous - 1
    return run


def _apply_multi_year(rulebook: Rulebook, graded: list[_Line], year: int) -> None:
    consecutive = sorted((r for r in rulebook.multi_year_rules if r.consecutive_failing_years),
                         key=lambda r: r.consecutive_failing_years, reverse=True)  # type: ignore[arg-type, return-value]
    for line in graded:
        run = _failing_run(line, year)
        rule = next((r for r in consecutive if run >= r.consecutive_failing_years), None)  # type: ignore[operator]
        if rule is not None:
            line.flag(rule.code)
    for rule in rulebook.multi_year_rules:
        if not rule.cumulative_years:
            continue
        eligible: list[tuple[_Line, Decimal]] = []
        for line in graded:
            past = {p.year: p.figure for p in line.member.past}
            earlier = [past.get(year - k) for k in range(1, rule.cumulative_years)]
            if all(f is not None for f in earlier):
                eligible.append((line, line.figure + sum(earlier, ZERO)))  # type: ignore[arg-type, operator]
        ranks = competition_ranks((i, total) for i, (_, total) in enumerate(eligible))
        for i, (line, total) in enumerate(eligible):
            line.cumulative, line.cumulative_rank = total, ranks[i]
        totals = {total for _, total in eligible}
        if len(eligible) >= 2 and len(totals) > 1:
            lowest = min(totals)
            for line, total in eligible:
                if total == lowest:
                    line.flag(NOT_NOMINABLE)


def _apply_lagging(rulebook: Rulebook, graded: list[_Line]) -> None:
    settings = rulebook.settings
    base = rulebook.year_result.base
    for line in graded:
        member = line.member
        if (
            (settings.lagging_below_base and line.figure is not None and line.figure < base)
            or (settings.lagging_without_bonus and member.bonus_earned <= 0)
            or (settings.lagging_on_major_deduction and member.major_deduction)
        ):
            line.flag(LAGGING)


def _rank(graded: list[_Line], figure_of: Callable[[_Line], Decimal | None]) -> dict[int, int]:
    return competition_ranks((id(l), f) for l in graded if (f := figure_of(l)) is not None)


# --- the year's grading -------------------------------------------------------------------------


def grade(rulebook: Rulebook, members: list[MemberYear], year: int, *, tie_choice: set[int] | None = None) -> GradeResult:
    """Grade every member of a branch for ``year`` by the rulebook (see the module's docstring)."""
    ids = [m.member_id for m in members]
    if len(ids) != len(set(ids)):
        raise ValueError("a member is listed twice")
    lines = [_judge(rulebook, m, year) for m in members]
    graded = [l for l in lines if l.graded]

    tie, places, tie_open = _apply_quota(rulebook, graded, tie_choice)

    ranks = _rank(graded, lambda l: l.figure)
    for l in graded:
        l.rank = ranks[id(l)]
    for half in (1, 2):  # each half's 考核评议: the graded, and the half-only in the halves they take part in
        takers = [l for l in lines if (l.graded or l.half_only) and half not in l.excluded_halves]
        half_ranks = _rank(takers, lambda l, h=half: l.half_figures.get(h))  # type: ignore[misc]
        for l in takers:
            if id(l) in half_ranks:
                l.half_ranks[half] = half_ranks[id(l)]

    _apply_tiers(rulebook, graded)
    _apply_lagging(rulebook, graded)
    _apply_multi_year(rulebook, graded, year)

    distribution = {b.code: 0 for b in rulebook.bands}
    for l in graded:
        if l.band is not None:
            distribution[l.band.code] += 1

    out = [
        GradeLine(
            member_id=l.member.member_id,
            name=l.member.name,
            figure=l.figure,
            band_code=l.band.code if l.band else None,
            stars=l.band.stars if l.band else None,
            label_zh=l.band.label.zh if l.band else None,
            label_en=l.band.label.en if l.band else None,
            graded=l.graded,
            rank=l.rank,
            flags=l.flags,
            state=l.member.state,
            passing=l.band.passing if l.band else None,
            half_figures=l.half_figures,
            half_ranks=l.half_ranks,
            excluded_halves=l.excluded_halves,
            tiers=l.tiers,
            cumulative=l.cumulative,
            cumulative_rank=l.cumulative_rank,
        )
        for l in lines
    ]
    out.sort(key=lambda g: (g.rank is None, g.rank or 0, g.name, g.member_id))
    democratic_open = any(DEMOCRATIC_MISSING in l.flags for l in lines)
    return GradeResult(
        year=year,
        rulebook_code=rulebook.code,
        lines=out,
        distribution=distribution,
        tie=tie,
        quota_places=places,
        provisional=tie_open or democratic_open,
        ranked=len(graded),
    )


__all__ = [
    "GradeLine",
    "GradeResult",
    "MemberYear",
    "PastYear",
    "competition_ranks",
    "grade",
    "quota_places",
    "tier_size",
    "year_facts",
]
