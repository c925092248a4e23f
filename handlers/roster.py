"""The roster: /join with the secretary's approval, /members, /role, /state, and a CSV upload (/roster)."""

from __future__ import annotations

import re

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ConversationHandler,
    MessageHandler,
    filters,
)

from bot.domain.records import MemberState, Role
from bot.domain.states import month_arg
from bot.errors import InvalidInput
from bot.services.roster import ROSTER_MAX_BYTES, RosterConflicts, RosterImport
from bot.i18n import Safe, Translator, language_of
from handlers import succession
from handlers.common import (
    CONFIRM_TOKEN,
    FlowInProgress,
    Context,
    confirm_press,
    giving_back,
    keep_confirm,
    take_unless_cancelled,
    actor,
    answer,
    current_branch,
    domain_errors,
    edit_or_send,
    is_private,
    reply,
    send_private,
    services,
    translator,
)

WAIT_FILE = 0
ROLE_WORDS = {
    "secretary": Role.SECRETARY, "书记": Role.SECRETARY, "支部书记": Role.SECRETARY,
    "deputy": Role.DEPUTY, "副书记": Role.DEPUTY,
    "recorder": Role.RECORDER, "记录员": Role.RECORDER, "积分记录员": Role.RECORDER,
    "supervisor": Role.SUPERVISOR, "监督员": Role.SUPERVISOR, "积分监督员": Role.SUPERVISOR,
}
STATE_WORDS = {
    "active": MemberState.ACTIVE, "正式": MemberState.ACTIVE,
    "probationary": MemberState.PROBATIONARY, "预备": MemberState.PROBATIONARY,
    "exempt": MemberState.EXEMPT, "免考": MemberState.EXEMPT, "不纳入": MemberState.EXEMPT,
    "migrant": MemberState.MIGRANT, "流动": MemberState.MIGRANT,
}


@domain_errors
async def join_command(update: Update, context: Context) -> None:
    if is_private(update):
        await reply(update, translator(update)("join.in_group_only"))
        return
    svc = services(context)
    branch = await current_branch(update, context)
    tr = translator(update, branch)
    assert update.effective_user is not None
    member = await svc.roster.request_join(branch, actor(update.effective_user))
    buttons = InlineKeyboardMarkup([[
        InlineKeyboardButton(tr("join.approve"), callback_data=f"join:ok:{member.id}"),
        InlineKeyboardButton(tr("join.reject"), callback_data=f"join:no:{member.id}"),
    ]])
    await reply(update, tr("join.requested", name=member.name), reply_markup=buttons)


@domain_errors
async def join_decided(update: Update, context: Context) -> None:
    query = update.callback_query
    assert query is not None and query.data is not None and update.effective_chat is not None
    _, verdict, member_id = query.data.split(":")
    svc = services(context)
    branch = await svc.branches.by_chat(update.effective_chat.id)
    tr = translator(update, branch)
    decision = await svc.roster.decide_join(branch, int(member_id), actor(query.from_user), approve=verdict == "ok")
    key = "join.approved" if decision.approved else "join.rejected"
    await answer(query, tr(key, name=decision.member.name, by=query.from_user.full_name))
    await query.edit_message_text(tr(key, name=decision.member.name, by=query.from_user.full_name))
    if decision.approved and decision.member.user_id is not None:
        private = Translator(language_of(decision.member.language, branch.language))
        await send_private(context, decision.member.user_id, private("join.welcome", branch=branch.title))


@domain_errors
async def members_command(update: Update, context: Context) -> None:
    svc = services(context)
    branch = await current_branch(update, context)
    tr = translator(update, branch)
    assert update.effective_user is not None
    rows = await svc.roster.listing(branch, actor(update.effective_user))
    lines = [tr("members.header", branch=branch.title, count=len(rows))]
    for member, roles in rows:
        labels = tr("common.list_separator").join(tr(f"role.{r.value}") for r in sorted(roles))
        lines.append(tr(
            "members.line", number=member.id, name=member.name, state=tr(f"state.{member.state.value}"),
            roles=Safe(f" · {labels}") if roles else "", linked=Safe("") if member.user_id else Safe(" ⌀"),
        ))
    lines.append(tr("members.footer_unlinked"))
    # The management hints, to whoever may use them: /role and /remove the secretary, /state a deputy too.
    mine = next((roles for member, roles in rows if member.user_id == update.effective_user.id), set())
    if Role.SECRETARY in mine:
        lines.append(tr("members.footer_secretary"))
    elif Role.DEPUTY in mine:
        lines.append(tr("members.footer_deputy"))
    await reply(update, "\n".join(lines))


@domain_errors
async def role_command(update: Update, context: Context) -> None:
    svc = services(context)
    branch = await current_branch(update, context)
    tr = translator(update, branch)
    if not is_private(update) and await succession.offer_claim(update, context, branch):
        return  # no secretary left in the group: an administrator may claim the role (handlers.succession)
    args = context.args or []
    if len(args) != 2:
        await reply(update, tr("role.usage"))
        return
    reference, word = args
    revoke = word.startswith("-")
    role = ROLE_WORDS.get(word.lstrip("-").lower())
    if role is None:
        await reply(update, tr("role.unknown", role=word))
        return
    assert update.effective_user is not None
    target = await svc.roster.find(branch, reference)
    if role is Role.SECRETARY and not revoke and await succession.secretary_added(update, context, branch, target):
        return  # a secretary naming another: made secretary, and asked "hand over (I step down)" or "keep both"
    changed = await svc.roster.set_role(branch, actor(update.effective_user), target, role, grant=not revoke)
    key = ("role.revoked" if revoke else "role.granted") if changed else ("role.not_held" if revoke else "role.already")
    await reply(update, tr(key, name=target.name, role=tr(f"role.{role.value}")))


@domain_errors
async def state_command(update: Update, context: Context) -> None:
    svc = services(context)
    branch = await current_branch(update, context)
    tr = translator(update, branch)
    args = context.args or []
    if len(args) < 2:
        await reply(update, tr("state.usage") + "\n" + tr("state.usage_from"))
        return
    state = STATE_WORDS.get(args[1].lower())
    if state is None:
        await reply(update, tr("state.unknown", state=args[1]))
        return
    assert update.effective_user is not None
    rest = args[2:]
    from_month = None  # "/state N exempt 2026-03 原因": from March (a word shaped like a date must be one)
    if rest and re.fullmatch(r"\d{4}-\d{1,2}(-\d{1,2})?", rest[0]):
        from_month = month_arg(rest[0])
        if from_month is None:
            await reply(update, tr("state.bad_month", month=rest[0]))
            return
        rest = rest[1:]
    target = await svc.roster.find(branch, args[0])
    updated = await svc.roster.set_state(branch, actor(update.effective_user), target, state, " ".join(rest) or None,
                                         from_month=from_month)
    reason = Safe("") if not updated.state_reason else Safe(tr("state.reason", reason=updated.state_reason))
    if from_month is None:
        await reply(update, tr("state.set", name=updated.name, state=tr(f"state.{updated.state.value}"), reason=reason))
    else:
        await reply(update, tr("state.set_from", name=updated.name, state=tr(f"state.{updated.state.value}"), reason=reason,
                               month=f"{from_month:%Y-%m}"))


@domain_errors
async def roster_start(update: Update, context: Context) -> int:
    if not is_private(update):
        await reply(update, translator(update)("roster.private_only"))
        return ConversationHandler.END
    branch = await current_branch(update, context)
    tr = translator(update, branch)
    assert update.effective_user is not None
    roles = await services(context).roster.roles_of_user(branch, update.effective_user.id)
    if not roles & {Role.SECRETARY, Role.DEPUTY}:
        await reply(update, tr("error.auth.needs_role", roles=tr("role.secretary")))
        return ConversationHandler.END
    context.user_data["roster_branch"] = branch.id
    await reply(update, tr("roster.send_file", branch=branch.title))
    return WAIT_FILE


async def roster_file(update: Update, context: Context) -> int:
    svc = services(context)
    message = update.effective_message
    assert message is not None and message.document is not None and update.effective_user is not None
    branch = await svc.branches.by_id(context.user_data.get("roster_branch", 0))
    tr = translator(update, branch)
    try:
        if (message.document.file_size or 0) > ROSTER_MAX_BYTES:  # refuse before downloading it
            raise InvalidInput("roster.too_big", limit_kb=ROSTER_MAX_BYTES // 1024)
        file = await message.document.get_file()
        data = bytes(await file.download_as_bytearray())
        result = await svc.roster.import_roster(branch, actor(update.effective_user), data)
    except RosterConflicts as error:
        await reply(update, _conflicts(tr, error) + "\n" + tr("roster.nothing_saved"))
        return WAIT_FILE
    except InvalidInput as error:
        await reply(update, tr(f"error.{error.key}", **error.params) + "\n" + tr("roster.nothing_saved"))
        return WAIT_FILE
    await reply(update, _imported(tr, result))
    return ConversationHandler.END


LISTED_MAX = 30  # names listed per kind, and conflicts listed, in one reply


def _names(tr: Translator, members: list) -> str:
    return tr("common.list_separator").join(m.name for m in members[:LISTED_MAX]) + ("…" if len(members) > LISTED_MAX else "")


def _imported(tr: Translator, result: RosterImport) -> str:
    """How many the upload added, updated and found unchanged, who, and the rows it did not add."""
    lines = [tr("roster.imported", count=len(result.added) + len(result.updated) + len(result.unchanged),
                added=len(result.added), updated=len(result.updated), unchanged=len(result.unchanged))]
    if result.added:
        lines.append(tr("roster.added_names", names=_names(tr, result.added)))
    if result.updated:
        lines.append(tr("roster.updated_names", names=_names(tr, result.updated)))
    for line, name, number in result.gone[:LISTED_MAX]:
        lines.append(tr("roster.gone", line=line, name=name, number=number))
    if len(result.gone) > LISTED_MAX:
        lines.append("…")
    if result.added:
        lines.append(tr("roster.join_hint"))
    return "\n".join(lines)


def _conflicts(tr: Translator, error: RosterConflicts) -> str:
    """Every row the upload could not tell apart, one line each, their line numbers in the reader's list style."""
    separator = tr("common.list_separator")
    lines = [tr("error.roster.conflicts", count=len(error.problems))]
    for key, params in error.problems[:LISTED_MAX]:
        shown = {k: separator.join(str(n) for n in v) if isinstance(v, tuple) else v for k, v in params.items()}
        lines.append("• " + tr(f"error.{key}", **shown))
    if len(error.problems) > LISTED_MAX:
        lines.append("…")
    return "\n".join(lines)


@domain_errors
async def remove_command(update: Update, context: Context) -> None:
    """/remove 编号 原因: the secretary removes a member who left the party organisation for good, after a
    confirm button (the reason waits in the database for the press; the press re-checks everything)."""
    svc = services(context)
    branch = await current_branch(update, context)
    tr = translator(update, branch)
    args = context.args or []
    if len(args) < 2:
        await reply(update, tr("remove.usage"))
        return
    assert update.effective_user is not None
    target = await svc.roster.find(branch, args[0])
    check = await svc.roster.check_removal(branch, actor(update.effective_user), target, " ".join(args[1:]))
    token = await keep_confirm(update, context, "remove", branch, {"member": target.id, "reason": check.reason})
    rows = [[InlineKeyboardButton(tr("remove.confirm_button"), callback_data=f"mr:ok:{token}"),
             InlineKeyboardButton(tr("remove.cancel_button"), callback_data=f"mr:no:{token}")]]
    text = tr("remove.confirm", number=target.id, name=target.name, reason=check.reason)
    if check.voidable:  # nothing personal recorded: the approval itself may have been the mistake
        rows.append([InlineKeyboardButton(tr("remove.void_button"), callback_data=f"mr:void:{token}")])
        text += "\n" + tr("remove.void_note")
    await reply(update, text, reply_markup=InlineKeyboardMarkup(rows))


@domain_errors
async def remove_pressed(update: Update, context: Context) -> None:
    query = update.callback_query
    press = await confirm_press(update, context, "remove", sender_only=False)  # any secretary (the service checks)
    if press is None or query is None or query.message is None:
        return
    svc, branch, tr, verdict = services(context), press.branch, press.tr, press.verdict
    target_id, reason = int(press.details["member"]), str(press.details["reason"])
    if not await svc.roster.roles_of_user(branch, query.from_user.id) & {Role.SECRETARY}:  # before the take: a
        await answer(query, tr("error.auth.needs_role", roles=tr("role.secretary")), alert=True)  # member's press holds nothing
        return
    claim = await take_unless_cancelled(update, context, press, "remove.cancelled")
    if claim is None:
        return
    async with giving_back(context, claim):
        removal = await svc.roster.remove(branch, actor(query.from_user), target_id, reason, void=verdict == "void")
    member = removal.member
    roles = tr("common.list_separator").join(tr(f"role.{r.value}") for r in sorted(removal.roles))
    dropped = Safe(tr("remove.roles_dropped", roles=roles)) if removal.roles else Safe("")
    if removal.voided:
        done = tr("remove.voided", number=member.id, name=member.name, reason=reason, roles=dropped)
    else:
        done = tr("remove.done", number=member.id, name=member.name, reason=reason,
                  day=member.left_on.isoformat() if member.left_on else "", roles=dropped)
    if removal.withdrawn:
        done += "\n" + tr("remove.declarations_withdrawn", numbers=tr("common.list_separator").join(f"#{n}" for n in removal.withdrawn))
    await answer(query, tr("remove.done_popup", name=member.name))
    await edit_or_send(query, done)
    if member.user_id is not None:
        private = Translator(language_of(member.language, branch.language))
        told = "remove.told_void" if removal.voided else "remove.told"
        await send_private(context, member.user_id, private(told, branch=branch.title, reason=reason))


async def roster_not_file(update: Update, context: Context) -> int:
    await reply(update, translator(update)("roster.need_file"))
    return WAIT_FILE


async def cancel(update: Update, context: Context) -> int:
    await reply(update, translator(update)("common.cancelled"))
    return ConversationHandler.END


def register(app: Application) -> None:
    app.add_handler(CommandHandler("join", join_command))
    app.add_handler(CallbackQueryHandler(join_decided, pattern=r"^join:(ok|no):\d{1,12}$"))
    app.add_handler(CommandHandler("members", members_command))
    app.add_handler(CommandHandler("role", role_command))
    succession.register(app)
    app.add_handler(CommandHandler("state", state_command))
    app.add_handler(CommandHandler("remove", remove_command))
    app.add_handler(CallbackQueryHandler(remove_pressed, pattern=rf"^mr:(ok|no|void):{CONFIRM_TOKEN}$"))
    app.add_handler(ConversationHandler(
        entry_points=[CommandHandler("roster", roster_start)],
        states={WAIT_FILE: [MessageHandler(filters.Document.ALL, roster_file),
                            MessageHandler(filters.ALL & ~filters.COMMAND, roster_not_file)]},
        fallbacks=[CommandHandler("cancel", cancel), FlowInProgress(app, "roster")],
        name="roster", allow_reentry=True,
    ))
