"""`python -m bot town …`: the operator names towns and their administrators from the command line.

    python -m bot town add NAME --admin TELEGRAM_ID [--admin-name NAME] [--timezone Asia/Shanghai] [--language zh]
    python -m bot town admin TOWN --add TELEGRAM_ID [--name NAME] | --remove TELEGRAM_ID
    python -m bot town detach TOWN --chat GROUP_CHAT_ID     (a branch leaves the town)
    python -m bot town list

TOWN is the town's name or number (as ``list`` shows it). Works on the database the bot uses
(DATABASE_URL or DATABASE_PATH), also while the bot runs.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from bot.errors import DomainError
from bot.i18n import t
from bot.settings import Settings


def add_parser(sub: argparse._SubParsersAction) -> None:
    town = sub.add_parser("town", help="towns (镇党委 / 党总支) and their administrators, for the operator")
    verbs = town.add_subparsers(dest="town_command", required=True)
    add = verbs.add_parser("add", help="create a town with its first administrator")
    add.add_argument("name")
    add.add_argument("--admin", type=int, required=True, help="the administrator's numeric Telegram id")
    add.add_argument("--admin-name", default=None)
    add.add_argument("--timezone", default="Asia/Shanghai")
    add.add_argument("--language", default="zh", choices=("zh", "en"))
    admin = verbs.add_parser("admin", help="add or remove an administrator of a town")
    admin.add_argument("town")
    group = admin.add_mutually_exclusive_group(required=True)
    group.add_argument("--add", type=int)
    group.add_argument("--remove", type=int)
    admin.add_argument("--name", default=None)
    detach = verbs.add_parser("detach", help="take a branch (by its group chat id) out of a town")
    detach.add_argument("town")
    detach.add_argument("--chat", type=int, required=True)
    verbs.add_parser("list", help="every town, its branches and administrators")


def _database(settings: Settings):
    try:
        from storage.backends import make_database
    except ImportError:  # a SQLite-only build
        from storage.db import Database

        return Database(settings.database_path)
    url = settings.database() if hasattr(settings, "database") else settings.database_path
    return make_database(url)


def _missing_database(settings: Settings) -> Path | None:
    """The SQLite file the settings name, when it does not exist (None: it does, or it is PostgreSQL)."""
    from storage.backends import is_postgres, sqlite_path

    url = settings.database() if hasattr(settings, "database") else settings.database_path
    if is_postgres(url) or sqlite_path(url) == ":memory:":
        return None
    path = Path(sqlite_path(url))
    return None if path.exists() else path


async def _run(args: argparse.Namespace, settings: Settings) -> int:
    from bot.services import Services

    # A mistyped DATABASE_PATH (or a relative one from another directory) would otherwise be a new,
    # empty database: only `town add` may start one (before the bot's first run), and it says so.
    missing = _missing_database(settings)
    if missing is not None and args.town_command != "add":
        print(f"error: no database at {missing.resolve()} (set DATABASE_PATH or DATABASE_URL to the bot's)", file=sys.stderr)
        return 2
    if missing is not None:
        print(f"note: no database at {missing.resolve()} yet: creating it")
    db = await _database(settings).open()
    try:
        services = Services(db, default_timezone=settings.default_timezone)
        towns = services.towns
        if args.town_command == "add":
            town = await towns.create(args.name, admin_id=args.admin, admin_name=args.admin_name, created_by=0,
                                      timezone=args.timezone, language=args.language)
            print(f"town {town.id} '{town.name}' created; administrator {args.admin}")
        elif args.town_command == "admin":
            town = await towns.by_name(args.town)
            if args.add is not None:
                added = await towns.add_admin(town.id, None, args.add, args.name)
                print(f"{args.add} {'is now' if added else 'already was'} an administrator of '{town.name}'")
            else:
                removed = await towns.remove_admin(town.id, None, args.remove)
                print(f"{args.remove} {'removed from' if removed else 'was not'} an administrator of '{town.name}'")
        elif args.town_command == "detach":
            town = await towns.by_name(args.town)
            branch = await towns_branch(towns, town.id, args.chat)
            detached = await towns.detach(town.id, None, branch)
            print(f"branch {args.chat} left '{town.name}'"
                  + "".join(f"; the {r.year} review waiting for the town closed" for r in detached.reviews)
                  + (f"; open appeals closed: {', '.join(f'#{a.id}' for a in detached.appeals)}" if detached.appeals else "")
                  + (f"; ordered corrections still standing (the branch writes them): {', '.join(f'#{a.id}' for a in detached.orders)}"
                     if detached.orders else ""))
            print(await _tell_detached(settings, services, detached))
        else:
            listed = await towns.all_towns()
            if not listed:
                print("no towns yet: python -m bot town add NAME --admin TELEGRAM_ID")
            for town, branches, admins in listed:
                names = ", ".join(f"{a.user_id}" + (f" ({a.name})" if a.name else "") + ("" if a.reachable else " [unreachable]")
                                  for a in admins)
                print(f"{town.id}\t{town.name}\t{town.timezone}\t{branches} branches\tadministrators: {names or '-'}")
    except DomainError as error:
        params = {k: v for k, v in error.params.items()}
        print("error: " + t("en", f"error.{error.key}", **params), file=sys.stderr)
        return 2
    finally:
        await db.close()
    return 0


async def _tell_detached(settings: Settings, services, detached) -> str:
    """The branch's secretary and deputies are told through the Bot API (the bot may be running: a
    message from this process is just another send). Without a usable BOT_TOKEN, say who to tell."""
    names = ", ".join(m.name for m in detached.told) or "-"
    try:
        token = settings.token()
    except ValueError:
        return f"not told (no usable BOT_TOKEN): tell the branch's secretary yourself ({names})"
    from bot.app import build_application
    from handlers.town import tell_detached

    app = build_application(token, services, rate_limit=False, set_menus=False)
    async with app:
        reached = await tell_detached(app, detached)
    return f"told {reached} of the branch's secretary and deputies ({names})"


async def towns_branch(towns, town_id: int, chat_id: int) -> int:
    for branch in await towns.branches(town_id):
        if branch.chat_id == chat_id:
            return branch.id
    raise DomainError("town.branch_not_in_town")


def main(args: argparse.Namespace, settings: Settings | None = None) -> int:
    return asyncio.run(_run(args, settings or Settings()))
