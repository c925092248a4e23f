"""Meetings (三会一课, 主题党日): /meeting (the guided flow), /meetings, the announcement's Attend /
Request leave buttons, leave decisions, check-in, the roll call and closing.

Callback data (prefix "mt:", never trusted — the service checks the presser in the database):
  mt:k:<kind>  mt:ok  mt:x          the /meeting flow
  mt:go:<m>  mt:lv:<m>  mt:ci:<m>   attend, request leave, check in
  mt:la:<m>:<member>  mt:lr:<m>:<member>   approve / refuse a leave request
  mt:rc:<m>  mt:pg:<m>:<page>  mt:m:<m>:<member>:<status>:<page>  mt:ap:<m>:<page>  mt:n   the roll call
                                     (mt:ap marks everyone still unmarked present)
  mt:cl:<m>:<page>  mt:cf:<m>:<page>:<absent>   close: the confirmation (who will be booked absent), then
                                     the close itself (refused when the number of absences has changed)
  mt:cx:<m>                          cancel a meeting (not once it has started)
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from telegram import CallbackQuery, ForceReply, InlineKeyboardButton, InlineKeyboardMarkup, ReplyParameters, Update
from telegram.error import BadRequest, ChatMigrated, Forbidden
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ConversationHandler,
    MessageHandler,
    filters,
)

from bot.domain.meetings import Attendance, LeaveStatus, Meeting, MeetingKind, MeetingStatus, by_default
from bot.domain.records import Branch, Member, Role
from bot.errors import DomainError
from bot.i18n import Safe, Translator, format_points, language_of
from bot.services.calendar import calendar_of
from bot.services.meetings import Change, CloseResult, MeetingDraft, RollCall
from handlers.common import (
    FlowInProgress,
    Context,
    actor,
    answer,
    chunks,
    current_branch,
    domain_errors,
    is_private,
    refusal,
    reply,
    report_domain_error,
    send_group,
    send_private,
    services,
    translator,
)

log = logging.getLogger(__name__)

# Commands this module adds to the menus, by scope; each needs a menu.<command> catalog entry.
MENU: dict[str, tuple[str, ...]] = {"private": ("meeting", "meetings"), "group": ("meetings",), "admin": ("meeting", "meetings")}

KIND, WHEN, PLACE, TOPIC, CONFIRM = range(5)
REASON = 0
DRAFTS = "meeting_drafts"  # user_data: chat id → the draft of the /meeting flow in that chat
LEAVE = "meeting_leave"
PAGE_SIZE = 8
NAMES_SHOWN = 20  # names listed in the close confirmation; more are counted
MANAGER_ROLES = {Role.SECRETARY, Role.DEPUTY}
KEEPER_ROLES = {Role.RECORDER, Role.SECRETARY, Role.DEPUTY}


# --- rendering ---------------------------------------------------------------------------------------


def when_text(tr: Translator, moment: datetime, branch: Branch) -> str:
    local = moment.astimezone(_zone(branch))
    return tr("meeting.when", date=local.strftime("%Y-%m-%d"), weekday=tr(f"meeting.weekday.{local.weekday()}"),
              time=local.strftime("%H:%M"))


def summary(tr: Translator, branch: Branch, kind: MeetingKind, starts_at: datetime, place: str, topic: str,
            number: int | None = None) -> Safe:
    return Safe(tr("meeting.summary", kind=tr(f"meeting.kind.{kind.value}"),
                   number=Safe(tr("meeting.number", number=number)) if number is not None else "",
                   when=Safe(when_text(tr, starts_at, branch)), place=place, topic=topic))


def describe(tr: Translator, meeting: Meeting, branch: Branch) -> Safe:
    return summary(tr, branch, meeting.kind, meeting.starts_at, meeting.place, meeting.topic, meeting.id)


def answer_keyboard(tr: Translator, meeting_id: int) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[
        InlineKeyboardButton(tr("meeting.attend"), callback_data=f"mt:go:{meeting_id}"),
        InlineKeyboardButton(tr("meeting.leave"), callback_data=f"mt:lv:{meeting_id}"),
    ]])


def _zone(branch: Branch) -> ZoneInfo:
    return ZoneInfo(branch.timezone)


def _group_tr(branch: Branch) -> Translator:
    return Translator(branch.language)


def _member_tr(member: Member, branch: Branch) -> Translator:
    return Translator(language_of(member.language, branch.language))


def _presser_tr(update: Update, branch: Branch) -> Translator:
    """For a popup: only the presser sees it, so it is in their language even under a group's message
    (as a private message to them is); the branch's where Telegram gives no language the bot speaks."""
    user = update.effective_user
    return Translator(language_of(user.language_code if user else None, branch.language))


def _delta(value) -> str:
    return ("+" if value > 0 else "") + format_points(value)


async def _chat_branch(update: Update, context: Context) -> Branch | None:
    """The branch of a group chat (None in private)."""
    if is_private(update) or update.effective_chat is None:
        return None
    return await services(context).branches.find_by_chat(update.effective_chat.id)


async def _tr(update: Update, context: Context) -> Translator:
    """The language of this chat: a group follows its branch, a private chat its user."""
    return translator(update, await _chat_branch(update, context))


async def refresh_announcement(app: Application, meeting_id: int, counts: dict[Attendance, int] | None = None) -> None:
    """Show the meeting's current state on its announcement in the group (the tally, closed, cancelled)."""
    svc = app.bot_data["services"]
    meeting, branch = await svc.meetings.get(meeting_id)
    if meeting.announce_chat_id is None or meeting.announce_message_id is None:
        return
    tr = _group_tr(branch)
    markup = None
    if meeting.status is MeetingStatus.SCHEDULED:
        tally = await svc.meetings.tally(meeting.id)
        text = tr("meeting.announcement", summary=describe(tr, meeting, branch), attending=tally.attending, leave=tally.leave)
        markup = answer_keyboard(tr, meeting.id)
    elif meeting.status is MeetingStatus.CANCELLED:
        text = tr("meeting.announcement_cancelled", summary=describe(tr, meeting, branch))
    elif counts is not None:
        text = tr("meeting.announcement_closed", summary=describe(tr, meeting, branch),
                  **{status.value: counts.get(status, 0) for status in Attendance})
    else:
        return
    try:
        await app.bot.edit_message_text(text, chat_id=meeting.announce_chat_id,
                                                   message_id=meeting.announce_message_id, reply_markup=markup)
    except (BadRequest, Forbidden, ChatMigrated) as exc:  # unchanged, deleted, the bot left, the group moved
        log.debug("could not update the announcement of meeting %s: %s", meeting.id, exc)


def _ids(data: str) -> list[int]:
    return [int(p) for p in data.split(":")[2:] if p.isdigit()]


# --- /meeting: the guided flow -----------------------------------------------------------------------


def _kinds_keyboard(tr: Translator) -> InlineKeyboardMarkup:
    rows = [[InlineKeyboardButton(tr(f"meeting.kind.{k.value}"), callback_data=f"mt:k:{k.value}")] for k in MeetingKind]
    rows.append([InlineKeyboardButton(tr("common.cancel"), callback_data="mt:x")])
    return InlineKeyboardMarkup(rows)


def _draft(update: Update, context: Context) -> dict:
    """This chat's draft: a secretary may run the flow in a group and in private at once."""
    assert update.effective_chat is not None
    return context.user_data.setdefault(DRAFTS, {}).setdefault(update.effective_chat.id, {})


def _drop_draft(update: Update, context: Context) -> None:
    if update.effective_chat is not None:
        context.user_data.get(DRAFTS, {}).pop(update.effective_chat.id, None)


async def _draft_branch(update: Update, context: Context) -> Branch:
    return await services(context).branches.by_id(_draft(update, context)["branch_id"])


async def _prompt(update: Update, context: Context, text: str) -> None:
    """Ask for typed input: in private with a Cancel button; in a group as a forced reply to the
    organiser (with group privacy on, the bot sees only replies to its own messages)."""
    chat = update.effective_chat
    assert chat is not None
    if is_private(update):
        tr = translator(update)
        markup = InlineKeyboardMarkup([[InlineKeyboardButton(tr("common.cancel"), callback_data="mt:x")]])
        await context.bot.send_message(chat.id, text, reply_markup=markup)
        return
    origin = _draft(update, context).get("origin")
    await context.bot.send_message(
        chat.id, text, reply_markup=ForceReply(selective=True),
        reply_parameters=ReplyParameters(origin, allow_sending_without_reply=True) if origin else None,
    )


@domain_errors
async def flow_start(update: Update, context: Context) -> int | None:
    user, message = update.effective_user, update.effective_message
    assert user is not None and message is not None
    branch = await current_branch(update, context)
    tr = translator(update, branch)
    await services(context).meetings.organiser(branch, actor(user))
    _drop_draft(update, context)
    _draft(update, context).update(branch_id=branch.id, origin=message.message_id)
    await reply(update, tr("meeting.choose_kind", branch=branch.title), reply_markup=_kinds_keyboard(tr))
    return KIND


async def kind_chosen(update: Update, context: Context) -> int:
    query = update.callback_query
    assert query is not None and query.data is not None
    branch = await _draft_branch(update, context)
    tr = translator(update, branch)
    try:
        kind = services(context).meetings.check_kind(query.data.split(":", 2)[2])
    except DomainError as error:
        await answer(query, refusal(update, error, branch), alert=True)
        return KIND
    await answer(query)
    _draft(update, context)["kind"] = kind.value
    await query.edit_message_text(tr("meeting.kind_chosen", kind=tr(f"meeting.kind.{kind.value}")))
    example = datetime.combine(services(context).clock.today(branch.timezone) + timedelta(days=1), datetime.min.time())
    await _prompt(update, context, tr("meeting.ask_when", example=example.strftime("%Y-%m-%d 14:30")))
    return WHEN


async def when_typed(update: Update, context: Context) -> int:
    branch = await _draft_branch(update, context)
    tr = translator(update, branch)
    try:
        moment = services(context).meetings.parse_when(branch, update.effective_message.text or "")  # type: ignore[union-attr]
    except DomainError as error:
        await reply(update, refusal(update, error, branch))
        return WHEN
    _draft(update, context)["when"] = moment.isoformat()
    await _prompt(update, context, tr("meeting.ask_place", when=Safe(when_text(tr, moment, branch))))
    return PLACE


async def place_typed(update: Update, context: Context) -> int:
    branch = await _draft_branch(update, context)
    tr = translator(update, branch)
    try:
        place = services(context).meetings.check_place(update.effective_message.text)  # type: ignore[union-attr]
    except DomainError as error:
        await reply(update, refusal(update, error, branch))
        return PLACE
    _draft(update, context)["place"] = place
    await _prompt(update, context, tr("meeting.ask_topic"))
    return TOPIC


async def topic_typed(update: Update, context: Context) -> int:
    branch = await _draft_branch(update, context)
    tr = translator(update, branch)
    try:
        topic = services(context).meetings.check_topic(update.effective_message.text)  # type: ignore[union-attr]
    except DomainError as error:
        await reply(update, refusal(update, error, branch))
        return TOPIC
    draft = _draft(update, context)
    draft["topic"] = topic
    text = tr("meeting.confirm", summary=summary(tr, branch, MeetingKind(draft["kind"]), datetime.fromisoformat(draft["when"]),
                                                 draft["place"], topic))
    buttons = InlineKeyboardMarkup([[InlineKeyboardButton(tr("meeting.publish"), callback_data="mt:ok"),
                                     InlineKeyboardButton(tr("common.cancel"), callback_data="mt:x")]])
    await context.bot.send_message(update.effective_chat.id, text, reply_markup=buttons)  # type: ignore[union-attr]
    return CONFIRM


async def confirmed(update: Update, context: Context) -> int:
    query = update.callback_query
    assert query is not None and query.message is not None
    svc = services(context)
    branch = await _draft_branch(update, context)
    tr = translator(update, branch)
    draft = _draft(update, context)
    try:
        meeting, created = await svc.meetings.schedule(
            branch, actor(query.from_user),
            MeetingDraft(kind=MeetingKind(draft["kind"]), starts_at=datetime.fromisoformat(draft["when"]),
                         place=draft["place"], topic=draft["topic"]),
            client_key=f"{query.message.chat.id}:{query.message.message_id}",  # a replayed press finds the same meeting
        )
    except DomainError as error:
        text = refusal(update, error, branch)
        await answer(query, text, alert=True)
        _drop_draft(update, context)
        await query.edit_message_text(text + "\n" + tr("meeting.not_saved"))
        return ConversationHandler.END
    await answer(query)
    _drop_draft(update, context)
    posted = True
    if created:
        posted = await _announce(context, meeting, branch)
    await query.edit_message_text(tr("meeting.scheduled" if posted else "meeting.scheduled_not_posted", number=meeting.id))
    return ConversationHandler.END


async def _announce(context: Context, meeting: Meeting, branch: Branch) -> bool:
    tr = _group_tr(branch)
    text = tr("meeting.announcement", summary=describe(tr, meeting, branch), attending=0, leave=0)
    try:
        sent = await send_group(context, branch, text, reply_markup=answer_keyboard(tr, meeting.id))
    except BadRequest as exc:
        log.info("could not announce meeting %s in its group: %s", meeting.id, exc)
        return False
    if sent is None:
        return False
    await services(context).meetings.remember_announcement(meeting.id, sent.chat_id, sent.message_id)
    return True


async def flow_cancel(update: Update, context: Context) -> int:
    _drop_draft(update, context)
    tr = await _tr(update, context)
    if update.callback_query is not None:
        await answer(update.callback_query)
        await update.callback_query.edit_message_text(tr("meeting.flow_cancelled"))
    else:
        await reply(update, tr("meeting.flow_cancelled"))
    return ConversationHandler.END


async def flow_unexpected(update: Update, context: Context) -> None:
    tr = await _tr(update, context)
    if update.callback_query is not None:
        await answer(update.callback_query, tr("meeting.stale_button"))
        return
    await reply(update, tr("meeting.unexpected"))


# --- /meetings ---------------------------------------------------------------------------------------


def _mine(tr: Translator, record) -> str:
    if record is None:
        return tr("meeting.mine_none")
    if record.checked_in_at is not None:
        return tr("meeting.mine_checked_in")
    if record.leave_status is LeaveStatus.PENDING:
        return tr("meeting.mine_leave_pending")
    if record.leave_status is LeaveStatus.APPROVED:
        return tr("meeting.mine_leave_approved")
    if record.leave_status is LeaveStatus.REFUSED:
        return tr("meeting.mine_leave_refused")
    if record.attending:
        return tr("meeting.mine_attending")
    return tr("meeting.mine_none")


def _line(tr: Translator, meeting: Meeting, branch: Branch, mine: str = "") -> str:
    return tr("meeting.list_line", number=meeting.id, kind=tr(f"meeting.kind.{meeting.kind.value}"),
              when=Safe(when_text(tr, meeting.starts_at, branch)), place=meeting.place, topic=meeting.topic, mine=Safe(mine))


@domain_errors
async def meetings_command(update: Update, context: Context) -> None:
    svc = services(context)
    user = update.effective_user
    assert user is not None
    branch = await current_branch(update, context)
    tr = translator(update, branch)
    now = svc.clock.now()
    if not is_private(update):  # the group sees what is coming; answers and the roll call are per person
        upcoming = await svc.meetings.upcoming(branch)
        lines = [tr("meeting.list_header", branch=branch.title)]
        lines += [_line(tr, m, branch) for m in upcoming] or [tr("meeting.list_empty")]
        await reply(update, "\n".join(lines))
        return
    schedule = await svc.meetings.schedule_of(branch, actor(user))
    settings = calendar_of(branch)
    lines = [tr("meeting.list_header", branch=branch.title)]
    rows: list[list[InlineKeyboardButton]] = []
    for meeting in schedule.scheduled:
        started = meeting.starts_at <= now
        mine = tr("meeting.list_awaiting") if started else _mine(tr, schedule.mine.get(meeting.id))
        lines.append(_line(tr, meeting, branch, mine))
        row = []
        if schedule.roles & KEEPER_ROLES and now >= meeting.checkin_window(settings)[0]:
            row.append(InlineKeyboardButton(tr("meeting.roll_button", number=meeting.id), callback_data=f"mt:rc:{meeting.id}"))
        if schedule.roles & MANAGER_ROLES and not started:
            row.append(InlineKeyboardButton(tr("meeting.cancel_button", number=meeting.id), callback_data=f"mt:cx:{meeting.id}"))
        if row:
            rows.append(row)
    if not schedule.scheduled:
        lines.append(tr("meeting.list_empty"))
    if schedule.closed:
        lines.append("")
        lines.append(tr("meeting.list_closed_header"))
        for meeting in schedule.closed:
            lines.append(_line(tr, meeting, branch))
            rows.append([InlineKeyboardButton(tr("meeting.roll_button", number=meeting.id), callback_data=f"mt:rc:{meeting.id}")])
    if schedule.roles & MANAGER_ROLES:
        lines.append("")
        lines.append(tr("meeting.list_hint"))
    await reply(update, "\n".join(lines), reply_markup=InlineKeyboardMarkup(rows[:90]) if rows else None)


# --- answers: attend, check in -----------------------------------------------------------------------


@domain_errors
async def attend_pressed(update: Update, context: Context) -> None:
    query = update.callback_query
    assert query is not None and query.data is not None
    result = await services(context).meetings.attend(_ids(query.data)[0], actor(query.from_user))
    tr = _presser_tr(update, result.branch)
    await answer(query, tr("meeting.attending_ok" if result.changed else "meeting.attending_already"))
    if result.changed:
        await refresh_announcement(context.application, result.meeting.id)


@domain_errors
async def checkin_pressed(update: Update, context: Context) -> None:
    query = update.callback_query
    assert query is not None and query.data is not None
    result = await services(context).meetings.check_in(_ids(query.data)[0], actor(query.from_user))
    tr = _presser_tr(update, result.branch)
    await answer(query, tr("meeting.checked_in" if result.changed else "meeting.checked_in_already"))


# --- leave: the reason (in private), the decision ----------------------------------------------------


async def leave_start(update: Update, context: Context) -> int:
    query = update.callback_query
    assert query is not None and query.data is not None
    user = query.from_user
    svc = services(context)
    try:
        allowed = await svc.meetings.leave_allowed(_ids(query.data)[0], actor(user))
    except DomainError as error:
        await report_domain_error(update, error, await _chat_branch(update, context))
        return ConversationHandler.END
    branch, meeting = allowed.branch, allowed.meeting
    tr = _presser_tr(update, branch)  # the private question and the popup: both the presser's alone
    sent = await send_private(context, user.id, tr("meeting.ask_leave_reason", summary=describe(tr, meeting, branch)))
    if sent is None:
        await answer(query, tr("meeting.open_private_first"), alert=True)
        return ConversationHandler.END
    await answer(query, None if is_private(update) else tr("meeting.check_private"))
    context.user_data[LEAVE] = meeting.id
    return REASON


async def leave_reason(update: Update, context: Context) -> int:
    svc = services(context)
    user, message = update.effective_user, update.effective_message
    assert user is not None and message is not None
    meeting_id = context.user_data.get(LEAVE)
    if meeting_id is None:
        return ConversationHandler.END
    try:
        result = await svc.meetings.request_leave(meeting_id, actor(user), message.text)
    except DomainError as error:
        await reply(update, refusal(update, error))
        return REASON if error.key in ("meeting.text_empty", "meeting.text_too_long") else ConversationHandler.END
    context.user_data.pop(LEAVE, None)
    tr = translator(update, result.branch)
    await reply(update, tr("meeting.leave_submitted"))
    reached = await _send_leave_card(context, result.meeting, result.branch, result.member, message.text or "")
    if not reached:
        await reply(update, tr("meeting.leave_no_decider"))
    await refresh_announcement(context.application, result.meeting.id)
    return ConversationHandler.END


def _leave_keyboard(tr: Translator, meeting_id: int, member_id: int) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[
        InlineKeyboardButton(tr("meeting.approve_leave"), callback_data=f"mt:la:{meeting_id}:{member_id}"),
        InlineKeyboardButton(tr("meeting.refuse_leave"), callback_data=f"mt:lr:{meeting_id}:{member_id}"),
    ]])


async def _send_leave_card(context: Context, meeting: Meeting, branch: Branch, member: Member, reason: str) -> int:
    """The request to the secretary and deputy privately; to the group when none of them can be reached."""
    svc = services(context)
    _, _, _, record = await svc.meetings.leave_request(meeting.id, member.id)
    reason = record.leave_reason or reason
    reached = 0
    for decider in await svc.meetings.leave_deciders(meeting, member):
        tr = _member_tr(decider, branch)
        text = tr("meeting.leave_card", summary=describe(tr, meeting, branch), name=member.name, reason=reason)
        if await send_private(context, decider.user_id, text, reply_markup=_leave_keyboard(tr, meeting.id, member.id)):  # type: ignore[arg-type]
            reached += 1
    if not reached:
        tr = _group_tr(branch)
        text = tr("meeting.leave_card", summary=describe(tr, meeting, branch), name=member.name, reason=reason)
        try:
            await send_group(context, branch, text, reply_markup=_leave_keyboard(tr, meeting.id, member.id))
        except BadRequest as exc:
            log.info("could not post a leave request in the group: %s", exc)
    return reached


async def leave_cancel(update: Update, context: Context) -> int:
    context.user_data.pop(LEAVE, None)
    await reply(update, translator(update)("meeting.leave_cancelled"))
    return ConversationHandler.END


@domain_errors
async def leave_decided(update: Update, context: Context) -> None:
    query = update.callback_query
    assert query is not None and query.data is not None and query.message is not None
    meeting_id, member_id = _ids(query.data)[:2]
    approve = query.data.startswith("mt:la:")
    decision = await services(context).meetings.decide_leave(meeting_id, member_id, actor(query.from_user), approve)
    branch, meeting, member = decision.branch, decision.meeting, decision.member
    tr = translator(update, branch)
    outcome = tr("meeting.leave_approved_by" if approve else "meeting.leave_refused_by", by=decision.decider.name)
    popup = outcome
    if decision.change is not None:
        popup += "\n" + tr("meeting.marked_change", name=member.name, status=tr(f"meeting.status.{decision.change.new or Attendance.PRESENT}"),
                           delta=_delta(decision.change.delta))
    await answer(query, popup)
    card = tr("meeting.leave_card", summary=describe(tr, meeting, branch), name=member.name, reason=decision.reason)
    try:
        await query.edit_message_text(card + "\n\n" + outcome)
    except BadRequest as exc:
        log.debug("could not edit the leave card: %s", exc)
    if member.user_id is not None:
        member_tr = _member_tr(member, branch)
        await send_private(context, member.user_id, member_tr(
            "meeting.told_leave_approved" if approve else "meeting.told_leave_refused",
            by=decision.decider.name, summary=describe(member_tr, meeting, branch)))
    if meeting.status is MeetingStatus.SCHEDULED and decision.tally_changed:  # approving a pending leave moves nothing
        await refresh_announcement(context.application, meeting.id)


# --- the roll call -----------------------------------------------------------------------------------


def _extra(tr: Translator, entry) -> str:
    record = entry.record
    if record is None:
        return ""
    parts = []
    if record.checked_in_at is not None:
        parts.append(tr("meeting.extra_checked_in"))
    if record.leave_status is LeaveStatus.PENDING:
        parts.append(tr("meeting.extra_leave_pending"))
    elif record.leave_status is LeaveStatus.APPROVED:
        parts.append(tr("meeting.extra_leave_approved"))
    elif record.leave_status is LeaveStatus.REFUSED:
        parts.append(tr("meeting.extra_leave_refused"))
    return "".join(parts)


def roll_view(tr: Translator, roll: RollCall, page: int) -> tuple[str, InlineKeyboardMarkup]:
    meeting, branch = roll.meeting, roll.branch
    pages = max(1, -(-len(roll.entries) // PAGE_SIZE))
    page = min(max(page, 0), pages - 1)
    shown = roll.entries[page * PAGE_SIZE:(page + 1) * PAGE_SIZE]
    closed = meeting.status is MeetingStatus.CLOSED
    lines = [tr("meeting.rollcall_header", summary=describe(tr, meeting, branch),
                state=tr("meeting.rollcall_closed" if closed else "meeting.rollcall_open"))]
    if pages > 1:
        lines.append(tr("meeting.page", page=page + 1, pages=pages))
    if not roll.entries:
        lines.append(tr("meeting.empty_roll"))
    rows: list[list[InlineKeyboardButton]] = []
    for entry in shown:
        lines.append(tr("meeting.roll_line", name=entry.member.name, status=tr(f"meeting.status.{entry.status.value}"),
                        extra=Safe(_extra(tr, entry))))
        row = [InlineKeyboardButton(entry.member.name[:6], callback_data="mt:n")]
        for status in Attendance:
            label = tr(f"meeting.status.{status.value}")
            if status is entry.status:
                label = "●" + label
            row.append(InlineKeyboardButton(label, callback_data=f"mt:m:{meeting.id}:{entry.member.id}:{status.short}:{page}"))
        rows.append(row)
    nav = []
    if page > 0:
        nav.append(InlineKeyboardButton(tr("meeting.previous"), callback_data=f"mt:pg:{meeting.id}:{page - 1}"))
    if page < pages - 1:
        nav.append(InlineKeyboardButton(tr("meeting.next"), callback_data=f"mt:pg:{meeting.id}:{page + 1}"))
    if nav:
        rows.append(nav)
    if not closed:
        unmarked = sum(1 for entry in roll.entries if by_default(entry.record))
        if unmarked:
            rows.append([InlineKeyboardButton(tr("meeting.all_present", count=unmarked), callback_data=f"mt:ap:{meeting.id}:{page}")])
        rows.append([InlineKeyboardButton(tr("meeting.close"), callback_data=f"mt:cl:{meeting.id}:{page}")])
    return "\n".join(lines), InlineKeyboardMarkup(rows)


async def _show_roll(update: Update, context: Context, meeting_id: int, page: int, *, edit: bool) -> None:
    query = update.callback_query
    assert query is not None
    roll = await services(context).meetings.roll_call(meeting_id, actor(query.from_user))
    tr = translator(update, roll.branch)
    text, markup = roll_view(tr, roll, page)
    if edit:
        try:
            await query.edit_message_text(text, reply_markup=markup)
        except BadRequest as exc:  # nothing changed (a double tap)
            log.debug("roll call unchanged: %s", exc)
    else:
        await context.bot.send_message(query.message.chat.id, text, reply_markup=markup)  # type: ignore[union-attr]


@domain_errors
async def roll_opened(update: Update, context: Context) -> None:
    query = update.callback_query
    assert query is not None and query.data is not None
    await _show_roll(update, context, _ids(query.data)[0], 0, edit=False)
    await answer(query)


@domain_errors
async def roll_paged(update: Update, context: Context) -> None:
    query = update.callback_query
    assert query is not None and query.data is not None
    meeting_id, page = _ids(query.data)[:2]
    await _show_roll(update, context, meeting_id, page, edit=True)
    await answer(query)


@domain_errors
async def marked(update: Update, context: Context) -> None:
    query = update.callback_query
    assert query is not None and query.data is not None
    parts = query.data.split(":")
    status = Attendance.from_short(parts[4])
    if status is None or not (parts[2].isdigit() and parts[3].isdigit() and parts[5].isdigit()):
        await answer(query, (await _tr(update, context))("meeting.stale_button"))
        return
    meeting_id, member_id, page = int(parts[2]), int(parts[3]), int(parts[5])
    svc = services(context)
    changed, change = await svc.meetings.mark(meeting_id, member_id, status, actor(query.from_user))
    member = await svc.roster.member_of_id(member_id)
    meeting, branch = await svc.meetings.get(meeting_id)
    tr = translator(update, branch)
    status_text = tr(f"meeting.status.{status.value}")
    if change is not None:
        popup = tr("meeting.marked_change", name=member.name, status=status_text, delta=_delta(change.delta))
    elif changed:
        popup = tr("meeting.marked", name=member.name, status=status_text)
    else:
        popup = tr("meeting.marked_same", name=member.name, status=status_text)
    await answer(query, popup)
    await _show_roll(update, context, meeting_id, page, edit=True)


@domain_errors
async def all_present_pressed(update: Update, context: Context) -> None:
    query = update.callback_query
    assert query is not None and query.data is not None
    meeting_id, page = _ids(query.data)[:2]
    result = await services(context).meetings.mark_unmarked_present(meeting_id, actor(query.from_user))
    tr = translator(update, result.branch)
    popup = tr("meeting.all_present_done", count=len(result.marked))
    if result.skipped:
        popup += "\n" + tr("meeting.all_present_skipped", names=_names(tr, result.skipped))
    await answer(query, popup)
    await _show_roll(update, context, meeting_id, page, edit=True)


@domain_errors
async def close_pressed(update: Update, context: Context) -> None:
    """Close: where anyone would be booked absent, ask first (they may just not have been marked)."""
    query = update.callback_query
    assert query is not None and query.data is not None
    meeting_id, page = (_ids(query.data) + [0])[:2]
    svc = services(context)
    preview = await svc.meetings.close_preview(meeting_id, actor(query.from_user))
    tr = translator(update, preview.branch)
    if preview.closed:
        await answer(query, tr("meeting.closed_again", number=preview.meeting.id))
        await _show_roll(update, context, meeting_id, page, edit=True)
        return
    if not preview.absent:
        await _finish_close(update, context, await svc.meetings.close(meeting_id, actor(query.from_user), expected_absent=0), page)
        return
    await answer(query)
    text = tr("meeting.close_confirm", number=preview.meeting.id,
              **{status.value: preview.counts[status] for status in Attendance})
    text += "\n" + tr("meeting.close_confirm_absent", count=len(preview.absent), value=_delta(preview.value),
                      names=_names(tr, preview.absent))
    markup = InlineKeyboardMarkup([[
        InlineKeyboardButton(tr("meeting.close_confirm_yes"), callback_data=f"mt:cf:{meeting_id}:{page}:{len(preview.absent)}"),
        InlineKeyboardButton(tr("meeting.close_confirm_back"), callback_data=f"mt:pg:{meeting_id}:{page}"),
    ]])
    try:
        await query.edit_message_text(text, reply_markup=markup)
    except BadRequest as exc:  # the same confirmation already shows (a double tap)
        log.debug("close confirmation unchanged: %s", exc)


@domain_errors
async def close_confirmed(update: Update, context: Context) -> None:
    query = update.callback_query
    assert query is not None and query.data is not None
    meeting_id, page, absent = _ids(query.data)[:3]
    result = await services(context).meetings.close(meeting_id, actor(query.from_user), expected_absent=absent)
    await _finish_close(update, context, result, page)


async def _finish_close(update: Update, context: Context, result: CloseResult, page: int) -> None:
    query = update.callback_query
    assert query is not None
    tr = translator(update, result.branch)
    if result.already:
        text = tr("meeting.closed_again", number=result.meeting.id)
    else:
        text = tr("meeting.closed_result", number=result.meeting.id, changes=len(result.changes),
                  **{status.value: result.counts[status] for status in Attendance})
    await answer(query, text)
    await _show_roll(update, context, result.meeting.id, page, edit=True)
    if result.already:
        return
    for piece in chunks(text + _changes_text(tr, result.changes)):
        await context.bot.send_message(query.message.chat.id, piece)  # type: ignore[union-attr]
    await refresh_announcement(context.application, result.meeting.id, result.counts)


def _names(tr: Translator, members: list[Member]) -> str | Safe:
    """Names for a catalog parameter (escaped there), the first NAMES_SHOWN of them and a count of the rest."""
    shown = tr("common.list_separator").join(m.name for m in members[:NAMES_SHOWN])
    if len(members) <= NAMES_SHOWN:
        return shown
    return Safe(tr("meeting.names_more", names=shown, more=len(members) - NAMES_SHOWN))


def _changes_text(tr: Translator, changes: list[Change]) -> str:
    lines = [tr("meeting.marked_change", name=c.member.name, status=tr(f"meeting.status.{(c.new or Attendance.PRESENT).value}"),
                delta=_delta(c.delta)) for c in changes]
    return ("\n" + "\n".join(lines)) if lines else ""


async def name_pressed(update: Update, context: Context) -> None:
    assert update.callback_query is not None
    await answer(update.callback_query)


@domain_errors
async def cancel_pressed(update: Update, context: Context) -> None:
    query = update.callback_query
    assert query is not None and query.data is not None
    cancellation = await services(context).meetings.cancel(_ids(query.data)[0], actor(query.from_user))
    meeting, branch = cancellation.meeting, cancellation.branch
    tr = translator(update, branch)
    await answer(query, tr("meeting.cancelled_done", number=meeting.id))
    await _drop_buttons(query, meeting.id)
    await refresh_announcement(context.application, meeting.id)
    group_tr = _group_tr(branch)
    try:
        await send_group(context, branch, group_tr(
            "meeting.cancel_notice", number=meeting.id, kind=group_tr(f"meeting.kind.{meeting.kind.value}"),
            when=Safe(when_text(group_tr, meeting.starts_at, branch))))
    except BadRequest as exc:
        log.info("could not post the cancellation of meeting %s: %s", meeting.id, exc)
    for member in cancellation.answered:  # only this press cancelled it (the service's conditional update)
        if member.user_id is not None:
            member_tr = _member_tr(member, branch)
            await send_private(context, member.user_id, member_tr("meeting.cancel_told", summary=describe(member_tr, meeting, branch)))


async def _drop_buttons(query: CallbackQuery, meeting_id: int) -> None:
    """The pressed /meetings message loses the cancelled meeting's buttons (Cancel, Roll call); the others stay."""
    message = query.message
    markup = getattr(message, "reply_markup", None)
    if markup is None:
        return
    mine = {f"mt:cx:{meeting_id}", f"mt:rc:{meeting_id}"}
    rows = [[b for b in row if b.callback_data not in mine] for row in markup.inline_keyboard]
    rows = [row for row in rows if row]
    try:
        await query.edit_message_reply_markup(InlineKeyboardMarkup(rows) if rows else None)
    except BadRequest as exc:  # the message is gone meanwhile: the popup said it
        log.info("could not drop the buttons of cancelled meeting %s: %s", meeting_id, exc)


async def stale_pressed(update: Update, context: Context) -> None:
    assert update.callback_query is not None
    await answer(update.callback_query, (await _tr(update, context))("meeting.stale_button"))


# --- wiring ------------------------------------------------------------------------------------------


def register(app: Application) -> None:
    """Add this module's handlers (called in bot.app.register_handlers)."""
    typed = filters.TEXT & ~filters.COMMAND
    cancel_button = CallbackQueryHandler(flow_cancel, pattern=r"^mt:x$")
    app.add_handler(ConversationHandler(
        entry_points=[CommandHandler("meeting", flow_start)],
        states={
            KIND: [CallbackQueryHandler(kind_chosen, pattern=r"^mt:k:[a-z_]{1,24}$"), cancel_button],
            WHEN: [MessageHandler(typed, when_typed), cancel_button],
            PLACE: [MessageHandler(typed, place_typed), cancel_button],
            TOPIC: [MessageHandler(typed, topic_typed), cancel_button],
            CONFIRM: [CallbackQueryHandler(confirmed, pattern=r"^mt:ok$"), cancel_button],
        },
        fallbacks=[CommandHandler("cancel", flow_cancel), CallbackQueryHandler(flow_unexpected, pattern=r"^mt:(k:[a-z_]{1,24}|ok|x)$"),
                   MessageHandler(~filters.COMMAND & ~filters.StatusUpdate.ALL, flow_unexpected), FlowInProgress(app, "meeting")],
        name="meeting", allow_reentry=True,
    ))
    # Leave is asked in a group or privately, and its reason is typed in private: one conversation per user.
    app.add_handler(ConversationHandler(
        entry_points=[CallbackQueryHandler(leave_start, pattern=r"^mt:lv:\d{1,12}$")],
        states={REASON: [MessageHandler(typed & filters.ChatType.PRIVATE, leave_reason)]},
        fallbacks=[CommandHandler("cancel", leave_cancel, filters=filters.ChatType.PRIVATE),
                   FlowInProgress(app, "meeting_leave", private_only=True)],
        name="meeting_leave", per_chat=False, allow_reentry=True,
    ))
    app.add_handler(CommandHandler("meetings", meetings_command))
    app.add_handler(CallbackQueryHandler(attend_pressed, pattern=r"^mt:go:\d{1,12}$"))
    app.add_handler(CallbackQueryHandler(checkin_pressed, pattern=r"^mt:ci:\d{1,12}$"))
    app.add_handler(CallbackQueryHandler(leave_decided, pattern=r"^mt:l[ar]:\d{1,12}:\d{1,12}$"))
    app.add_handler(CallbackQueryHandler(roll_opened, pattern=r"^mt:rc:\d{1,12}$"))
    app.add_handler(CallbackQueryHandler(roll_paged, pattern=r"^mt:pg:\d{1,12}:\d{1,4}$"))
    app.add_handler(CallbackQueryHandler(marked, pattern=r"^mt:m:\d{1,12}:\d{1,12}:[a-z]:\d{1,4}$"))
    app.add_handler(CallbackQueryHandler(all_present_pressed, pattern=r"^mt:ap:\d{1,12}:\d{1,4}$"))
    app.add_handler(CallbackQueryHandler(close_pressed, pattern=r"^mt:cl:\d{1,12}(:\d{1,4})?$"))
    app.add_handler(CallbackQueryHandler(close_confirmed, pattern=r"^mt:cf:\d{1,12}:\d{1,4}:\d{1,6}$"))
    app.add_handler(CallbackQueryHandler(cancel_pressed, pattern=r"^mt:cx:\d{1,12}$"))
    app.add_handler(CallbackQueryHandler(name_pressed, pattern=r"^mt:n$"))
    app.add_handler(CallbackQueryHandler(stale_pressed, pattern=r"^mt:"))


__all__ = ["MENU", "register", "refresh_announcement", "describe", "answer_keyboard"]
