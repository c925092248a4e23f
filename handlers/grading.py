"""Telegram glue for the year end's grading: /grade (preview, tie, confirm, finalise) and /reopen.

Commands (private, the secretary): ``/grade [YEAR]`` shows the preview — or, while the year's results
are in publicity, its state, and once the window has closed the recomputed result to finalise;
``/grade finalise [YEAR]`` the same finalise screen; ``/reopen YEAR reason``.

Buttons (prefix ``gr:``, the branch in the data, never any authority — the service re-checks the role):
``gr:k:<branch>:<year>:<mask>`` pick among a tie across the quota cut (bitmask over the tied, sorted by
id); ``gr:ok:<branch>:<year>:<mask>:<fingerprint>`` confirm and publicise exactly the result shown;
``gr:f:<branch>:<year>:<mask>:<fingerprint>`` finalise and lock; ``gr:x:<branch>:<year>`` cancel.

The annual publicity notice is rendered and sent here (``send_publicity``); schedules/grading.py sends it
again when a send failed, and reminds the secretary when the window has closed.
"""

from __future__ import annotations

import asyncio
import io
import logging
import re
from collections.abc import Sequence
from decimal import Decimal

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, InputFile, Update
from telegram.error import BadRequest, Forbidden, TelegramError
from telegram.ext import Application, CallbackQueryHandler, CommandHandler

from bot.domain.grading import GradeLine, GradeResult
from bot.domain.notice import Notice
from bot.domain.records import Branch, Role
from bot.domain.rulebook import Band, Rulebook
from bot.errors import InvalidInput
from bot.i18n import Safe, Translator, catalog, escape, format_points
from bot.services import Services
from bot.services.grading import Draft, FinalView, GradeWarning, PublicityView
from handlers.common import (
    Context,
    actor,
    answer,
    current_branch,
    domain_errors,
    following,
    is_private,
    plain,
    point_to_private,
    refusal,
    reply,
    send_group,
    send_group_parts,
    send_private,
    services,
    translator,
)
from handlers.notices import confirm_keyboard, local_time, member_tr, pack, period_label
from handlers.queries import band_threshold, stars_shown

log = logging.getLogger(__name__)

MENU: dict[str, tuple[str, ...]] = {"private": ("grade", "reopen"), "group": (), "admin": ()}

PUBLICITY_KIND = "grade_publicity"  # the scheduled effect that sends the annual notice (also claimed here)
# Flags shown in the group's publicity: how a member's result reads; the consequences (mentoring,
# lagging, …) are for the secretary's preview and the forms, not the group.
PUBLIC_FLAGS = ("exempt", "probationary", "not_enough_months", "zeroed", "quota", "democratic_unqualified",
                "transferred_out")  # a member listed without a figure says why
_YEAR = re.compile(r"^\d{4}$")
_FINALISE_WORDS = ("finalise", "finalize", "final", "定级")
_CHANGED = ("grade.changed", "grade.tie_stale")


# --- rendering ---------------------------------------------------------------------------------------


def joined(tr: Translator, names: Sequence[str]) -> str:
    return tr("common.list_separator").join(names)


def stars_text(stars: int | None) -> str:
    return "★" * stars if stars else ""


def band_named(tr: Translator, rulebook: Rulebook, band: Band) -> str:
    """A band told apart from the others (HTML): its label, its stars ("无星" where the scheme gives
    stars at all) and where it starts — 浠水's three "不合格" bands are ★★ from 55, ★ from 50, 无星 below 50
    (seed 004: 55-59分为2星党员，50-54分为1星党员，50分以下无星)."""
    stars = stars_shown(tr, rulebook, band.stars)
    threshold = band_threshold(tr, rulebook, band)
    return tr("grade.band_named", band=Safe(label_before_count(tr, band.label.get(tr.lang))), stars=stars,
              threshold=Safe(tr("grade.band_threshold", threshold=threshold) if threshold else "")).strip()


_LABEL_PARTS = re.compile(r"^(?P<head>[^：:]+?)\s*[：:]\s*(?P<tail>[^：:]+)$")


def label_before_count(tr: Translator, label: str) -> str:
    """A band's label where a count follows it (HTML): a label in two parts, its figure and its name (尖草坪's
    "60分以下：不合格党员"), has the name in brackets — "60分以下（不合格党员）：2 人", not a second colon."""
    parts = _LABEL_PARTS.match(label)
    if parts is None:
        return escape(label)
    return tr("grade.band_parts", head=parts["head"], tail=parts["tail"])


def band_label(tr: Translator, line: GradeLine) -> str:
    label = line.label_en if tr.lang == "en" else line.label_zh
    return label or line.label_zh or line.band_code or ""


def flag_label(tr: Translator, rulebook: Rulebook, code: str) -> str:
    """A flag's name: the rulebook's own tier label (张店: "排名后3%：落后党员"), else the catalog's, else a
    custom rule's consequence or tier label, else the code."""
    side = {"top_tier": "top", "bottom_tier": "bottom"}.get(code)
    tier = next((t for t in rulebook.ranking_tiers if t.side == side), None) if side else None
    if tier is not None:
        return tier.label.get(tr.lang)
    if f"grade.flag.{code}" in catalog(tr.lang):
        return tr(f"grade.flag.{code}")
    for rule in rulebook.multi_year_rules:
        if rule.code == code:
            return rule.consequence.get(tr.lang)
    for tier in rulebook.ranking_tiers:
        if tier.code == code:
            return tier.label.get(tr.lang)
    return code


def _flags(tr: Translator, rulebook: Rulebook, codes: Sequence[str]) -> str:
    return tr("grade.flags", flags=joined(tr, [flag_label(tr, rulebook, c) for c in codes])) if codes else ""


def result_line(tr: Translator, rulebook: Rulebook, line: GradeLine, public: bool = False) -> str:
    """One member's year: rank, name, figure, band and stars, and (for the secretary) every flag."""
    codes = [c for c in line.flags if c in PUBLIC_FLAGS] if public else line.flags
    if line.graded and line.figure is not None and line.band_code is None:  # no bands: the rank is the grade
        text = tr("grade.line_ranked", rank=line.rank or "-", name=line.name, figure=line.figure)
    elif line.graded and line.figure is not None:
        text = tr("grade.line", rank=line.rank or "-", name=line.name, figure=line.figure, band=band_label(tr, line),
                  stars=stars_text(line.stars)).rstrip()  # no stars: the line ends with the band
    elif line.figure is not None:
        text = tr("grade.line_ungraded", name=line.name, figure=line.figure)
    else:
        text = tr("grade.line_unscored", name=line.name)
    if line.half_figures:  # 张店 judges each half-year: show both with their ranks
        text += tr("grade.halves", halves=Safe(tr("common.list_separator").join(
            _half_text(tr, line, half, figure) for half, figure in sorted(line.half_figures.items()))))
    return text + _flags(tr, rulebook, codes)


def _half_text(tr: Translator, line: GradeLine, half: int, figure: Decimal) -> str:
    """One half of a 张店 line: its figure and rank, or — rated 不合格 in that half's democratic evaluation —
    its figure marked as left out of the half's 考核评议 (seed 003 l.47), with no rank."""
    name = tr(f"grade.half_{half}")
    if half in line.excluded_halves:
        return tr("grade.half_excluded", half=name, figure=figure)
    return tr("grade.half", half=name, figure=figure, rank=line.half_ranks.get(half, "-"))


def short_result(tr: Translator, line: GradeLine) -> str:
    """A figure with its band: "85 分 优秀 ★★★★★" (for changes and private messages)."""
    if line.figure is None:
        return tr("grade.short_unscored")
    if line.band_code is None:
        key = "grade.short_ranked" if line.graded and line.rank is not None else "grade.short_ungraded"
        return tr(key, figure=line.figure, rank=line.rank or "-")
    return tr("grade.short", figure=line.figure, band=band_label(tr, line), stars=stars_text(line.stars)).rstrip()


def distribution_text(tr: Translator, rulebook: Rulebook, result: GradeResult) -> str:
    graded = sum(1 for line in result.lines if line.graded)
    if not rulebook.bands:  # a scheme that ranks without bands (三门峡, 张店)
        return tr("grade.graded", graded=graded, listed=len(result.lines))
    parts = [tr("grade.band_count", band=Safe(band_named(tr, rulebook, band)), count=result.distribution.get(band.code, 0))
             for band in rulebook.bands]
    text = tr("grade.distribution", graded=graded, listed=len(result.lines), parts=joined(tr, parts))
    if rulebook.quota is not None and result.quota_places is not None:
        band = next((b for b in rulebook.bands if b.code == rulebook.quota.band), None)
        text += "\n" + tr("grade.quota", band=band.label.get(tr.lang) if band else rulebook.quota.band,
                          places=result.quota_places, share=format_points(rulebook.quota.share * 100))
    return text


def flag_summary(tr: Translator, rulebook: Rulebook, result: GradeResult) -> list[str]:
    found: dict[str, list[str]] = {}
    for line in result.lines:
        for code in line.flags:
            found.setdefault(code, []).append(line.name)
    return [tr("grade.flag_count", flag=flag_label(tr, rulebook, code), count=len(names), names=joined(tr, names))
            for code, names in found.items()]


def warning_text(tr: Translator, warning: GradeWarning, rulebook: Rulebook) -> str:
    """A warning in the reader's language; ``{notice}`` names the branch's periodic notice (三门峡's is
    quarterly, not monthly)."""
    params = {k: joined(tr, v) if isinstance(v, list) else v for k, v in warning.params.items()}
    params.setdefault("notice", tr(f"grade.notice_kind.{rulebook.settings.review_period.value}"))
    return tr(str(warning), **params)


def change_line(tr: Translator, before: GradeLine, after: GradeLine) -> str:
    return tr("grade.change", name=after.name, before=Safe(short_result(tr, before)), after=Safe(short_result(tr, after)))


def screen_blocks(tr: Translator, draft: Draft) -> list[str]:
    """The preview (or the finalise screen) as blocks: summary with flags and warnings, then every line."""
    rulebook, result, branch = draft.rulebook, draft.result, draft.branch
    key = "grade.header" if draft.stage == "preview" else "grade.header_final"
    head = [tr(key, branch=branch.title, year=draft.year, rulebook=rulebook.name.get(tr.lang))]
    if draft.stage == "finalise" and draft.notice is not None:
        head.append(tr("grade.finalise_intro", year=draft.year, closed=local_time(draft.notice.closes_at, branch)))
    elif draft.stage == "publicity" and draft.notice is not None:
        head.append(tr("grade.publicity_running", year=draft.year, closes=local_time(draft.notice.closes_at, branch))
                    if draft.notice.sent else tr("grade.publicity_sending", year=draft.year))
    head.append(distribution_text(tr, rulebook, result))
    if result.provisional:
        head.append(tr("grade.provisional"))
    flags = flag_summary(tr, rulebook, result)
    if flags:
        head.append(tr("grade.flags_header") + "\n" + "\n".join(flags))
    if draft.stage != "preview":
        if draft.changes:
            head.append(tr("grade.changes_header", count=len(draft.changes)) + "\n"
                        + "\n".join(change_line(tr, before, after) for before, after in draft.changes))
        else:
            head.append(tr("grade.no_changes"))
    if draft.warnings:
        head.append(tr("grade.warnings_header") + "\n" + "\n".join("⚠ " + warning_text(tr, w, rulebook) for w in draft.warnings))
    lines = [tr("grade.lines_header")] + ([result_line(tr, rulebook, line) for line in result.lines] or [tr("grade.nobody")])
    return ["\n".join(head), "\n".join(lines)]


def control(tr: Translator, draft: Draft) -> tuple[str, InlineKeyboardMarkup | None]:
    """The last message: the tie to resolve and the buttons (confirm and publicise / finalise and lock)."""
    branch, year = draft.branch.id, draft.year
    text: list[str] = []
    rows: list[list[InlineKeyboardButton]] = []
    if draft.tie:
        names = {line.member_id: line for line in draft.result.lines}
        tied = [names[m] for m in draft.tie if m in names]
        figure = tied[0].figure if tied else None
        text.append(tr("grade.tie", count=len(draft.tie), places=draft.free, figure=figure if figure is not None else "-"))
        chosen = [names[m].name for m in draft.chosen if m in names]
        text.append(tr("grade.tie_chosen", names=joined(tr, chosen)) if chosen else tr("grade.tie_none"))
        for index, member_id in enumerate(draft.tie):
            line = names.get(member_id)
            if line is None:
                continue
            mark = "☑" if member_id in draft.chosen else "☐"
            rows.append([InlineKeyboardButton(f"{mark} {line.name} {format_points(line.figure or 0)}"[:60],
                                              callback_data=f"gr:k:{branch}:{year}:{draft.mask ^ (1 << index)}")])
    if draft.stage == "preview" and not draft.scored:  # nobody to grade: nothing to publicise or lock
        text.append(tr("grade.nothing_to_publicise", year=year))
    elif draft.stage == "preview":
        text.append(tr("grade.confirm_hint", days=draft.publicity_days))
        confirm = f"gr:ok:{branch}:{year}:{draft.mask}:{draft.fingerprint}"
        rows.append([InlineKeyboardButton(tr("grade.confirm_button"), callback_data=confirm),
                     InlineKeyboardButton(tr("common.cancel"), callback_data=f"gr:x:{branch}:{year}")])
    elif draft.stage == "finalise":
        if draft.objections:
            text.append(tr("grade.objections_open", count=draft.objections))
        text.append(tr("grade.finalise_hint", year=year))
        finalise = f"gr:f:{branch}:{year}:{draft.mask}:{draft.fingerprint}"
        rows.append([InlineKeyboardButton(tr("grade.finalise_button"), callback_data=finalise),
                     InlineKeyboardButton(tr("common.cancel"), callback_data=f"gr:x:{branch}:{year}")])
    else:  # the publicity is running: nothing to press until its window has closed
        text.append(tr("grade.finalise_later", year=year))
        rows = []
    return "\n".join(text), (InlineKeyboardMarkup(rows) if rows else None)


async def show_screen(update: Update, context: Context, draft: Draft, chart: bool = False) -> None:
    tr = translator(update, draft.branch)
    for block in screen_blocks(tr, draft):
        await reply(update, block)
    if chart:
        await _chart(update, draft)
    text, markup = control(tr, draft)
    await reply(update, text, reply_markup=markup)


async def _chart(update: Update, draft: Draft) -> None:
    """The distribution with the band lines (bot.charts, from the exports feature), when it can be drawn.
    A scheme that grades by rank (三门峡, 张店) has no score lines: the histogram alone, captioned so."""
    message = update.effective_message
    figures = [line.figure for line in draft.result.lines if line.graded and line.figure is not None]
    if message is None or not figures:
        return
    tr = translator(update, draft.branch)
    try:
        from bot.charts import distribution_png

        png = await asyncio.to_thread(  # drawing takes a moment: keep the event loop free
            distribution_png, plain(tr("grade.chart_title", year=draft.year, branch=draft.branch.title)), figures,
            draft.rulebook.bands, xlabel=plain(tr("grade.chart_x")), ylabel=plain(tr("grade.chart_y")), lang=tr.lang)
        caption = None if draft.rulebook.bands else tr("grade.chart_ranked")
        await message.reply_photo(InputFile(io.BytesIO(png), filename=f"grade-{draft.year}.png"), caption=caption)
    except (ImportError, ValueError, TelegramError) as exc:  # the chart is a help, never a reason to fail
        log.warning("could not send the distribution chart: %s", exc)


# --- the publicity notice ------------------------------------------------------------------------------


def publicity_blocks(tr: Translator, view: PublicityView, notice: Notice) -> list[str]:
    branch, rulebook, result = view.branch, view.rulebook, view.result
    head = [tr("grade.publicity_header", branch=branch.title, period=period_label(tr, notice.period_key)),
            tr("grade.publicity_window", days=view.round.publicity_days, closes=local_time(notice.closes_at, branch)),
            distribution_text(tr, rulebook, result)]
    lines = [result_line(tr, rulebook, line, public=True) for line in result.lines]
    if not lines:
        lines = [tr("grade.nobody")]
    return ["\n".join(head), "\n".join(lines), tr("grade.publicity_footer", count=len(result.lines))]


async def send_publicity(app: Application, branch: Branch, round_id: int) -> None:
    """Send the round's annual notice to the group (only the parts not sent yet), then ask each scored
    member to confirm their year (once each). Safe to repeat."""
    svc: Services = app.bot_data["services"]
    view = await svc.grading.publicity(branch, round_id)
    notice = view.notice
    if not notice.sent:
        if notice.parts_sent == 0:
            notice = await svc.grading.start_window(view)
        pieces = pack(publicity_blocks(Translator(branch.language), view, notice))
        branch = await send_group_parts(app, branch, pieces, notice.parts_sent,
                                        lambda parts: svc.notices.part_sent(notice, parts))
        notice = await svc.notices.mark_sent(notice)
    lines = {line.member_id: line for line in view.result.lines}
    for member, _ in await svc.notices.to_ask(notice):
        line = lines.get(member.id)
        if line is None:
            continue
        mtr = member_tr(member, branch)
        text = mtr("grade.confirm_ask", branch=branch.title, period=period_label(mtr, notice.period_key),
                   result=Safe(short_result(mtr, line)), closes=local_time(notice.closes_at, branch))
        sent = await send_private(app, member.user_id, text, reply_markup=confirm_keyboard(mtr, notice))  # type: ignore[arg-type]
        await svc.notices.asked(notice, member, reached=sent is not None)


async def publish_now(app: Application, branch: Branch, round_id: int, key: str) -> bool:
    """Send the publicity right away under the scheduled effect's claim (the tick retries a failure)."""
    svc: Services = app.bot_data["services"]
    now = svc.clock.now()
    if not await svc.calendar.claim(branch.id, PUBLICITY_KIND, key, now):
        return False  # the tick has it
    try:
        await send_publicity(app, branch, round_id)
    except Exception as exc:  # noqa: BLE001 - recorded; the next ticks try again (retry=True)
        log.exception("sending the annual publicity of branch %s failed", branch.id)
        await svc.calendar.finish(branch.id, PUBLICITY_KIND, key, "failed", repr(exc)[:500])
        return False
    await svc.calendar.finish(branch.id, PUBLICITY_KIND, key, "done")
    return True


# --- /grade ---------------------------------------------------------------------------------------------


def _parse(args: list[str]) -> tuple[bool, int | None]:
    """(/grade finalise?, the year or None)."""
    finalise = bool(args) and args[0].lower() in _FINALISE_WORDS
    rest = args[1:] if finalise else args
    if len(rest) > 1 or (rest and not _YEAR.match(rest[0])):
        raise InvalidInput("grade.usage")
    return finalise, int(rest[0]) if rest else None


@domain_errors
async def grade_command(update: Update, context: Context) -> None:
    if not is_private(update):  # the preview names everyone's result: in private only
        await point_to_private(update, context, "grade.go_private", button="notice.open_private")
        return
    assert update.effective_user is not None
    svc = services(context)
    branch = await current_branch(update, context)
    finalise, year = _parse(list(context.args or []))
    if year is None:
        year = await svc.grading.default_year(branch)
    draft = await svc.grading.screen(branch, actor(update.effective_user), year)
    if finalise and draft.stage == "preview":
        raise InvalidInput("grade.not_publicised", year=year)
    if finalise and draft.stage == "publicity" and draft.notice is not None:
        raise InvalidInput("grade.window_open", closes=local_time(draft.notice.closes_at, branch))
    await show_screen(update, context, draft, chart=draft.stage == "preview")


def _data(query_data: str) -> list[str]:
    return query_data.split(":")


async def _fresh(update: Update, context: Context, branch: Branch, year: int) -> None:
    """After the figures changed under a button: the new screen, in full."""
    assert update.effective_user is not None
    draft = await services(context).grading.screen(branch, actor(update.effective_user), year)
    await show_screen(update, context, draft)


@domain_errors
async def pick_button(update: Update, context: Context) -> None:
    query = update.callback_query
    assert query is not None and query.data is not None
    _, _, branch_id, year, mask = _data(query.data)
    svc = services(context)
    branch = await svc.branches.by_id(int(branch_id))
    tr = translator(update, branch)
    try:
        draft = await svc.grading.screen(branch, actor(query.from_user), int(year), int(mask))
    except InvalidInput as error:
        if error.key not in _CHANGED:
            raise
        await answer(query, refusal(update, error, branch), alert=True)
        await _fresh(update, context, branch, int(year))
        return
    await answer(query)
    text, markup = control(tr, draft)
    try:
        await query.edit_message_text(text, reply_markup=markup)
    except BadRequest as exc:  # unchanged (a repeated press)
        log.debug("could not edit the grading control: %s", exc)


async def _act_on_preview(update: Update, context: Context, action: str):
    """Publicise or finalise exactly what the pressed preview showed. A stale preview (its fingerprint no
    longer matches) is refused with a fresh one; returns (view, branch, translator, year) or None."""
    query = update.callback_query
    assert query is not None and query.data is not None
    _, _, branch_id, year, mask, shown = _data(query.data)
    svc = services(context)
    branch = await svc.branches.by_id(int(branch_id))
    service: object = svc.grading
    if action == "publicise" and await svc.town_review.town_of(branch) is not None:
        service, action = svc.town_review, "submit"  # a branch in a town: the town reviews first
    try:
        view = await getattr(service, action)(branch, actor(query.from_user), int(year), int(mask), shown)
    except InvalidInput as error:
        if error.key not in _CHANGED:
            raise
        await answer(query, refusal(update, error, branch), alert=True)
        await _fresh(update, context, branch, int(year))
        return None
    return view, branch, translator(update, branch), year


async def _clear_buttons(query) -> None:
    try:
        await query.edit_message_reply_markup(None)
    except BadRequest as exc:
        log.debug("could not clear the grading buttons: %s", exc)


@domain_errors
async def confirm_button(update: Update, context: Context) -> None:
    query = update.callback_query
    acted = await _act_on_preview(update, context, "publicise")
    if acted is None:
        return
    view, branch, tr, year = acted
    if not isinstance(view, PublicityView):  # sent to the town for review; approval starts the publicity
        from handlers.town_review import submitted  # (imports this module)

        await submitted(update, context, view)
        return
    await answer(query, tr("grade.publicised_popup", year=year))
    await _clear_buttons(query)
    svc = services(context)
    sent = await publish_now(context.application, branch, view.round.id, view.notice.period_key)
    notice = (await svc.grading.publicity(branch, view.round.id)).notice
    if sent and notice.sent:
        await reply(update, tr("grade.publicised", year=year, closes=local_time(notice.closes_at, branch),
                               days=view.round.publicity_days))
    else:
        await reply(update, tr("grade.publicity_retry", year=year))


@domain_errors
async def finalise_button(update: Update, context: Context) -> None:
    query = update.callback_query
    acted = await _act_on_preview(update, context, "finalise")
    if acted is None:
        return
    view, _branch, tr, year = acted
    await answer(query, tr("grade.finalised_popup", year=year))
    await _clear_buttons(query)
    await reply(update, tr("grade.finalised", year=year))
    await _announce_final(context.application, view)
    await _send_documents(context.application, view)
    from handlers.town_review import tell_filed  # (imports this module)

    if (town := await tell_filed(context.application, view)) is not None:
        await reply(update, tr("town_review.filed", year=year, town=town))


async def _announce_final(app: Application, view: FinalView) -> None:
    branch = view.branch
    tr = Translator(branch.language)
    parts = [tr("grade.final_group", branch=branch.title, year=view.round.year, by=view.by.name),
             distribution_text(tr, view.rulebook, view.result)]
    if view.changes:
        parts.append(tr("grade.final_changes") + "\n" + "\n".join(change_line(tr, b, a) for b, a in view.changes))
    for piece in pack(parts):
        try:
            sent = await send_group(app, branch, piece)
        except BadRequest as exc:
            sent = None
            log.warning("could not announce the final grades in branch %s: %s", branch.id, exc)
        if sent is None:
            return
        branch = following(branch, sent)


async def _send_documents(app: Application, view: FinalView) -> None:
    """The year's forms (the exports feature) to the secretary and the recorders, when it offers them."""
    svc: Services = app.bot_data["services"]
    try:  # personal data (phone, birth month…) only in the secretary's copy
        files = {personal: await svc.exports.year_documents(view.branch, view.round.year, personal=personal)
                 for personal in (False, True)}
    except Exception:  # noqa: BLE001 - the year is final either way; /export can make them again
        log.exception("could not build the year's documents for branch %s", view.branch.id)
        return
    secretaries = {m.id for m in await svc.roster.holders(view.branch, (Role.SECRETARY,))}
    for member in await svc.grading.export_recipients(view.branch):
        mtr = member_tr(member, view.branch)
        reached = await send_private(app, member.user_id, mtr("grade.documents", year=view.round.year))  # type: ignore[arg-type]
        if reached is None:
            continue
        for name, data in files[member.id in secretaries]:
            try:
                await app.bot.send_document(member.user_id, InputFile(io.BytesIO(data), filename=name))  # type: ignore[arg-type]
            except (BadRequest, Forbidden) as exc:
                log.info("could not send %s to %s: %s", name, member.user_id, exc)
                break


@domain_errors
async def cancel_button(update: Update, context: Context) -> None:
    query = update.callback_query
    assert query is not None
    await answer(query)
    try:
        await query.edit_message_text(translator(update)("grade.cancelled"))
    except BadRequest as exc:
        log.debug("could not edit the grading control: %s", exc)


# --- the finalise reminder (schedules/grading.py) ----------------------------------------------------------


async def remind_finalise(app: Application, branch: Branch, round_id: int) -> int:
    """The window has closed: each secretary gets the recomputed result with the finalise button."""
    svc: Services = app.bot_data["services"]
    draft = await svc.grading.finalise_screen(branch, round_id)
    if draft is None:
        return 0
    reached = 0
    for secretary in await svc.grading.secretaries(branch):
        tr = member_tr(secretary, branch)
        blocks = screen_blocks(tr, draft)
        blocks[0] = tr("grade.window_closed", year=draft.year) + "\n" + blocks[0]
        text, markup = control(tr, draft)
        sent = None
        for piece in pack(blocks):
            sent = await send_private(app, secretary.user_id, piece)  # type: ignore[arg-type]
            if sent is None:
                break
        if sent is None:
            continue
        if await send_private(app, secretary.user_id, text, reply_markup=markup) is not None:  # type: ignore[arg-type]
            reached += 1
    return reached


# --- /reopen ----------------------------------------------------------------------------------------------


_REOPEN_ARGS = re.compile(r"^/reopen(?:@\w+)?\s+(\d{4})\s*(.*)$", re.S)


@domain_errors
async def reopen_command(update: Update, context: Context) -> None:
    if not is_private(update):
        await point_to_private(update, context, "grade.reopen_go_private", button="notice.open_private")
        return
    message = update.effective_message
    assert message is not None and update.effective_user is not None
    svc = services(context)
    branch = await current_branch(update, context)
    tr = translator(update, branch)
    match = _REOPEN_ARGS.match(message.text or "")
    if match is None:
        await reply(update, tr("grade.reopen_usage"))
        return
    view = await svc.grading.reopen(branch, actor(update.effective_user), int(match[1]), match[2])
    year = view.round.year
    await reply(update, tr("grade.reopened", year=year))
    gtr = Translator(branch.language)
    try:
        await send_group(context, branch, gtr("grade.reopened_group", branch=branch.title, year=year,
                                              by=view.by.name, reason=view.reopen.reason))
    except BadRequest as exc:
        log.warning("could not announce the re-opening in branch %s: %s", branch.id, exc)
    from handlers.town_review import tell_reopened  # (imports this module)

    await tell_reopened(context.application, view)  # a year filed with the town: its administrators hear it


def register(app: Application) -> None:
    """Add this module's handlers (called in bot.app.register_handlers)."""
    app.add_handler(CommandHandler("grade", grade_command))
    app.add_handler(CommandHandler("reopen", reopen_command))
    app.add_handler(CallbackQueryHandler(pick_button, pattern=r"^gr:k:\d{1,12}:\d{4}:\d{1,10}$"))
    app.add_handler(CallbackQueryHandler(confirm_button, pattern=r"^gr:ok:\d{1,12}:\d{4}:\d{1,10}:[0-9a-f]{10}$"))
    app.add_handler(CallbackQueryHandler(finalise_button, pattern=r"^gr:f:\d{1,12}:\d{4}:\d{1,10}:[0-9a-f]{10}$"))
    app.add_handler(CallbackQueryHandler(cancel_button, pattern=r"^gr:x:\d{1,12}:\d{4}$"))


__all__ = ["register", "send_publicity", "remind_finalise", "PUBLICITY_KIND"]
