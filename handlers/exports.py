"""(being built) Telegram glue for the year end: the exports part."""

from __future__ import annotations

from telegram.ext import Application

MENU: dict[str, tuple[str, ...]] = {"private": (), "group": (), "admin": ()}


def register(app: Application) -> None:
    """Add this module's handlers (called in bot.app.register_handlers)."""
