"""(being built) Telegram glue for the meetings part of the branch calendar."""

from __future__ import annotations

from telegram.ext import Application

# Commands this module adds to the menus, by scope; each needs a menu.<command> catalog entry.
MENU: dict[str, tuple[str, ...]] = {"private": (), "group": (), "admin": ()}


def register(app: Application) -> None:
    """Add this module's handlers (called in bot.app.register_handlers)."""
