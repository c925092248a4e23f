"""What people ask: /start, /help, /points, /rules, /history, /pending, /branch, and /record for recorders."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal, InvalidOperation
from functools import cache

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import Application, CallbackQueryHandler, CommandHandler

from bot.domain.records import Branch, LedgerRow, Role
from bot.domain.rulebook import Band, Category, Item, ItemKind, Period, Rulebook, YearMethod
from bot.domain.scoring import item_of, publish
from bot.errors import DomainError, InvalidInput, NotFound
from bot.domain.text import clean_text
from bot.i18n import Safe, Translator, escape, format_points, language_of
from bot.services.branches import rulebook_of
from bot.domain.grading import GradeLine
from bot.services.points import Shown, Standing
from handlers.common import (CONFIRM_TOKEN, Context, actor, answer, confirm_press, current_branch, domain_errors, edit_or_send,
                             giving_back, is_private, keep_confirm, point_to_private, refusal, reply, send_private, services, take_unless_cancelled,
                             translator)
from handlers.branch_context import naming_branch, private_flow, several_branches_note
from handlers.decide import card, keyboard
from handlers.notices import pack

MANAGER_ROLES = {Role.SECRETARY, Role.DEPUTY}
DECIDER_ROLES = {Role.RECORDER, Role.SECRETARY, Role.DEPUTY}


def _signed(value: Decimal) -> str:
    return ("+" if value > 0 else "") + format_points(value)


def ledger_line(tr: Translator, rulebook: Rulebook, row: LedgerRow, origins: dict[int, str] | None = None) -> str:
    """One ledger row; a row of another branch the member was in (``origins``: branch id → title) is
    marked with that branch."""
    return LedgerLines(tr, rulebook, origins)(row)


class LedgerLines:
    """``ledger_line`` for the rows of one answer: the line's template, the source names, the item names,
    the signed values and the branch marks are looked up (and escaped) once per answer instead of once or
    twice per row (/history shows 30); the text is the same as ``tr("history.line", ...)`` renders it. A
    row is a ``LedgerRow`` or the ``Shown`` part of one."""

    def __init__(self, tr: Translator, rulebook: Rulebook, origins: dict[int, str] | None = None, numbered: bool = False):
        self.tr, self.rulebook, self.origins = tr, rulebook, origins or {}
        self.template = tr.template("history.line")
        # /history: each line starts with the entry's number (the one /undo and /object take)
        self.numbered = tr.template("history.numbered") if numbered else None
        self.names: dict[tuple[str, str | None], str] = {}
        self.sources: dict[str, str] = {}
        self.values: dict[str, str] = {}  # keyed by the value's text: 2.50 and 2.5 are equal Decimals
        self.marks: dict[int, str] = {}

    def __call__(self, row: LedgerRow | Shown) -> str:
        key = (row.item_code, row.event_code)
        name = self.names.get(key)
        if name is None:
            name = self.names[key] = escape(self._name(row.item_code, row.event_code))
        source = self.sources.get(row.source)
        if source is None:
            source = self.sources[row.source] = escape(self.tr(f"source.{row.source.value}"))
        amount = row.value
        text = str(amount)
        value = self.values.get(text)
        if value is None:
            value = self.values[text] = _signed(amount)
        reason = row.reason
        # the date and the signed value are digits and signs: nothing to escape
        line = self.template.format_map({"date": row.occurred_on.isoformat(), "item": name, "value": value,
                                         "source": source, "reason": escape(reason) if reason else ""})
        if self.numbered is not None:
            line = self.numbered.format_map({"number": row.id, "line": line})
        if not self.origins:
            return line
        origin = self.origins.get(row.branch_id)
        if origin is None:
            return line
        mark = self.marks.get(row.branch_id)
        if mark is None:
            mark = self.marks[row.branch_id] = self.tr("transfer.year.history_from", branch=origin)
        return f"{line} {mark}"

    def _name(self, code: str, event_code: str | None) -> str:
        lang = self.tr.lang
        item = item_of(self.rulebook, code)
        name = item.name.get(lang) if item else code
        if item is not None and event_code and (event := item.event(event_code)) is not None:
            name = f"{name} · {event.name.get(lang)}"
        return name


@domain_errors
async def start_command(update: Update, context: Context) -> None:
    tr = translator(update)
    if not is_private(update):
        await reply(update, tr("start.group"))
        return
    if context.args and context.args[0] == "points":  # deep link from the group's /points
        context.args = []  # the link's word is not a member to look up
        await points_command(update, context)
        return
    svc = services(context)
    assert update.effective_user is not None
    await svc.roster.mark_reachable(update.effective_user.id)
    await svc.towns.seen(update.effective_user.id)  # a town administrator who had blocked the bot, or never started it
    mine = await svc.branches.branches_of(update.effective_user.id)
    tr, sections = await help_sections(update, context)
    # A member of several branches: which one the role sections below are about (single-branch: unchanged).
    which = await several_branches_note(update, context) if len(mine) > 1 else ""
    sections[0] = tr("start.private", count=len(mine)) + which + "\n\n" + sections[0]
    for message in pack(sections):
        await reply(update, message)


@domain_errors
async def help_command(update: Update, context: Context) -> None:
    _tr, sections = await help_sections(update, context)
    for message in pack(sections):
        await reply(update, message)


async def help_sections(update: Update, context: Context) -> tuple[Translator, list[str]]:
    """What *this* user may do: the members' section, then one per role they hold in the branch (the
    group's, or in private the one they work with), and in private the town administrators', the
    operator's and a partner merchant's. Each section is a catalog entry (help.*); tests/test_help.py
    checks that every command the Application takes is in some section."""
    svc = services(context)
    user = update.effective_user
    assert user is not None
    tr = translator(update)
    roles: set[Role] = set()
    why_no_branch = None
    try:
        branch = await current_branch(update, context)
        tr = translator(update, branch)
        roles = await svc.roster.roles_of_user(branch, user.id)
    except DomainError as error:  # no branch yet, several to choose from, or a group not set up
        why_no_branch = error
    sections = [tr("help.everyone")]
    if roles & DECIDER_ROLES:
        sections.append(tr("help.recorders"))
    if Role.SUPERVISOR in roles:
        sections.append(tr("help.supervisors"))
    if roles & MANAGER_ROLES:
        sections.append(tr("help.managers"))
    if Role.SECRETARY in roles:
        sections.append(tr("help.secretaries"))
    outside = []  # what someone may do outside a branch's roles, in private only (their own business)
    if is_private(update):
        if await svc.towns.towns_of(user.id):
            outside.append(tr("help.towns"))
        if svc.towns.is_operator(user.id):
            outside.append(tr("help.operators"))
        if await svc.rewards.merchant_of(user.id):
            outside.append(tr("help.merchants"))
    sections += outside
    if why_no_branch is not None and (why_no_branch.key != "branch.none_for_user" or not outside):
        sections.append(refusal(update, why_no_branch))
    return tr, sections


@domain_errors
@naming_branch
async def points_command(update: Update, context: Context) -> None:
    svc = services(context)
    assert update.effective_user is not None
    if not is_private(update):
        await point_to_private(update, context, "points.go_private", start="points")
        return
    if context.args:  # a manager or recorder looking at someone else; anyone at a year (/points 2025)
        branch, me = await svc.points.asker(update.effective_user.id)
        tr = translator(update, branch)
        if re.fullmatch(r"(19|20)\d\d(-|/|\.|年)\d\d?月?", context.args[-1]):  # a month: not a member's name
            await reply(update, tr("points.month_usage"))
            return
        args, year = await _points_args(svc, branch, me, list(context.args))
        member = me
        if args:
            if not await svc.roster.roles(me) & DECIDER_ROLES:
                roles = tr("common.list_separator").join(tr(f"role.{r.value}") for r in (Role.RECORDER, Role.SECRETARY, Role.DEPUTY))
                await reply(update, tr("error.auth.needs_role", roles=roles))
                return
            member = await svc.roster.find(branch, " ".join(args))
        # exempt now: the months of the year scored before the exemption (as /grade counts them); none: exempt
        if year is None:
            standing = await svc.points.standing(branch, member)
        else:
            standing = await svc.points.year_standing(branch, member, year)
            if standing is None and member.scored:
                await reply(update, tr("points.no_year", name=member.name, year=year))
                return
            if standing is not None and standing.counted and standing.today.year < svc.clock.today(branch.timezone).year:
                lines = [tr("points.year_header", name=member.name, year=year, branch=branch.title)]
                lines += _exempt_lines(tr, member, standing)
                final = await svc.grading.snapshot(branch.id, year)  # the year as finalised (/grade), if it is
                line = next((x for x in final.lines if x.member_id == member.id and x.figure is not None), None) if final else None
                await reply(update, "\n".join(lines + _year_lines(tr, standing, past=True, final=line)))
                return
    else:  # the branch, the member and the standing in one read
        branch, member, standing = await svc.points.own_standing(update.effective_user.id)
        tr = translator(update, branch)
    if standing is None or (not member.scored and not standing.counted):  # exempt, and scored in no month of the year
        await reply(update, tr("points.exempt", name=member.name, reason=member.state_reason or "-"))
        return
    rulebook = standing.rulebook
    places = rulebook.settings.rounding_places  # the month's figures as the notice publishes them (rounded)
    lines = [tr("points.header", name=member.name, branch=branch.title, year=standing.today.year, month=standing.today.month)]
    if not member.scored:  # exempt this month: no month's score, but since when (the year is the months before)
        lines += _exempt_lines(tr, member, standing)
    elif rulebook.year_result.method is YearMethod.SUM:
        lines.append(tr("points.month_net", value=_signed(publish(standing.month_net, places))))
    else:
        lines.append(tr("points.month_score", value=publish(standing.month.total, places)))
        for category in standing.month.categories:
            cat = rulebook.category(category.code)
            lines.append(tr("points.category_line", name=cat.name.get(tr.lang) if cat else category.code,
                            value=publish(category.points, places), cap=Safe(f" / {format_points(cat.cap)}") if cat and cat.cap else ""))
    lines.extend(_year_lines(tr, standing))
    if standing.recent:
        lines.append(tr("points.recent"))
        lines.extend(map(LedgerLines(tr, rulebook, standing.origins), standing.recent))
    own = member.user_id == update.effective_user.id
    chart = _trend_button(tr.lang) if own else None
    await reply(update, "\n".join(lines), reply_markup=chart)


def _exempt_lines(tr: Translator, member, standing: Standing) -> list[str]:
    """A member exempt now whose year counts months scored before: since when (or, exempt since their row
    began, the state line as /points gives it); nothing for a year that ended before the exemption."""
    if member.scored:
        return []
    since = standing.exempt_since
    if since is None:
        return [tr("points.exempt", name=member.name, reason=member.state_reason or "-")]
    if since.year > standing.today.year:
        return []
    return [tr("points.exempt_since", year=since.year, month=since.month, reason=member.state_reason or "-")]


def _year_lines(tr: Translator, standing: Standing, past: bool = False, final: GradeLine | None = None) -> list[str]:
    """The year's part of /points (the year so far, or ``past``: /points YEAR's year that has ended): its
    figure, a sum scheme's categories (rounded as published), the zero-out, the band, a move between
    branches. A past year shows no band: the grade is the year-end grading's (quota, probationary), its
    ``final`` line once finalised (as the publicity and the forms say it), else a note that it is pending."""
    rulebook = standing.rulebook
    places = rulebook.settings.rounding_places
    lines = []
    year = standing.summary  # no per-month scores: the answer shows none
    key = {
        YearMethod.SUM: "points.year_sum",
        YearMethod.MONTHLY_AVERAGE: "points.year_average",
        YearMethod.WEIGHTED_HALVES: "points.year_weighted",
    }[rulebook.year_result.method]
    rated = any(h.democratic is not None for h in year.halves)  # 张店: a half's democratic evaluation held
    if past:
        key = key.replace("points.year_", "points.past_") + ("_rated" if rated else "")
    elif rated:  # this year, a half evaluated: its figure is no longer the quantified points alone
        key += "_rated"
    lines.append(tr(key, value=standing.published, base=rulebook.year_result.base, months=len(standing.counted),
                    bonus=publish(year.bonus, places)))
    if rulebook.year_result.method is YearMethod.SUM:
        for category in year.categories:
            if category.points:
                cat = rulebook.category(category.code)
                lines.append(tr("points.category_line", name=cat.name.get(tr.lang) if cat else category.code,
                                value=Safe(_signed(publish(category.points, places))), cap=""))
    if year.provisional:
        lines.append(tr("points.democratic_partial" if rated else "points.democratic_pending"))
    if year.zeroed:
        lines.append(tr("points.zeroed"))
    if standing.band is not None and not past:
        lines.append(tr("points.band", band=standing.band.label.get(tr.lang),
                        stars=stars_shown(tr, rulebook, standing.band.stars)).rstrip())
    if standing.transfer is not None:  # 组织关系转接: which branches' months the year covers, and who grades it
        names = tr("common.list_separator").join(standing.transfer.branches)
        lines.append(tr(f"transfer.year.{standing.transfer.note}", branches=names, branch=names))
    if past and final is not None:
        from handlers.grading import PUBLIC_FLAGS, flag_label, short_result  # handlers.grading imports this module
        flags = [flag_label(tr, rulebook, c) for c in final.flags if c in PUBLIC_FLAGS]
        lines.append(tr("points.past_final", result=Safe(short_result(tr, final)),
                        flags=Safe(tr("grade.flags", flags=tr("common.list_separator").join(flags)) if flags else "")))
    elif past:
        lines.append(tr("points.past_note"))
    return lines


async def _points_args(svc, branch: Branch, me, args: list[str]) -> tuple[list[str], int | None]:
    """/points [MEMBER] [YEAR]: a last word that is a year (2025) asks for that year, unless it is all a
    decider typed and the branch has a member of that number (/points MEMBER as before)."""
    if not args or not re.fullmatch(r"(19|20)\d\d", args[-1]):
        return args, None
    if len(args) == 1 and await svc.roster.roles(me) & DECIDER_ROLES:
        try:
            await svc.roster.find(branch, args[0])
            return args, None
        except NotFound:
            pass
    return args[:-1], int(args[-1])


@domain_errors
async def rules_command(update: Update, context: Context) -> None:
    branch = await current_branch(update, context)
    tr = translator(update, branch)
    rulebook = rulebook_of(branch)
    lines = [tr("rules.header", name=rulebook.name.get(tr.lang), source=rulebook.source.get(tr.lang))]
    lines += _rules_year(tr, rulebook)
    for category in rulebook.categories:
        limits = []
        if category.cap is not None:
            limits.append(tr("rules.cap", value=category.cap, period=tr(f"period.{category.period.value}")))
        if category.cap_year is not None:
            limits.append(tr("rules.cap_year", value=category.cap_year))
        lines.append(tr("rules.category", name=category.name.get(tr.lang), limits=Safe(" · ".join(limits))).rstrip())
        for item in category.items:
            lines.append(tr("rules.item", code=item.code, name=item.name.get(tr.lang),
                            value=Safe(_item_value(tr, item, category, rulebook))))
    if rulebook.bands:
        lines.append(tr("rules.bands"))
        for band in rulebook.bands:
            label, threshold = band.label.get(tr.lang), band_threshold(tr, rulebook, band)
            if threshold is None:  # the label says it already (尖草坪: "60分以下：不合格党员")
                lines.append(tr("rules.band_named", label=label, stars="★" * band.stars).rstrip())
            else:
                lines.append(tr("rules.band", label=label, stars="★" * band.stars, min=Safe(threshold)).rstrip())
    if rulebook.ranking_tiers:  # 张店 ranks instead of banding: its tiers, each labelled with its share
        lines.append(tr("rules.tiers"))
        lines += [tr("rules.tier", label=tier.label.get(tr.lang)) for tier in rulebook.ranking_tiers]
    await reply(update, "\n".join(lines))


def band_threshold(tr: Translator, rulebook: Rulebook, band: Band) -> str | None:
    """Where a band starts, as a reader says it: "80分及以上", and for the lowest band (which has no
    minimum) "50分以下", below the lowest minimum of the others. None when the band's label already
    names its figure (尖草坪's "90分及以上", "60分以下：不合格党员")."""
    if band.min is not None:
        figure, key = band.min, "rules.band_from"
    else:
        floors = [other.min for other in rulebook.bands if other.min is not None]
        if not floors:
            return None
        figure, key = min(floors), "rules.band_below"
    if format_points(figure) in band.label.get(tr.lang):
        return None
    return tr(key, value=format_points(figure))


@cache
def _trend_button(lang: str) -> InlineKeyboardMarkup:
    """The chart button under a member's own /points, built once per language: its text is the catalog's,
    which never changes while the bot runs, and PTB's markup is immutable (building it cost ~25 µs a reply)."""
    return InlineKeyboardMarkup([[InlineKeyboardButton(Translator(lang)("points.trend_button"), callback_data="ch:me")]])


def stars_shown(tr: Translator, rulebook: Rulebook, stars: int) -> str:
    """A band's stars; "no stars" only where the scheme gives stars at all (尖草坪's bands have none, so
    nothing is shown and the line ends with the band)."""
    if stars:
        return "★" * stars
    return tr("points.no_stars") if any(band.stars for band in rulebook.bands) else ""


def _rules_year(tr: Translator, rulebook: Rulebook) -> list[str]:
    """How the year's result is made (the method, the base, 张店's weights), who is graded (浠水's quota and
    probationary members) and what repeated results lead to — each from the rulebook, nothing per preset."""
    result, settings = rulebook.year_result, rulebook.settings
    bonus = rulebook.category(result.bonus_category) if result.bonus_category else None
    lines = [tr("rules.year")]
    if result.method is YearMethod.SUM:
        lines.append(tr("rules.method_sum", base=format_points(result.base)))
    elif result.method is YearMethod.MONTHLY_AVERAGE:
        lines.append(tr("rules.method_average"))
    else:  # 张店: the half's bonus is part of the quantified 60%
        quantified = tr("rules.quantified")
        if bonus is not None:
            quantified = tr("rules.quantified_capped" if result.bonus_cap is not None else "rules.quantified_bonus",
                            name=bonus.name.get(tr.lang), period=tr("period.half"), cap=format_points(result.bonus_cap or 0))
        lines.append(tr("rules.method_halves", quantified=Safe(quantified), quantified_weight=_percent(result.quantified_weight),
                        democratic_weight=_percent(result.democratic_weight)))
        weights = result.democratic_weights
        lines.append(tr("rules.democratic_weights", own=_percent(weights["self"]), peer=_percent(weights["peer"]),
                        public=_percent(weights["public"]), branch=_percent(weights["branch"])))
    if bonus is not None and result.method is not YearMethod.WEIGHTED_HALVES:
        key = "rules.bonus_capped" if result.bonus_cap is not None else "rules.bonus"
        lines.append(tr(key, name=bonus.name.get(tr.lang), period=tr(f"period.{Period.YEAR.value}"),
                        cap=format_points(result.bonus_cap or 0)))
    if rulebook.quota is not None:
        band = next((b for b in rulebook.bands if b.code == rulebook.quota.band), None)
        lines.append(tr("rules.quota", band=band.label.get(tr.lang) if band else rulebook.quota.band,
                        share=_percent(rulebook.quota.share), least=rulebook.quota.min_count))
    if not settings.grade_probationary:
        lines.append(tr("rules.probationary_ungraded"))
    if settings.probation_extend_below is not None:
        lines.append(tr("rules.probation_extend", below=format_points(settings.probation_extend_below)))
    for rule in rulebook.multi_year_rules:
        if rule.consecutive_failing_years == 1:
            lines.append(tr("rules.failing_once", consequence=rule.consequence.get(tr.lang)))
        elif rule.consecutive_failing_years:
            lines.append(tr("rules.failing_years", years=rule.consecutive_failing_years, consequence=rule.consequence.get(tr.lang)))
        else:
            lines.append(tr("rules.multi_year", consequence=rule.consequence.get(tr.lang)))
    return lines


def _percent(share: Decimal) -> str:
    return format_points(share * 100)


def _item_value(tr: Translator, item: Item, category: Category, rulebook: Rulebook) -> str:
    per_post = tr("rules.per_post") if item.per_post else ""
    cap = "" if item.cap is None else tr("rules.item_cap", value=format_points(item.cap), per_post=Safe(per_post),
                                          period=tr(f"period.{category.period.value}"))
    match item.kind:
        case ItemKind.FIXED:
            return _signed(item.value) + per_post + cap
        case ItemKind.RANGED:
            return f"{format_points(item.min)}…{format_points(item.max)}{per_post}{cap}"
        case ItemKind.ALLOTMENT:
            events = ", ".join(
                f"{e.name.get(tr.lang)} {_signed(e.value) if e.value is not None else format_points(e.min) + '…' + format_points(e.max)}"
                for e in item.events
            )
            return tr("rules.allotment", full=format_points(item.full), events=events) + per_post + cap
        case ItemKind.ZERO_OUT:  # 张店's veto clears the half (scoring zeroes the half under weighted halves)
            halves = rulebook.year_result.method is YearMethod.WEIGHTED_HALVES
            return tr("rules.zero_out_half" if halves else "rules.zero_out")
    return ""


@domain_errors
@naming_branch
async def history_command(update: Update, context: Context) -> None:
    svc = services(context)
    assert update.effective_user is not None
    if not is_private(update):
        await reply(update, translator(update)("points.go_private"))
        return
    if context.args:
        branch, me = await svc.points.asker(update.effective_user.id)
        tr = translator(update, branch)
        if not (await svc.roster.roles(me)) & DECIDER_ROLES:
            await reply(update, tr("error.auth.needs_role", roles=tr("role.recorder")))
            return
        member = await svc.roster.find(branch, " ".join(context.args))
        rows, origins = await svc.points.history(branch, member)
    else:  # the branch, the member and the rows in one read
        branch, member, rows, origins = await svc.points.own_history(update.effective_user.id)
        tr = translator(update, branch)
    lines = [tr("history.header", name=member.name, count=len(rows))]
    lines.extend(map(LedgerLines(tr, rulebook_of(branch), origins, numbered=True), rows))
    if not rows:
        lines.append(tr("history.empty"))
    await reply(update, "\n".join(lines))


@domain_errors
async def pending_command(update: Update, context: Context) -> None:
    svc = services(context)
    assert update.effective_user is not None
    if not is_private(update):
        await reply(update, translator(update)("points.go_private"))
        return
    branch = await current_branch(update, context)
    tr = translator(update, branch)
    waiting = await svc.declarations.pending(branch, actor(update.effective_user))
    if not waiting:
        await reply(update, tr("pending.none"))
        return
    await reply(update, tr("pending.header", count=len(waiting)))
    me = await svc.roster.member_of(branch, update.effective_user.id)
    for declaration, member in waiting[:20]:
        markup = None if member.id == me.id else keyboard(tr, branch, declaration)
        sent = await reply(update, card(tr, branch, declaration, member), reply_markup=markup)
        if sent is not None and markup is not None:
            await svc.declarations.remember_message(declaration.id, sent.chat_id, sent.message_id)


@domain_errors
async def branch_command(update: Update, context: Context) -> None:
    """In private: the branch you are in, or a choice among several. In a group: which branch the group
    is (one group is one branch; switching is for the private chat)."""
    svc = services(context)
    assert update.effective_user is not None
    if not is_private(update):
        branch = await current_branch(update, context)  # a group not set up is told so
        await reply(update, translator(update, branch)("branch.this_group", branch=branch.title))
        return
    tr = translator(update)
    mine = await svc.branches.branches_of(update.effective_user.id)
    if not mine:
        await reply(update, tr("error.branch.none_for_user"))
        return
    if len(mine) == 1:
        await reply(update, translator(update, mine[0])("branch.only", branch=mine[0].title))
        return
    text = tr("branch.choose")
    try:
        current = (await svc.branches.private_branch(update.effective_user.id)).title
        if (flow := private_flow(context.application, update.effective_user, context.bot)) is not None:
            # no buttons while a flow is open: its draft belongs to this branch (the press is refused too)
            await reply(update, tr("branch.current", branch=current) + "\n" + tr("branch.busy", flow=tr(f"flow.name.{flow}")))
            return
        text += "\n" + tr("branch.current", branch=current)
    except DomainError:  # none chosen yet
        pass
    buttons = [[InlineKeyboardButton(b.title[:40], callback_data=f"br:{b.id}")] for b in mine]
    await reply(update, text, reply_markup=InlineKeyboardMarkup(buttons))


@domain_errors
async def branch_chosen(update: Update, context: Context) -> None:
    query = update.callback_query
    assert query is not None and query.data is not None
    flow = private_flow(context.application, query.from_user, context.bot)
    if flow is not None:  # the flow's draft belongs to the branch it began in: finish or cancel it first
        tr = translator(update)
        await answer(query, tr("branch.busy", flow=tr(f"flow.name.{flow}")), alert=True)
        return
    branch = await services(context).branches.choose(query.from_user.id, int(query.data.split(":")[1]))
    tr = translator(update, branch)
    await answer(query)
    await edit_or_send(query, tr("branch.chosen", branch=branch.title))


@domain_errors
@naming_branch
async def record_command(update: Update, context: Context) -> None:
    """/record <member> <item> [event] [value] [date] <reason>: a recorder's entry (deduction, bonus,
    assessment). A fixed value typed that is not the item's is refused (it used to become the reason); a
    zero-out (一票否决) waits for a confirm button, and once written the member and the secretary are told."""
    svc = services(context)
    assert update.effective_user is not None and update.effective_message is not None
    branch = await current_branch(update, context)
    tr = translator(update, branch)
    args = list(context.args or [])
    if len(args) < 3:
        await reply(update, tr("record.usage"))
        return
    target = await svc.roster.find(branch, args.pop(0))
    rulebook = rulebook_of(branch)
    item = rulebook.item(args.pop(0))
    if item is None:
        raise InvalidInput("record.item_not_recordable")
    event_code = None
    value = item.value
    if item.kind is ItemKind.ALLOTMENT:
        event = item.event(args.pop(0) if args else "")
        if event is None:
            raise InvalidInput("record.needs_event", events=", ".join(e.code for e in item.events))
        event_code, value = event.code, event.value
    fixed = value is not None and item.kind is not ItemKind.ZERO_OUT  # a fixed item, or an allotment's fixed loss
    if item.kind is ItemKind.ZERO_OUT:
        value = Decimal(0)
    elif value is None:
        try:
            value = Decimal(args.pop(0)) if args else None
        except InvalidOperation:
            value = None
        if value is None:
            raise InvalidInput("record.needs_value")
    if fixed and args and not _looks_like_date(args[0]) and (typed := _number(args[0])) is not None:
        if typed != value:  # a fixed value typed otherwise: refused, not put into the reason
            raise InvalidInput("record.fixed_value", value=format_points(value))
        args.pop(0)  # the item's own value, typed out: taken as said
    day = svc.clock.today(branch.timezone)
    if args and _looks_like_date(args[0]):  # the day it happened, e.g. a meeting earlier in the month
        day = svc.declarations.parse_record_date(branch, args.pop(0))
    reason = " ".join(args)
    reference = f"msg:{update.effective_message.chat_id}:{update.effective_message.message_id}"
    if item.kind is ItemKind.ZERO_OUT:  # the year's points become 0: checked, then confirmed before written
        await svc.points.record(branch, actor(update.effective_user), target, item.code, value, day, reason,
                                reference=reference, write=False)
        token = await keep_confirm(update, context, "zero_out", branch, {
            "member": target.id, "item": item.code, "day": day.isoformat(), "reason": reason, "reference": reference})
        rows = [[InlineKeyboardButton(tr("record.zero_out_button"), callback_data=f"rz:ok:{token}"),
                 InlineKeyboardButton(tr("record.zero_out_cancel"), callback_data=f"rz:no:{token}")]]
        await reply(update, tr("record.zero_out_confirm", name=target.name, item=item.name.get(tr.lang),
                               date=day.isoformat(), reason=clean_text(reason)),
                    reply_markup=InlineKeyboardMarkup(rows))
        return
    row = await svc.points.record(
        branch, actor(update.effective_user), target, item.code, value, day, reason,  # type: ignore[arg-type]
        reference=reference, event_code=event_code,
    )
    if row is None:
        await reply(update, tr("record.already"))
        return
    await reply(update, tr("record.done", name=target.name, line=Safe(_numbered(tr, rulebook, row)), number=row.id))


@domain_errors
async def zero_out_pressed(update: Update, context: Context) -> None:
    """The zero-out's confirm (rz:ok) or cancel (rz:no): only the one who sent the /record; the press
    re-checks everything (the service); the confirm is taken once, and the entry's reference is the
    command's, so a second press writes nothing."""
    query = update.callback_query
    press = await confirm_press(update, context, "zero_out", sender_only=True)
    if press is None or query is None or query.message is None:
        return
    claim = await take_unless_cancelled(update, context, press, "record.zero_out_cancelled")
    if claim is None:
        return
    svc, branch, tr, details = services(context), press.branch, press.tr, press.details
    item_code, day, reason = str(details["item"]), str(details["day"]), str(details["reason"])
    rulebook = rulebook_of(branch)
    who = actor(query.from_user)
    async with giving_back(context, claim):
        target = await svc.roster.find(branch, str(details["member"]))
        row = await svc.points.record(branch, who, target, item_code, Decimal(0), date.fromisoformat(day), reason,
                                      reference=str(details["reference"]))
    await answer(query)
    if row is None:
        await edit_or_send(query, tr("record.already"))
        return
    await edit_or_send(query, tr("record.done", name=target.name, line=Safe(_numbered(tr, rulebook, row)), number=row.id))
    item = rulebook.item(item_code)
    assert item is not None
    if target.user_id is not None:  # the member is told, privately, in their language
        mine = Translator(language_of(target.language, branch.language))
        await send_private(context, target.user_id, mine("record.zero_out_told", branch=branch.title, item=item.name.get(mine.lang),
                                                         date=day, reason=row.reason or "", number=row.id))
    for manager in await svc.points.managers_to_tell(branch, who, target):
        theirs = Translator(language_of(manager.language, branch.language))
        await send_private(context, manager.user_id, theirs(  # type: ignore[arg-type]
            "record.zero_out_manager", branch=branch.title, name=target.name, item=item.name.get(theirs.lang), date=day,
            reason=row.reason or "", by=query.from_user.full_name, number=row.id))


@domain_errors
@naming_branch
async def undo_command(update: Update, context: Context) -> None:
    """/undo ENTRY REASON: take a mistaken entry back (a reversing row) after a confirm button — recorder,
    secretary or deputy, as for /record. ENTRY is the number /history and /record show."""
    svc = services(context)
    assert update.effective_user is not None
    branch = await current_branch(update, context)
    tr = translator(update, branch)
    args = list(context.args or [])
    if len(args) < 2 or not re.fullmatch(r"#?\d{1,12}", args[0]):
        await reply(update, tr("undo.usage"))
        return
    check = await svc.points.check_reverse(branch, actor(update.effective_user), int(args[0].lstrip("#")), " ".join(args[1:]))
    original = check.original
    token = await keep_confirm(update, context, "undo", branch, {"entry": original.id, "reason": check.reason})
    rows = [[InlineKeyboardButton(tr("undo.confirm_button"), callback_data=f"rv:ok:{token}"),
             InlineKeyboardButton(tr("undo.cancel_button"), callback_data=f"rv:no:{token}")]]
    text = tr("undo.confirm", number=original.id, name=check.member.name,
              line=Safe(ledger_line(tr, rulebook_of(branch), original)), reason=check.reason)
    if check.declaration_id is not None:
        text += "\n" + tr("undo.from_declaration", declaration=check.declaration_id)
    await reply(update, text, reply_markup=InlineKeyboardMarkup(rows))


@domain_errors
async def undo_pressed(update: Update, context: Context) -> None:
    """/undo's confirm (rv:ok) or cancel (rv:no): only whoever sent the /undo; the service re-checks the
    presser's role, the entry and the year; the confirm is taken once, and a second reversal would be
    refused anyway (the row is reversed once)."""
    query = update.callback_query
    press = await confirm_press(update, context, "undo", sender_only=True)
    if press is None or query is None or query.message is None:
        return
    claim = await take_unless_cancelled(update, context, press, "undo.cancelled")
    if claim is None:
        return
    svc, branch, tr = services(context), press.branch, press.tr
    original_id, reason = int(press.details["entry"]), str(press.details["reason"])
    async with giving_back(context, claim):
        done = await svc.points.reverse(branch, actor(query.from_user), original_id, reason)
    assert done.reversal is not None
    rulebook = rulebook_of(branch)
    await answer(query)
    await edit_or_send(query, tr("undo.done", number=done.original.id, name=done.member.name,
                                 line=Safe(_numbered(tr, rulebook, done.reversal))))
    member = done.member
    if member.user_id is not None:  # the member is told, privately, in their language
        mine = Translator(language_of(member.language, branch.language))
        text = mine("undo.told", branch=branch.title, number=done.original.id,
                    line=Safe(ledger_line(mine, rulebook, done.original)), reason=reason, reversal=done.reversal.id)
        if done.declaration_id is not None:
            text += "\n" + mine("undo.from_declaration", declaration=done.declaration_id)
        await send_private(context, member.user_id, text)


def _numbered(tr: Translator, rulebook: Rulebook, row: LedgerRow) -> str:
    """A ledger line with the entry's number, as /history shows it (the number /undo and /object take)."""
    return tr("history.numbered", number=row.id, line=Safe(ledger_line(tr, rulebook, row)))


def _number(word: str) -> Decimal | None:
    try:
        value = Decimal(word)
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def _looks_like_date(word: str) -> bool:
    return bool(re.fullmatch(r"\d{4}-\d{1,2}-\d{1,2}|\d{1,2}-\d{1,2}", word))


def register(app: Application) -> None:
    app.add_handler(CommandHandler("start", start_command))
    app.add_handler(CommandHandler("help", help_command))
    app.add_handler(CommandHandler("points", points_command))
    app.add_handler(CommandHandler("rules", rules_command))
    app.add_handler(CommandHandler("history", history_command))
    app.add_handler(CommandHandler("pending", pending_command))
    app.add_handler(CommandHandler("branch", branch_command))
    app.add_handler(CallbackQueryHandler(branch_chosen, pattern=r"^br:\d{1,12}$"))
    app.add_handler(CommandHandler("record", record_command))
    app.add_handler(CallbackQueryHandler(zero_out_pressed, pattern=rf"^rz:(ok|no):{CONFIRM_TOKEN}$"))
    app.add_handler(CommandHandler("undo", undo_command))
    app.add_handler(CallbackQueryHandler(undo_pressed, pattern=rf"^rv:(ok|no):{CONFIRM_TOKEN}$"))


__all__ = ["register", "Branch"]
