"""Command line: `python -m bot run [--webhook …] | demo | backup PATH | bench`."""

from __future__ import annotations

import argparse
import logging
import sqlite3
import sys
from pathlib import Path
from typing import Any

from bot.settings import Settings


LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
ALLOWED_UPDATES = ["message", "callback_query", "my_chat_member", "chat_member"]


class _Redacting(logging.Formatter):
    """Replaces the token (and its secret half) in every log line: PTB logs the Bot API URL at DEBUG."""

    def __init__(self, fmt: str, secrets: tuple[str, ...], others: tuple[str, ...] = ()):
        super().__init__(fmt)
        self.secrets = tuple((s, "<BOT_TOKEN>") for s in secrets if s) + tuple((s, "<SECRET>") for s in others if s)

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        for secret, label in self.secrets:
            text = text.replace(secret, label)
        return text


def _configure_logging(level: str, token: str = "", webhook_secret: str = "") -> None:
    logging.basicConfig(format=LOG_FORMAT, level=level.upper())
    for handler in logging.getLogger().handlers:
        handler.setFormatter(_Redacting(LOG_FORMAT, (token, token.partition(":")[2]), (webhook_secret,)))
    # httpx logs every request URL at INFO, and the URL contains the bot token.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    # APScheduler logs every scheduler tick (each minute) at INFO; failures still show as errors.
    logging.getLogger("apscheduler.executors.default").setLevel(logging.WARNING)


def run(settings: Settings, webhook_flags: dict[str, Any] | None = None) -> int:
    """Polling (the default), or a webhook server when ``webhook_flags`` is given (``run --webhook``)."""
    from bot.app import build_application
    from bot.clock import ShiftedClock
    from bot.errors import DomainError
    from telegram.error import InvalidToken, NetworkError, TelegramError
    from bot.services import Services
    from bot.webhook import run_webhook
    from schedules.engine import TICK_SECONDS_KEY
    from storage.backends import make_database
    from storage.postgres import redact

    try:
        token = settings.token()
        webhook = settings.webhook(**webhook_flags) if webhook_flags is not None else None
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    _configure_logging(settings.log_level, token, webhook.secret_token if webhook else "")
    log = logging.getLogger(__name__)
    clock = None
    if settings.clock_start is not None:
        try:
            clock = ShiftedClock(settings.clock_start, settings.clock_start_at)
        except ValueError as exc:
            print(f"error: CLOCK_START: {exc}", file=sys.stderr)
            return 2
        log.warning("CLOCK_START is set: the bot's clock is moved by %s (tests and demos only)", clock.offset)
    try:
        db = make_database(settings.database())
    except ValueError as exc:
        print(f"error: DATABASE_URL: {exc}", file=sys.stderr)
        return 2
    location = redact(settings.database())
    try:
        services = Services(db, clock=clock, default_timezone=settings.default_timezone)
    except DomainError:
        print(f"error: DEFAULT_TIMEZONE {settings.default_timezone!r} is not a known timezone (e.g. Asia/Shanghai).", file=sys.stderr)
        return 2
    services.towns.configure(settings.town_operators, settings.town_overdue_days)

    async def open_db(app) -> None:
        await db.open()

    async def close_db(app) -> None:
        await db.close()

    app = build_application(token, services, base_url=settings.bot_api_base_url, base_file_url=settings.bot_api_base_file_url)
    previous_init = app.post_init

    async def post_init(application) -> None:
        await open_db(application)
        if previous_init:
            await previous_init(application)

    app.post_init = post_init
    app.post_shutdown = close_db
    app.bot_data[TICK_SECONDS_KEY] = settings.scheduler_tick_seconds
    try:
        if webhook is None:
            log.info("database at %s; polling", location)
            app.run_polling(allowed_updates=ALLOWED_UPDATES)  # PTB deletes a webhook that was set
        else:
            log.info("database at %s; webhook: Telegram posts to %s, served at http://%s:%d/%s", location,
                     webhook.url, webhook.listen, webhook.port, webhook.path)
            # PTB's tornado handler answers 403 to a request without the right X-Telegram-Bot-Api-Secret-Token
            # before the update reaches the application; bot/webhook.py answers 200 only once the update was
            # handled, so a process killed meanwhile gets it posted again (as polling, bot/polling.py).
            run_webhook(app, listen=webhook.listen, port=webhook.port, url_path=webhook.path, webhook_url=webhook.url,
                        secret_token=webhook.secret_token, allowed_updates=ALLOWED_UPDATES)
    except InvalidToken:
        print("error: Telegram refused BOT_TOKEN (revoked or mistyped): get it again from @BotFather.", file=sys.stderr)
        return 2
    except NetworkError as exc:
        print(f"error: cannot reach the Bot API at {settings.bot_api_base_url}: {exc}", file=sys.stderr)
        return 2
    except TelegramError as exc:  # setWebhook refused: not https, a port Telegram does not post to, …
        print(f"error: Telegram refused the webhook {webhook.url if webhook else ''}: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # the port is taken, or the address is not this machine's
        where = f"{webhook.listen}:{webhook.port}" if webhook else "the Bot API"
        print(f"error: cannot listen on {where}: {exc}", file=sys.stderr)
        return 2
    return 0


def backup(settings: Settings, target: Path, force: bool = False) -> int:
    """An online copy through SQLite's backup API: consistent even while the bot writes.

    The copy is made in one step (one read transaction on the source: WAL readers never block the
    bot's writers), into a temporary file next to the target, checked with ``PRAGMA integrity_check``
    and only then renamed over the target, so a backup that failed half way never looks like one.
    Restore: stop the bot, copy the backup over DATABASE_PATH, delete any ``-wal``/``-shm`` files next
    to it, start the bot.
    """
    from storage.backends import is_postgres, sqlite_path

    if is_postgres(settings.database()):
        print("error: backup copies a SQLite file; for PostgreSQL use pg_dump (README, 'PostgreSQL')", file=sys.stderr)
        return 2
    source_path = Path(sqlite_path(settings.database()))
    if not source_path.exists():
        print(f"error: no database at {source_path}", file=sys.stderr)
        return 2
    if target.exists() and target.resolve() == source_path.resolve():
        print("error: the backup must not overwrite the database itself", file=sys.stderr)
        return 2
    if target.exists() and not force:  # an earlier backup is not replaced by a typo: --force says so
        print(f"error: {target} exists already (another backup?): choose a new name, or add --force to replace it",
              file=sys.stderr)
        return 2
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    # Connections are closed explicitly: sqlite3's context manager only commits, and a connection
    # left to the garbage collector keeps the database's -wal/-shm files in use.
    source = sqlite3.connect(source_path, timeout=30)
    try:
        copy = sqlite3.connect(partial)
        try:
            source.backup(copy)  # pages=-1: the whole database in one step, one consistent snapshot
            copy.execute("PRAGMA journal_mode = DELETE")  # a single self-contained file
            check = copy.execute("PRAGMA integrity_check").fetchone()[0]
        finally:
            copy.close()
    finally:
        source.close()
    if check != "ok":
        partial.unlink(missing_ok=True)
        print(f"error: the copy failed its integrity check: {check}", file=sys.stderr)
        return 1
    partial.replace(target)
    print(f"backed up {source_path.resolve()} to {target.resolve()}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot", description="Party branch points bot (党员积分制管理)")
    sub = parser.add_subparsers(dest="command", required=True)
    run_parser = sub.add_parser("run", help="run the bot (polling, or --webhook) with BOT_TOKEN from the environment or .env")
    run_parser.add_argument("--webhook", action="store_true",
                            help="receive updates at a webhook (behind a reverse proxy) instead of polling; "
                                 "needs WEBHOOK_URL and WEBHOOK_SECRET_TOKEN")
    run_parser.add_argument("--webhook-url", help="the public https URL Telegram posts to (default: WEBHOOK_URL)")
    run_parser.add_argument("--listen", help="the address to listen on (default: WEBHOOK_LISTEN, 127.0.0.1)")
    run_parser.add_argument("--port", type=int, help="the port to listen on (default: WEBHOOK_PORT, 8443)")
    run_parser.add_argument("--url-path", help="the path served, e.g. telegram (default: WEBHOOK_PATH)")
    sub.add_parser("demo", help="a scripted month of a branch, offline: no token, no network")
    backup_parser = sub.add_parser("backup", help="copy the database safely while the bot runs")
    backup_parser.add_argument("path", type=Path)
    backup_parser.add_argument("--force", action="store_true", help="replace PATH if it exists")
    bench_parser = sub.add_parser("bench", help="the benchmark, offline: flows against their floor, /grade and notices at scale")
    bench_parser.add_argument("--size", choices=("small", "town", "county"), default="town")
    bench_parser.add_argument("--quick", action="store_true")
    bench_parser.add_argument("--backend", choices=("sqlite", "postgres"), default=None,
                              help="postgres: a throwaway PostgreSQL cluster (initdb + pg_ctl); default sqlite")
    bench_parser.add_argument("--database-url", default=None, help="a postgresql:// database to run on (own schemas, dropped after)")
    migrate_parser = sub.add_parser("migrate-db", help="copy a SQLite deployment into an empty PostgreSQL database, verified")
    migrate_parser.add_argument("--from", dest="source", required=True, help="sqlite:///PATH (the bot stopped)")
    migrate_parser.add_argument("--to", dest="target", required=True, help="postgresql://USER@HOST:PORT/DB (empty)")
    from bot.town_cli import add_parser as add_town_parser

    add_town_parser(sub)
    args = parser.parse_args(argv)
    if args.command == "migrate-db":
        from bot.migrate_db import main as migrate_db_main

        return migrate_db_main(args.source, args.target)
    if args.command == "bench":
        from bench.run import main as bench_main

        return bench_main(["--size", args.size] + (["--quick"] if args.quick else [])
                          + (["--backend", args.backend] if args.backend else [])
                          + (["--database-url", args.database_url] if args.database_url else []))
    if args.command == "demo":
        from bot.demo import main as demo_main

        return demo_main()
    settings = Settings()
    if args.command == "town":
        from bot.town_cli import main as town_main

        return town_main(args, settings)
    if args.command == "backup":
        return backup(settings, args.path, force=args.force)
    webhook_flags = {"url": args.webhook_url, "listen": args.listen, "port": args.port, "path": args.url_path}
    if not args.webhook:
        if any(value is not None for value in webhook_flags.values()):
            print("error: --webhook-url, --listen, --port and --url-path need --webhook", file=sys.stderr)
            return 2
        return run(settings)
    return run(settings, webhook_flags)
