"""Telegram glue for the public notice (公示): objections, decisions, appeals and confirmations.

Commands: /object (private; lists the open notice's entries, or ``/object ENTRY reason``), /public
(supervisors, secretaries, deputies, private: ``/public ENTRY what the public said`` records an objection
of the public, 群众反映, in their name), /appeal (private), /objections (deciders, private), /unconfirmed
(recorders and managers). Buttons (prefix ``nt:``): ``nt:ob:<entry>`` object to an entry, ``nt:pb:<entry>``
record the public's objection to it, ``nt:pg:<page>`` / ``nt:pp:<page>`` page the lists,
``nt:up|wd|rs:<objection>`` decide, ``nt:cf|ds:<notice>`` confirm or dispute one's score,
``nt:sg:<notice>`` the secretary's or a deputy's sign-off of the notice (支部书记签字确认),
``nt:x`` cancel. Every press is checked by the service against the presser's roles.
The rendering of the notice itself lives here too (one block per member, packed into messages by
Telegram's visible length); schedules/notices.py posts it.
"""

from __future__ import annotations

import logging
import math
import re
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import MessageLimit
from telegram.error import BadRequest, Forbidden
from telegram.ext import Application, CallbackQueryHandler, CommandHandler, ConversationHandler, MessageHandler, filters

from bot.domain.meetings import Meeting
from bot.domain.notice import (Capped, MemberSummary, Notice, NoticeMember, Objection, ObjectionKind, ObjectionStatus, Verdict,
                               months_of, one_line, periodic)
from bot.domain.records import Branch, LedgerRow, Member
from bot.domain.rulebook import Rulebook, YearMethod
from bot.errors import DomainError, InvalidInput
from bot.i18n import Safe, Translator, format_points, language_of
from bot.services.branches import rulebook_of
from bot.services.notices import CloseSummary, NoticeView, ObjectionView, SignOff
from handlers.branch_context import refusal_naming_branch
from handlers.common import (
    FlowInProgress,
    point_to_private,
    Context,
    actor,
    answer,
    chunks,
    current_branch,
    domain_errors,
    is_private,
    plain,
    refusal,
    reply,
    send_group,
    send_private,
    services,
    translator,
    visible_length,
)

log = logging.getLogger(__name__)

# Commands this module adds to the menus, by scope; each needs a menu.<command> catalog entry.
MENU: dict[str, tuple[str, ...]] = {
    "private": ("object", "public", "appeal", "objections", "unconfirmed"),
    "group": (),
    "admin": (),  # /unconfirmed names who has not confirmed: private only (a group gets a pointer there)
}

REASON = 0
PAGE = 8
CANCEL = "nt:x"
_OBJECT_ARGS = re.compile(r"^/object(?:@\w+)?\s+#?(\S+)\s*(.*)$", re.S)
_PUBLIC_ARGS = re.compile(r"^/public(?:@\w+)?\s+#?(\S+)\s*(.*)$", re.S)
_APPEAL_ARGS = re.compile(r"^/appeal(?:@\w+)?\s+#?(\S+)\s*(.*)$", re.S)


# --- rendering ---------------------------------------------------------------------------------------


def period_label(tr: Translator, key: str) -> str:
    if match := re.fullmatch(r"(\d{4})-(\d{2})", key):
        return tr("notice.period_month", year=match[1], month=int(match[2]))
    if match := re.fullmatch(r"(\d{4})-Q([1-4])", key):
        return tr("notice.period_quarter", year=match[1], quarter=match[2])
    if match := re.fullmatch(r"(\d{4})-H([12])", key):
        return tr("notice.period_half", year=match[1], half=tr(f"notice.half_{match[2]}"))
    if match := re.fullmatch(r"(\d{4})(?:-R\d+)?", key):  # an annual publicity, or its re-run after a re-open
        return tr("notice.period_year", year=match[1])
    return key


def local_time(moment: datetime, branch: Branch) -> str:
    return moment.astimezone(ZoneInfo(branch.timezone)).strftime("%Y-%m-%d %H:%M")


def signed(value: Decimal) -> str:
    return ("+" if value > 0 else "") + format_points(value)


def joined(tr: Translator, names: list[str]) -> str:
    """Plain names in a list (pass the result as a catalog parameter: it is escaped there)."""
    return tr("common.list_separator").join(names)


def item_label(tr: Translator, rulebook: Rulebook, row: LedgerRow) -> str:
    item = rulebook.item(row.item_code)
    name = item.name.get(tr.lang) if item else row.item_code
    if item is not None and row.event_code and (event := item.event(row.event_code)) is not None:
        name = f"{name} · {event.name.get(tr.lang)}"
    return name


def member_line(tr: Translator, rulebook: Rulebook, member: Member, summary: MemberSummary) -> str:
    if summary.sum_scheme or not summary.month_scores:
        text = tr("notice.member_sum", name=member.name, net=signed(summary.net), year=summary.year)
    elif len(summary.month_scores) == 1:
        text = tr("notice.member_month", name=member.name, score=summary.month_scores[0][2], year=summary.year)
    else:
        scores = " · ".join(tr("notice.month_score", month=m, score=s) for _, m, s in summary.month_scores)
        text = tr("notice.member_months", name=member.name, scores=Safe(scores), year=summary.year)
    return text


def stored_line(tr: Translator, rulebook: Rulebook, member: Member, line: NoticeMember, notice: Notice) -> str:
    """A member's line as the notice recorded it (private messages after the posting)."""
    if re.fullmatch(r"\d{4}(?:-R\d+)?", notice.period_key):  # the annual publicity
        return tr("notice.member_year", name=member.name, year=line.year_score)
    if rulebook.year_result.method is YearMethod.SUM:
        return tr("notice.member_sum", name=member.name, net=signed(Decimal(line.score)), year=line.year_score)
    key = "notice.member_month" if len(months_of(notice.first_day, notice.last_day)) == 1 else "notice.member_average"
    return tr(key, name=member.name, score=Decimal(line.score), year=line.year_score)


def entry_line(tr: Translator, rulebook: Rulebook, row: LedgerRow) -> str:
    return tr("notice.entry", number=row.id, date=row.occurred_on.strftime("%m-%d"), item=item_label(tr, rulebook, row),
              value=signed(row.value), reason=one_line(row.reason))


def capped_line(tr: Translator, rulebook: Rulebook, capped: Capped) -> str:
    """Why the entries above add up to more than the score: the category's limit applied."""
    item = rulebook.item(capped.code)
    category = next((c for c in rulebook.categories if c.code == capped.code), None)
    named = item if item is not None else category
    name = named.name.get(tr.lang) if named is not None else capped.code
    return tr("notice.capped", category=name, recorded=signed(capped.recorded), counted=format_points(capped.counted))


def correction_line(tr: Translator, rulebook: Rulebook, member: Member, row: LedgerRow) -> str:
    common = dict(number=row.id, date=row.occurred_on.isoformat(), name=member.name, item=item_label(tr, rulebook, row),
                  value=signed(row.value), reason=one_line(row.reason))
    if row.reverses_id is not None:
        return tr("notice.correction_reversal", original=row.reverses_id, **common)
    return tr("notice.correction", **common)


def notice_blocks(tr: Translator, view: NoticeView, unclosed: list[Meeting]) -> list[str]:
    """The notice as blocks of text: a header, one block per member, the corrections, a footer."""
    branch, notice, rulebook = view.branch, view.notice, view.rulebook
    head = [tr("notice.header", branch=branch.title, period=period_label(tr, notice.period_key))]
    if notice.late:
        head.append(tr("notice.late", due=local_time(notice.due_at, branch)))
    head.append(tr("notice.window", closes=local_time(notice.closes_at, branch)))
    if unclosed:
        zone = ZoneInfo(branch.timezone)
        meetings = [tr("notice.meeting", date=m.starts_at.astimezone(zone).strftime("%m-%d %H:%M"),
                       kind=tr(f"meeting.kind.{m.kind.value}")) for m in unclosed]
        head.append(tr("notice.unclosed_meetings", count=len(unclosed), meetings=joined(tr, meetings)))
    if view.defaulted:
        head.append(tr("notice.defaulted", count=len(view.defaulted), names=joined(tr, [m.name for m in view.defaulted])))
    if any(summary.provisional for _, summary in view.lines):
        head.append(tr("notice.provisional"))
    blocks = ["\n".join(head)]
    for member, summary in view.lines:
        lines = [member_line(tr, rulebook, member, summary)]
        lines += [entry_line(tr, rulebook, view.rows[e.id]) for e in summary.entries]
        if not summary.entries:
            lines.append(tr("notice.no_entries"))
        lines += [capped_line(tr, rulebook, capped) for capped in summary.capped]
        blocks.append("\n".join(lines))
    if view.corrections:
        blocks.append("\n".join([tr("notice.corrections")]
                                + [correction_line(tr, rulebook, member, row) for member, row in view.corrections]))
    footer = tr("notice.no_members") if not view.lines else tr("notice.footer", count=len(view.lines))
    if periodic(notice.period_key):  # the committee's check and the secretary's sign-off, as it stands now
        footer += "\n" + signoff_line(tr, branch, notice, view.signer)
    blocks.append(footer)
    return blocks


def signoff_status(tr: Translator, branch: Branch, notice: Notice, signer: Member | None, unsigned: str = "notice.signoff.pending") -> str:
    """「已签字（王书记，4月2日）」 or 「待签字」 (``unsigned``: the word for a notice nobody signed)."""
    return signoff_text(tr, branch, notice.signed_at, signer.name if signer is not None else None, unsigned)


def signoff_text(tr: Translator, branch: Branch, signed_at: datetime | None, name: str | None,
                 unsigned: str = "notice.signoff.pending") -> str:
    if signed_at is None or name is None:
        return tr(unsigned)
    day = signed_at.astimezone(ZoneInfo(branch.timezone)).date()
    return tr("notice.signoff.signed", name=name, date=tr("notice.signoff.date", month=day.month, day=day.day))


def signoff_line(tr: Translator, branch: Branch, notice: Notice, signer: Member | None,
                 unsigned: str = "notice.signoff.pending") -> str:
    return tr("notice.signoff.line", status=Safe(signoff_status(tr, branch, notice, signer, unsigned)))


def signoff_keyboard(tr: Translator, notice: Notice) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[InlineKeyboardButton(tr("notice.signoff.button"), callback_data=f"nt:sg:{notice.id}")]])


def signoff_ask(tr: Translator, view: NoticeView) -> str:
    """What the secretary and deputies are sent privately to check and sign: the notice's summary (each
    member's line when it fits in one message, else the counts and a pointer to the group's notice)."""
    branch, notice = view.branch, view.notice
    head = tr("notice.signoff.ask", branch=branch.title,
              period=period_label(tr, notice.period_key), count=len(view.lines),
              entries=sum(len(s.entries) for _, s in view.lines), corrections=len(view.corrections),
              closes=local_time(notice.closes_at, branch))
    lines = [member_line(tr, view.rulebook, member, summary) for member, summary in view.lines]
    text = "\n".join([head, *lines, tr("notice.signoff.check")])
    if visible_length(text) > MessageLimit.MAX_TEXT_LENGTH:
        text = "\n".join([head, tr("notice.signoff.see_group"), tr("notice.signoff.check")])
    return text


def closed_summary(tr: Translator, summary: CloseSummary) -> str:
    """The group's message when the objection window ends: the objections' outcome, the public's ones named
    with who recorded them, and whether the notice was signed off."""
    notice, branch = summary.notice, summary.branch
    objection = ObjectionKind.OBJECTION
    text = tr("notice.closed_summary", branch=branch.title, period=period_label(tr, notice.period_key),
              objections=summary.count(objection), withdrawn=summary.count(objection, ObjectionStatus.WITHDRAWN),
              upheld=summary.count(objection, ObjectionStatus.UPHELD), open=summary.count(objection, ObjectionStatus.OPEN),
              disputes=summary.count(ObjectionKind.DISPUTE), unconfirmed=summary.unconfirmed)
    if summary.public:
        items = [tr("notice.closed.public_item", number=o.id, source=Safe(objector_label(tr, o, summary.recorders.get(o.objector_id))),
                    status=tr(f"notice.closed.status_{o.status.value}")) for o in summary.public]
        text += "\n" + tr("notice.closed.public", count=len(summary.public), items=Safe(tr("common.list_separator").join(items)))
    if periodic(notice.period_key):
        text += "\n" + signoff_line(tr, branch, notice, summary.signer, unsigned="notice.signoff.unsigned")
    return text


def objector_label(tr: Translator, objection: Objection, objector: Member | None) -> str:
    """Who objected: the member's name, or 「群众反映（由 李监督 登记）」 for the public's objection."""
    name = objector.name if objector is not None else "-"
    return tr("objection.public.by", name=name) if objection.public else tr("objection.public.member", name=name)


def pack(blocks: list[str], limit: int = MessageLimit.MAX_TEXT_LENGTH) -> list[str]:
    """Blocks joined into as few messages as fit, each within ``limit`` as Telegram counts it (after HTML
    parsing). A block is never split unless it alone is too long; then handlers.common.chunks splits it
    between its lines."""
    messages: list[str] = []
    current = ""
    for block in blocks:
        if not block:
            continue
        candidate = f"{current}\n\n{block}" if current else block
        if visible_length(candidate) <= limit:
            current = candidate
            continue
        if current:
            messages.append(current)
        pieces = chunks(block, limit)
        messages.extend(pieces[:-1])
        current = pieces[-1]
    if current:
        messages.append(current)
    return messages


def notice_messages(tr: Translator, view: NoticeView, unclosed: list[Meeting]) -> list[str]:
    """The notice as Telegram messages, in order (the same each time for the same notice)."""
    return pack(notice_blocks(tr, view, unclosed))


def confirm_keyboard(tr: Translator, notice: Notice) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[
        InlineKeyboardButton(tr("notice.confirm_button"), callback_data=f"nt:cf:{notice.id}"),
        InlineKeyboardButton(tr("notice.dispute_button"), callback_data=f"nt:ds:{notice.id}"),
    ]])


def member_tr(member: Member, branch: Branch) -> Translator:
    return Translator(language_of(member.language, branch.language))


def objection_card(tr: Translator, view: ObjectionView) -> str:
    o, branch = view.objection, view.branch
    rulebook = rulebook_of(branch)
    period = period_label(tr, view.notice.period_key)
    if o.kind is ObjectionKind.DISPUTE:
        line = stored_line(tr, rulebook, view.member, view.line, view.notice) if view.line else ""
        return tr("dispute.card", number=o.id, branch=branch.title, period=period, name=view.member.name,
                  line=Safe(line), reason=o.reason)
    entry = view.entry
    assert entry is not None
    return tr("objection.card", number=o.id, branch=branch.title, period=period,
              objector=Safe(objector_label(tr, o, view.objector)),
              entry=entry.id, name=view.member.name, date=entry.occurred_on.isoformat(), item=item_label(tr, rulebook, entry),
              value=signed(entry.value), entry_reason=one_line(entry.reason), reason=o.reason)


def decision_keyboard(tr: Translator, view: ObjectionView) -> InlineKeyboardMarkup:
    number = view.objection.id
    if view.objection.kind is ObjectionKind.DISPUTE:
        row = [InlineKeyboardButton(tr("dispute.uphold_button"), callback_data=f"nt:up:{number}"),
               InlineKeyboardButton(tr("dispute.resolve_button"), callback_data=f"nt:rs:{number}")]
    else:
        row = [InlineKeyboardButton(tr("objection.uphold_button"), callback_data=f"nt:up:{number}"),
               InlineKeyboardButton(tr("objection.withdraw_button"), callback_data=f"nt:wd:{number}")]
    return InlineKeyboardMarkup([row])


def outcome_text(tr: Translator, view: ObjectionView) -> str:
    by = view.decider.name if view.decider else "-"
    status = view.objection.status
    if status is ObjectionStatus.WITHDRAWN:
        return tr("objection.outcome_withdrawn", by=by, reversal=view.reversal.id if view.reversal else "-")
    if status is ObjectionStatus.RESOLVED:
        return tr("objection.outcome_resolved", by=by)
    return tr("objection.outcome_upheld", by=by)


async def send_cards(context: Context, view: ObjectionView) -> int:
    """Send the objection to every decider who can be reached; returns how many were."""
    svc = services(context)
    reached = 0
    for decider in await svc.notices.deciders(view):
        tr = member_tr(decider, view.branch)
        sent = await send_private(context, decider.user_id, objection_card(tr, view),  # type: ignore[arg-type]
                                  reply_markup=decision_keyboard(tr, view))
        if sent is None:
            continue
        await svc.notices.remember_message(view.objection.id, sent.chat_id, sent.message_id)
        reached += 1
    return reached


async def go_private(update: Update, context: Context) -> None:
    await point_to_private(update, context, "notice.go_private", button="notice.open_private")


async def go_private_public(update: Update, context: Context) -> None:
    await point_to_private(update, context, "objection.public.go_private", button="notice.open_private")


# --- /object: the list of open entries --------------------------------------------------------------


async def _listing(update: Update, context: Context, branch: Branch, page: int,
                   public: bool = False) -> tuple[str, InlineKeyboardMarkup | None]:
    """The open notices' entries with a button each: to object (``nt:ob``), or with ``public`` to record
    the public's objection (``nt:pb``)."""
    svc = services(context)
    tr = translator(update, branch)
    assert update.effective_user is not None
    notices = await svc.notices.objectable(branch, actor(update.effective_user), public=public)
    act, turn = ("pb", "pp") if public else ("ob", "pg")
    if not notices:
        return tr("objection.nothing_open"), None
    rulebook = rulebook_of(branch)
    items = [(row, member) for _, entries in notices for row, member in entries]
    pages = max(1, math.ceil(len(items) / PAGE))
    page = min(max(page, 0), pages - 1)
    lines = [tr("objection.public.list_header" if public else "objection.list_header", branch=branch.title,
                period=period_label(tr, n.period_key), closes=local_time(n.closes_at, branch)) for n, _ in notices]
    rows = []
    for row, member in items[page * PAGE:(page + 1) * PAGE]:
        item = item_label(tr, rulebook, row)
        lines.append(tr("objection.list_line", number=row.id, name=member.name, date=row.occurred_on.isoformat(),
                        item=item, value=signed(row.value), reason=one_line(row.reason, 80)))
        label = f"#{row.id} {member.name} {item} {signed(row.value)}"
        rows.append([InlineKeyboardButton(label[:60], callback_data=f"nt:{act}:{row.id}")])
    if not items:
        lines.append(tr("notice.no_entries"))
    if pages > 1:
        lines.append(tr("objection.page", page=page + 1, pages=pages))
        nav = []
        if page > 0:
            nav.append(InlineKeyboardButton(tr("objection.previous_page"), callback_data=f"nt:{turn}:{page - 1}"))
        if page < pages - 1:
            nav.append(InlineKeyboardButton(tr("objection.next_page"), callback_data=f"nt:{turn}:{page + 1}"))
        rows.append(nav)
    return "\n".join(lines), (InlineKeyboardMarkup(rows) if rows else None)


@domain_errors
async def page_button(update: Update, context: Context) -> None:
    query = update.callback_query
    assert query is not None and query.data is not None
    branch = await current_branch(update, context)
    _, turn, page = query.data.split(":")
    text, markup = await _listing(update, context, branch, int(page), public=turn == "pp")
    await answer(query)
    try:
        await query.edit_message_text(text, reply_markup=markup)
    except BadRequest as exc:  # unchanged: the same page again
        log.debug("could not edit the objection list: %s", exc)


# --- the reason conversation (objection or dispute) --------------------------------------------------


def cancel_keyboard(tr: Translator) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[InlineKeyboardButton(tr("common.cancel"), callback_data=CANCEL)]])


def _ask_objection(tr: Translator, branch: Branch, entry: LedgerRow, member: Member) -> str:
    return tr("objection.ask_reason", number=entry.id, name=member.name, date=entry.occurred_on.isoformat(),
              item=item_label(tr, rulebook_of(branch), entry), value=signed(entry.value), reason=one_line(entry.reason))


async def object_command(update: Update, context: Context) -> int:
    """/object ENTRY reason files a member's objection; /object ENTRY asks for the reason; /object alone lists
    the open entries to pick from."""
    return await _entry_command(update, context, "ob")


def _ask_public(tr: Translator, branch: Branch, entry: LedgerRow, member: Member) -> str:
    return tr("objection.public.ask", number=entry.id, name=member.name, date=entry.occurred_on.isoformat(),
              item=item_label(tr, rulebook_of(branch), entry), value=signed(entry.value), reason=one_line(entry.reason))


async def public_command(update: Update, context: Context) -> int:
    """/public ENTRY what the public said: a supervisor, secretary or deputy records the public's objection
    (群众反映); /public ENTRY asks for it; /public alone lists the open entries to pick from."""
    return await _entry_command(update, context, "pb")


async def _entry_command(update: Update, context: Context, action: str) -> int:
    """/object (``ob``) or /public (``pb``): with a reason, filed at once; with an entry only, checked and the
    reason asked for; with nothing, the open entries to pick from (/public: under its usage)."""
    svc = services(context)
    message = update.effective_message
    assert message is not None and update.effective_user is not None
    public = action == "pb"
    notices = svc.notices
    check, ask = (notices.check_public, _ask_public) if public else (notices.check_entry, _ask_objection)
    try:
        branch = await current_branch(update, context)
        tr = translator(update, branch)
        match = (_PUBLIC_ARGS if public else _OBJECT_ARGS).match(message.text or "")
        if match is None:  # the list to pick from
            text, markup = await _listing(update, context, branch, 0, public=public)
            await reply(update, tr("objection.public.usage") + "\n\n" + text if public else text, reply_markup=markup)
            return ConversationHandler.END
        if not match[1].isdigit() or len(match[1]) > 12:
            raise InvalidInput("objection.public.bad_number" if public else "objection.bad_number")
        number, reason = int(match[1]), match[2]
        who = actor(update.effective_user)
        if reason.strip():
            view = await (notices.object_public if public else notices.object)(branch, who, number, reason)
            await _filed(update, context, view)
            return ConversationHandler.END
        entry = await check(branch, who, number)
    except DomainError as error:  # naming the branch for a member of several (handlers.branch_context)
        await reply(update, await refusal_naming_branch(update, context, error))
        return ConversationHandler.END
    context.user_data["nt"] = {"action": action, "id": number, "branch": branch.id}
    await reply(update, ask(tr, branch, entry.entry, entry.member), reply_markup=cancel_keyboard(tr))
    return REASON


async def public_button(update: Update, context: Context) -> int:
    return await _entry_pressed(update, context, "pb")


async def object_button(update: Update, context: Context) -> int:
    return await _entry_pressed(update, context, "ob")


async def _entry_pressed(update: Update, context: Context, action: str) -> int:
    """An entry's button under /object (``ob``) or /public (``pb``): checked as the command checks it, then
    the reason is asked for privately."""
    query = update.callback_query
    assert query is not None and query.data is not None
    number = int(query.data.split(":")[2])
    notices = services(context).notices
    check, ask = (notices.check_public, _ask_public) if action == "pb" else (notices.check_entry, _ask_objection)
    try:
        branch = await current_branch(update, context)
        entry = await check(branch, actor(query.from_user), number)
    except DomainError as error:
        await answer(query, refusal(update, error), alert=True)
        return ConversationHandler.END
    await answer(query)
    context.user_data["nt"] = {"action": action, "id": number, "branch": branch.id}
    tr = translator(update, branch)
    await context.bot.send_message(query.from_user.id, ask(tr, branch, entry.entry, entry.member),
                                   reply_markup=cancel_keyboard(tr))
    return REASON


async def dispute_button(update: Update, context: Context) -> int:
    query = update.callback_query
    assert query is not None and query.data is not None
    number = int(query.data.split(":")[2])
    try:
        confirmation = await services(context).notices.check_dispute(number, actor(query.from_user))
    except DomainError as error:
        await answer(query, refusal(update, error), alert=True)
        return ConversationHandler.END
    tr = translator(update, confirmation.branch)
    await answer(query)
    context.user_data["nt"] = {"action": "ds", "id": number}
    await context.bot.send_message(query.from_user.id, tr(
        "notice.dispute_ask", period=period_label(tr, confirmation.notice.period_key),
        score=Safe(stored_line(tr, rulebook_of(confirmation.branch), confirmation.member, confirmation.line,
                               confirmation.notice))),
        reply_markup=cancel_keyboard(tr))
    return REASON


async def reason_text(update: Update, context: Context) -> int:
    svc = services(context)
    pending = context.user_data.get("nt") or {}
    message = update.effective_message
    assert message is not None and update.effective_user is not None
    try:
        if pending.get("action") == "ob":
            branch = await svc.branches.by_id(pending["branch"])
            view = await svc.notices.object(branch, actor(update.effective_user), pending["id"], message.text)
        elif pending.get("action") == "pb":
            branch = await svc.branches.by_id(pending["branch"])
            view = await svc.notices.object_public(branch, actor(update.effective_user), pending["id"], message.text)
        elif pending.get("action") == "ds":
            view = await svc.notices.dispute(pending["id"], actor(update.effective_user), message.text)
        else:
            return ConversationHandler.END
    except DomainError as error:
        await reply(update, refusal(update, error))
        if error.key in ("objection.reason_required", "text.too_long"):
            return REASON  # type it again
        context.user_data.pop("nt", None)
        return ConversationHandler.END
    context.user_data.pop("nt", None)
    await _filed(update, context, view)
    return ConversationHandler.END


async def _filed(update: Update, context: Context, view: ObjectionView) -> None:
    tr = translator(update, view.branch)
    o = view.objection
    if o.kind is ObjectionKind.DISPUTE:
        text = tr("dispute.filed", period=period_label(tr, view.notice.period_key), number=o.id)
    elif o.public:
        text = tr("objection.public.filed", entry=o.ledger_id, name=view.member.name, number=o.id)
    else:
        text = tr("objection.filed", entry=o.ledger_id, name=view.member.name, number=o.id)
    if await send_cards(context, view) == 0:
        text += "\n" + tr("objection.no_decider")
    await reply(update, text)


async def cancel(update: Update, context: Context) -> int:
    context.user_data.pop("nt", None)
    if update.callback_query is not None:
        await answer(update.callback_query)
    await reply(update, translator(update)("common.cancelled"))
    return ConversationHandler.END


# --- decisions ---------------------------------------------------------------------------------------


@domain_errors
async def decide_button(update: Update, context: Context) -> None:
    query = update.callback_query
    assert query is not None and query.data is not None
    _, verdict, number = query.data.split(":")
    svc = services(context)
    view = await svc.notices.decide(int(number), actor(query.from_user), Verdict(verdict))
    tr = translator(update, view.branch)
    outcome = outcome_text(tr, view)
    await answer(query, outcome)
    text = objection_card(tr, view) + "\n\n" + outcome
    for chat_id, message_id in await svc.notices.messages(view.objection.id):
        try:
            await context.bot.edit_message_text(text, chat_id=chat_id, message_id=message_id)
        except (BadRequest, Forbidden) as exc:  # deleted or unchanged: the decision stands
            log.debug("could not edit objection card: %s", exc)
    await _tell(context, view)


async def _tell(context: Context, view: ObjectionView) -> None:
    """The objector and the member privately; the group for objections to entries."""
    o, branch = view.objection, view.branch
    rulebook = rulebook_of(branch)
    if o.kind is ObjectionKind.DISPUTE:
        if view.member.user_id is not None:
            tr = member_tr(view.member, branch)
            key = "dispute.told_resolved" if o.status is ObjectionStatus.RESOLVED else "dispute.told_upheld"
            await send_private(context, view.member.user_id, tr(key, number=o.id, period=period_label(tr, view.notice.period_key)))
        return
    entry = view.entry
    assert entry is not None
    withdrawn = o.status is ObjectionStatus.WITHDRAWN
    if view.objector.user_id is not None:  # for the public's objection: who recorded it (to tell the public)
        tr = member_tr(view.objector, branch)
        told = "objection.public.told" if o.public else "objection.told_objector"
        await send_private(context, view.objector.user_id, tr(
            f"{told}_withdrawn" if withdrawn else f"{told}_upheld",
            number=o.id, entry=entry.id, name=view.member.name, item=item_label(tr, rulebook, entry), value=signed(entry.value)))
    if view.member.user_id is not None and view.member.id != view.objector.id:
        tr = member_tr(view.member, branch)
        if withdrawn:
            text = tr("objection.told_member_withdrawn", number=o.id, entry=entry.id, item=item_label(tr, rulebook, entry),
                      value=signed(entry.value), reason=o.reason)
        else:
            text = tr("objection.told_member_upheld", number=o.id, entry=entry.id, item=item_label(tr, rulebook, entry),
                      value=signed(entry.value))
        await send_private(context, view.member.user_id, text)
    tr = Translator(branch.language)
    try:
        await send_group(context, branch, tr(
            "objection.group_withdrawn" if withdrawn else "objection.group_upheld",
            number=o.id, name=view.member.name, entry=entry.id, item=item_label(tr, rulebook, entry), value=signed(entry.value)))
    except BadRequest as exc:
        log.warning("could not post the objection outcome in the group of branch %s: %s", branch.id, exc)


@domain_errors
async def objections_command(update: Update, context: Context) -> None:
    if not is_private(update):  # the cards show who objected and why: in private only
        await point_to_private(update, context, "objection.go_private", button="notice.open_private")
        return
    assert update.effective_user is not None
    svc = services(context)
    branch = await current_branch(update, context)
    tr = translator(update, branch)
    views = await svc.notices.pending(branch, actor(update.effective_user))
    if not views:
        await reply(update, tr("objection.none_pending"))
        return
    await reply(update, tr("objection.pending_header", count=len(views)))
    for view in views[:20]:
        sent = await reply(update, objection_card(tr, view), reply_markup=decision_keyboard(tr, view))
        if sent is not None:
            await svc.notices.remember_message(view.objection.id, sent.chat_id, sent.message_id)


# --- confirmation ------------------------------------------------------------------------------------


@domain_errors
async def confirm_button(update: Update, context: Context) -> None:
    query = update.callback_query
    assert query is not None and query.data is not None
    confirmation = await services(context).notices.confirm(int(query.data.split(":")[2]), actor(query.from_user))
    tr = translator(update, confirmation.branch)
    await answer(query, tr("notice.confirmed", period=period_label(tr, confirmation.notice.period_key)))
    try:
        await query.edit_message_reply_markup(InlineKeyboardMarkup([[
            InlineKeyboardButton("✅ " + tr("notice.confirmed_short"), callback_data=f"nt:cf:{confirmation.notice.id}")]]))
    except BadRequest as exc:
        log.debug("could not mark the confirmation: %s", exc)


# --- the sign-off (支委会审核，支部书记签字确认) ---------------------------------------------------------


@domain_errors
async def sign_button(update: Update, context: Context) -> None:
    """The secretary or a deputy signs the notice off, once (the service checks the presser's role in the
    notice's branch); the group is told, once, when its notice is out."""
    query = update.callback_query
    assert query is not None and query.data is not None
    svc = services(context)
    signoff: SignOff = await svc.notices.sign(int(query.data.split(":")[2]), actor(query.from_user))
    tr = translator(update, signoff.branch)
    status = signoff_status(tr, signoff.branch, signoff.notice, signoff.signer)
    period = period_label(tr, signoff.notice.period_key)
    if not signoff.now:
        await answer(query, tr("notice.signoff.already", period=period, status=Safe(status)), alert=True)
        return
    await answer(query, tr("notice.signoff.done", period=period, status=Safe(status)))
    try:
        await query.edit_message_reply_markup(InlineKeyboardMarkup([[
            InlineKeyboardButton("✅ " + plain(status), callback_data=f"nt:sg:{signoff.notice.id}")]]))
    except BadRequest as exc:
        log.debug("could not mark the sign-off: %s", exc)
    if signoff.notice.sent:  # the group's notice said 待签字: the sign-off follows it (a notice not out yet says it)
        gtr = Translator(signoff.branch.language)
        try:
            await send_group(context, signoff.branch, gtr(
                "notice.signoff.group", branch=signoff.branch.title, period=period_label(gtr, signoff.notice.period_key),
                line=Safe(signoff_line(gtr, signoff.branch, signoff.notice, signoff.signer))))
        except BadRequest as exc:
            log.warning("could not post the sign-off in the group of branch %s: %s", signoff.branch.id, exc)


@domain_errors
async def unconfirmed_command(update: Update, context: Context) -> None:
    if not is_private(update):  # it names who has not confirmed: never in front of the branch
        await point_to_private(update, context, "unconfirmed.go_private", button="notice.open_private")
        return
    assert update.effective_user is not None
    branch = await current_branch(update, context)
    tr = translator(update, branch)
    key = context.args[0] if context.args else None
    svc = services(context)
    notice, waiting = await svc.notices.unconfirmed(branch, actor(update.effective_user), key)
    period = period_label(tr, notice.period_key)
    signoff = [signoff_line(tr, branch, notice, await svc.notices.signer(notice))] if periodic(notice.period_key) else []
    if not waiting:
        await reply(update, "\n".join([tr("unconfirmed.none", branch=branch.title, period=period), *signoff]))
        return
    lines = [tr("unconfirmed.header", branch=branch.title, period=period, count=len(waiting)), *signoff]
    for member, line in waiting:
        status = tr("unconfirmed.disputed" if line.status.value == "disputed" else "unconfirmed.pending")
        text = tr("unconfirmed.line", name=member.name, status=status)
        if member.user_id is None:
            text += tr("unconfirmed.no_account")
        lines.append(text)
    await reply(update, "\n".join(lines))


# --- appeals -----------------------------------------------------------------------------------------


@domain_errors
async def appeal_command(update: Update, context: Context) -> None:
    if not is_private(update):
        await go_private(update, context)
        return
    message = update.effective_message
    assert message is not None and update.effective_user is not None
    svc = services(context)
    branch = await current_branch(update, context)
    tr = translator(update, branch)
    match = _APPEAL_ARGS.match(message.text or "")
    if match is None or not match[1].isdigit() or len(match[1]) > 12:
        await reply(update, tr("appeal.usage"))
        return
    view = await svc.notices.appeal(branch, actor(update.effective_user), int(match[1]), match[2])
    await reply(update, tr("appeal.recorded", number=view.objection.id))
    from handlers.town_review import appeal_to_town  # (imports this module)

    if (town := await appeal_to_town(context, view.objection.id)) is not None:  # the town decides it
        await reply(update, tr("town_review.appeal_sent", number=view.objection.id, town=town))
    o = view.objection
    appellant = view.objector if o.appealed_by == view.objector.id else view.member
    for receiver in await svc.notices.appeal_receivers(branch):
        rtr = member_tr(receiver, branch)
        about = (rtr("appeal.about_entry", entry=o.ledger_id, name=view.member.name) if o.kind is ObjectionKind.OBJECTION
                 else rtr("appeal.about_dispute", name=view.member.name, period=period_label(rtr, view.notice.period_key)))
        await send_private(context, receiver.user_id, rtr(  # type: ignore[arg-type]
            "appeal.notify", name=appellant.name, number=o.id, about=Safe(about), reason=o.appeal_reason or ""))


def register(app: Application) -> None:
    """Add this module's handlers (called in bot.app.register_handlers)."""
    private = filters.ChatType.PRIVATE
    app.add_handler(ConversationHandler(
        entry_points=[
            CommandHandler("object", object_command, filters=private),
            CommandHandler("public", public_command, filters=private),
            CallbackQueryHandler(object_button, pattern=r"^nt:ob:\d{1,12}$"),
            CallbackQueryHandler(public_button, pattern=r"^nt:pb:\d{1,12}$"),
            CallbackQueryHandler(dispute_button, pattern=r"^nt:ds:\d{1,12}$"),
        ],
        states={REASON: [MessageHandler(filters.TEXT & ~filters.COMMAND & private, reason_text)]},
        fallbacks=[CommandHandler("cancel", cancel), CallbackQueryHandler(cancel, pattern=f"^{CANCEL}$"),
                   FlowInProgress(app, "notice_reason")],
        name="notice-reason", allow_reentry=True, per_message=False,
    ))
    app.add_handler(CommandHandler("object", go_private, filters=~private))
    app.add_handler(CommandHandler("public", go_private_public, filters=~private))
    app.add_handler(CallbackQueryHandler(page_button, pattern=r"^nt:(pg|pp):\d{1,6}$"))
    app.add_handler(CallbackQueryHandler(sign_button, pattern=r"^nt:sg:\d{1,12}$"))
    app.add_handler(CallbackQueryHandler(decide_button, pattern=r"^nt:(up|wd|rs):\d{1,12}$"))
    app.add_handler(CallbackQueryHandler(confirm_button, pattern=r"^nt:cf:\d{1,12}$"))
    app.add_handler(CommandHandler("objections", objections_command))
    app.add_handler(CommandHandler("unconfirmed", unconfirmed_command))
    app.add_handler(CommandHandler("appeal", appeal_command))
