"""Settings from the environment or a .env file (pydantic-settings)."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

TOKEN_PATTERN = re.compile(r"^\d{3,15}:[A-Za-z0-9_-]{30,}$")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    bot_token: SecretStr | None = None  # from @BotFather
    database_path: Path = Path("data/branch_points.sqlite3")
    bot_api_base_url: str = "https://api.telegram.org/bot"  # a self-hosted Bot API server: http://host:8081/bot
    bot_api_base_file_url: str = "https://api.telegram.org/file/bot"
    default_timezone: str = "Asia/Shanghai"
    log_level: str = "INFO"

    def token(self) -> str:
        """The token, or ValueError with a one-line reason."""
        if self.bot_token is None or not self.bot_token.get_secret_value().strip():
            raise ValueError("BOT_TOKEN is not set: put it in the environment or in .env (see README, 'Create the bot').")
        token = self.bot_token.get_secret_value().strip()
        if not TOKEN_PATTERN.match(token):
            raise ValueError("BOT_TOKEN does not look like a bot token (digits, a colon, then 30+ letters, digits, _ or -).")
        return token
