"""/rulebook: the values of the branch's rulebook that came from a default (the seed gives none), and
/rulebook KEY VALUE to change one (bot.domain.overrides; BranchService.change_rule).

A whole-year value (尖草坪's base, 张店's democratic weights) waits for a confirm button: ``rbk:y:BRANCH:KEY:VALUE:BASIS`` (BASIS: the digest of the overrides it was worked out from)
(the change itself, well under 64 bytes) or ``rbk:n:BRANCH``. The data is no authority: the service checks the
presser's role in that branch and everything else again on the press.
"""

from __future__ import annotations

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import Application, CallbackQueryHandler, CommandHandler

from bot.domain import overrides
from bot.domain.overrides import BASE, WEIGHTS, Scope, Spot
from bot.i18n import Translator
from bot.services.branches import RuleChange, RuleValue
from handlers.common import (Context, actor, answer, current_branch, domain_errors, edit_or_send, presser_translator,
                             reply, services, translator)

# In the menus of private chats and group administrators once handlers/menus.py lists this module in _FEATURES.
MENU: dict[str, tuple[str, ...]] = {"private": ("rulebook",), "group": (), "admin": ("rulebook",)}
CALLBACK = r"^rbk:(y:\d{1,18}:[a-z0-9_.]{1,40}:[0-9.,-]{1,40}:[0-9a-f]{6}|n:\d{1,18})$"
CALLBACK_LIMIT = 64


def label(tr: Translator, spot: Spot) -> str:
    if spot.key == BASE:
        return tr.plain("rulebook.label.base")
    if spot.key == WEIGHTS:
        return tr.plain("rulebook.label.weights")
    text = spot.label
    return text.get(tr.lang) if text is not None else spot.key


def listing(tr: Translator, title: str, values: list[RuleValue]) -> str:
    if not values:
        return tr("rulebook.none", branch=title)
    lines = [tr("rulebook.header", branch=title, count=len(values),
                changed=sum(1 for v in values if v.changed))]
    for scope in (Scope.YEAR, Scope.ENTRIES):
        chosen = [v for v in values if v.spot.scope is scope]
        if not chosen:
            continue
        lines.append("")
        lines.append(tr(f"rulebook.section_{scope.value}"))
        for v in chosen:
            mark = (tr("rulebook.mark_changed", default=overrides.shown(v.spot.default)) if v.changed
                    else tr("rulebook.mark_default"))
            lines.append(tr("rulebook.line", code=v.spot.key, name=label(tr, v.spot),
                            value=overrides.shown(v.value), mark=mark))
    lines.append("")
    lines.append(usage(tr, values))
    return "\n".join(lines)


def usage(tr: Translator, values: list[RuleValue]) -> str:
    """How to change one, the example taken from the branch's own list (a value one step from the current)."""
    plain_values = [v for v in values if v.spot.key != WEIGHTS]
    text = ""
    if plain_values:
        first = plain_values[0]
        now = first.value[0]
        example = now + 5 if first.spot.key == BASE else now + 1 if now > 0 else now - 1
        text = tr("rulebook.usage", example=f"{first.spot.key} {overrides.shown((example,))}")
    if any(v.spot.key == WEIGHTS for v in values):
        text = (text + "\n" if text else "") + tr("rulebook.usage_weights")
    return text


def changed_text(tr: Translator, change: RuleChange) -> str:
    key = ("rulebook.changed_year" if change.spot.scope is Scope.YEAR
           else "rulebook.changed_range" if change.spot.part in ("min", "max") else "rulebook.changed_entries")
    return tr(key, code=change.spot.key, name=label(tr, change.spot), before=overrides.shown(change.before),
              after=overrides.shown(change.after), year=change.year)


@domain_errors
async def rulebook_command(update: Update, context: Context) -> None:
    """/rulebook, or /rulebook KEY VALUE (the weights: four numbers)."""
    branch = await current_branch(update, context)
    tr = translator(update, branch)
    assert update.effective_user is not None
    svc = services(context).branches
    args = context.args or []
    if not args:
        await reply(update, listing(tr, branch.title, await svc.rule_defaults(branch, actor(update.effective_user))))
        return
    if len(args) < 2:
        await reply(update, usage(tr, await svc.rule_defaults(branch, actor(update.effective_user))) or tr("rulebook.none", branch=branch.title))
        return
    change = await svc.change_rule(branch, actor(update.effective_user), args[0], args[1:])
    if change.done:
        await reply(update, changed_text(tr, change))
        return
    data = f"rbk:y:{branch.id}:{change.spot.key}:{overrides.encoded(change.after)}:{change.basis}"
    if len(data.encode()) > CALLBACK_LIMIT:  # cannot happen with the keys and places allowed; said, not sent broken
        await reply(update, tr("rulebook.too_long"))
        return
    buttons = InlineKeyboardMarkup([[InlineKeyboardButton(tr.plain("rulebook.confirm_button"), callback_data=data),
                                     InlineKeyboardButton(tr.plain("rulebook.cancel_button"), callback_data=f"rbk:n:{branch.id}")]])
    await reply(update, tr("rulebook.confirm", code=change.spot.key, name=label(tr, change.spot),
                           before=overrides.shown(change.before), after=overrides.shown(change.after),
                           year=change.year), reply_markup=buttons)


@domain_errors
async def rulebook_pressed(update: Update, context: Context) -> None:
    query = update.callback_query
    assert query is not None and query.data is not None
    parts = query.data.split(":")
    svc = services(context).branches
    branch = await svc.by_id(int(parts[2]))
    tr = presser_translator(update, branch)
    who = actor(query.from_user)
    if parts[1] == "n":
        await svc.rule_defaults(branch, who)  # the presser's role: a member cannot take the secretary's buttons away
        await answer(query, tr("rulebook.cancelled"))
        await edit_or_send(query, tr("rulebook.cancelled"))
        return
    change = await svc.change_rule(branch, who, parts[3], [parts[4]], confirmed=True, basis=parts[5])
    await answer(query, tr("rulebook.done_short"))
    await edit_or_send(query, changed_text(translator(update, branch), change))


def register(app: Application) -> None:
    app.add_handler(CommandHandler("rulebook", rulebook_command))
    app.add_handler(CallbackQueryHandler(rulebook_pressed, pattern=CALLBACK))
