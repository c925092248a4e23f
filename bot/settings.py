"""Settings from the environment or a .env file (pydantic-settings)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

TOKEN_PATTERN = re.compile(r"^\d{3,15}:[A-Za-z0-9_-]{30,}$")
SECRET_TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,256}$")  # what setWebhook accepts
MIN_SECRET_TOKEN = 16  # shorter ones are guessable
MIN_DISTINCT_CHARACTERS = 8  # "aaaaaaaaaaaaaaaa" or "1234123412341234" is not a secret either


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    bot_token: SecretStr | None = None  # from @BotFather
    database_path: Path = Path("data/branch_points.sqlite3")
    # Where the data lives, as a URL: sqlite:///data/x.sqlite3 (relative path; sqlite:////abs/x for an
    # absolute one) or postgresql://user:password@host:5432/dbname. Unset: the SQLite file DATABASE_PATH.
    database_url: str | None = None
    bot_api_base_url: str = "https://api.telegram.org/bot"  # a self-hosted Bot API server: http://host:8081/bot
    bot_api_base_file_url: str = "https://api.telegram.org/file/bot"
    default_timezone: str = "Asia/Shanghai"
    log_level: str = "INFO"
    # Towns (镇党委 / 党总支): Telegram ids allowed to create towns in chat with /newtown (JSON list, e.g.
    # TOWN_OPERATORS=[123456789]); a declaration pending longer than TOWN_OVERDUE_DAYS is overdue.
    town_operators: list[int] = []
    town_overdue_days: int = Field(default=3, ge=1, le=60)

    # Webhook mode (`python -m bot run --webhook`): Telegram POSTs each update to WEBHOOK_URL (public,
    # https, at a reverse proxy), which forwards it to WEBHOOK_LISTEN:WEBHOOK_PORT/WEBHOOK_PATH here.
    webhook_url: str | None = None
    webhook_listen: str = "127.0.0.1"
    webhook_port: int = 8443
    webhook_path: str = "telegram"
    # Telegram sends it in X-Telegram-Bot-Api-Secret-Token; requests without it get 403. Only from the
    # environment or .env, never a flag: a command line is visible to every user of the machine.
    webhook_secret_token: SecretStr | None = None

    # Tests and demos only: the bot's clock reads CLOCK_START at the wall-clock moment CLOCK_START_AT
    # (default: when the process starts) and runs at real speed; the scheduler ticks this often.
    # Production leaves all three alone.
    clock_start: datetime | None = None
    clock_start_at: datetime | None = None
    scheduler_tick_seconds: float = Field(default=60, gt=0)

    def database(self) -> str:
        """DATABASE_URL, or the SQLite file DATABASE_PATH as a URL (existing deployments keep working)."""
        if self.database_url and self.database_url.strip():
            return self.database_url.strip()
        return f"sqlite:///{self.database_path}"

    def token(self) -> str:
        """The token, or ValueError with a one-line reason."""
        if self.bot_token is None or not self.bot_token.get_secret_value().strip():
            raise ValueError("BOT_TOKEN is not set: put it in the environment or in .env (see README, 'Create the bot').")
        token = self.bot_token.get_secret_value().strip()
        if not TOKEN_PATTERN.match(token):
            raise ValueError("BOT_TOKEN does not look like a bot token (digits, a colon, then 30+ letters, digits, _ or -).")
        return token

    def webhook(self, *, url: str | None = None, listen: str | None = None, port: int | None = None,
                path: str | None = None) -> Webhook:
        """The webhook's settings (flags override the environment), or ValueError with a one-line reason."""
        secret = self.webhook_secret_token.get_secret_value().strip() if self.webhook_secret_token else ""
        if not secret:
            raise ValueError("WEBHOOK_SECRET_TOKEN is not set: webhook mode needs it (make one with "
                             "python -c 'import secrets; print(secrets.token_urlsafe(32))').")
        if not SECRET_TOKEN_PATTERN.match(secret):
            raise ValueError("WEBHOOK_SECRET_TOKEN may only contain A-Z, a-z, 0-9, _ and - (at most 256 characters).")
        if len(secret) < MIN_SECRET_TOKEN:
            raise ValueError(f"WEBHOOK_SECRET_TOKEN is too short: at least {MIN_SECRET_TOKEN} characters "
                             "(python -c 'import secrets; print(secrets.token_urlsafe(32))').")
        if len(set(secret)) < MIN_DISTINCT_CHARACTERS:
            raise ValueError("WEBHOOK_SECRET_TOKEN is too repetitive to be a secret: use a random one "
                             "(python -c 'import secrets; print(secrets.token_urlsafe(32))').")
        token = self.bot_token.get_secret_value() if self.bot_token else ""
        if secret in token:
            raise ValueError("WEBHOOK_SECRET_TOKEN must not be (part of) the bot token: make a new one.")
        url = (url or self.webhook_url or "").strip()
        if not url:
            raise ValueError("WEBHOOK_URL is not set: the public https address Telegram posts updates to "
                             "(e.g. https://bot.example.org/telegram), or pass --webhook-url.")
        port = self.webhook_port if port is None else port
        if not 0 < port < 65536:
            raise ValueError(f"WEBHOOK_PORT {port} is not a TCP port (1-65535).")
        return Webhook(url=url, listen=listen or self.webhook_listen, port=port,
                       path=(self.webhook_path if path is None else path).strip("/"), secret_token=secret)


@dataclass(frozen=True)
class Webhook:
    url: str  # what Telegram posts to (setWebhook)
    listen: str  # where this process listens (behind the proxy)
    port: int
    path: str  # the URL path this process serves, without the leading slash
    secret_token: str = field(repr=False)
