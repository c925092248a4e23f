"""Webhook mode refuses to start without a strong secret token, with one line saying why (no event loop)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli import main
from bot.settings import Settings

TOKEN = "123456789:AAbcdefghijklmnopqrstuvwxyz0123456789"
GOOD_SECRET = "Xk3_p9-QzL2mW8vR4tY7"


def settings(**values: object) -> Settings:
    return Settings(_env_file=None, bot_token=TOKEN, webhook_url="https://bot.example.org/telegram", **values)


def test_a_good_secret_and_the_flags_override_the_settings() -> None:
    webhook = settings(webhook_secret_token=GOOD_SECRET).webhook(listen="0.0.0.0", port=9000, path="/hook/")
    assert (webhook.url, webhook.listen, webhook.port, webhook.path) == ("https://bot.example.org/telegram", "0.0.0.0", 9000, "hook")
    assert webhook.secret_token == GOOD_SECRET and GOOD_SECRET not in repr(webhook)
    defaults = settings(webhook_secret_token=GOOD_SECRET).webhook()
    assert (defaults.listen, defaults.port, defaults.path) == ("127.0.0.1", 8443, "telegram")


@pytest.mark.parametrize(("secret", "reason"), [
    (None, "WEBHOOK_SECRET_TOKEN is not set"),
    ("   ", "WEBHOOK_SECRET_TOKEN is not set"),
    ("Ab3_x9", "too short"),
    ("secret token with spaces", "may only contain"),
    ("密钥密钥密钥密钥密钥密钥密钥密钥", "may only contain"),
    ("x" * 257, "may only contain"),
    ("abababababababababab", "too repetitive"),
    ("AAbcdefghijklmnopqrstuvwxyz", "not be (part of) the bot token"),
])
def test_a_missing_or_weak_secret_is_refused(secret: str | None, reason: str) -> None:
    with pytest.raises(ValueError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        settings(webhook_secret_token=secret).webhook()


def test_no_url_and_a_bad_port_are_refused() -> None:
    with pytest.raises(ValueError, match="WEBHOOK_URL is not set"):
        Settings(_env_file=None, bot_token=TOKEN, webhook_secret_token=GOOD_SECRET).webhook()
    with pytest.raises(ValueError, match="not a TCP port"):
        settings(webhook_secret_token=GOOD_SECRET).webhook(port=70000)


def test_the_command_refuses_in_one_line_before_touching_anything(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    for name in ("WEBHOOK_SECRET_TOKEN", "WEBHOOK_URL", "DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BOT_TOKEN", TOKEN)
    monkeypatch.setenv("DATABASE_PATH", str(tmp_path / "db.sqlite3"))
    assert main(["run", "--webhook", "--webhook-url", "https://bot.example.org/telegram"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: WEBHOOK_SECRET_TOKEN is not set") and error.count("\n") == 1
    monkeypatch.setenv("WEBHOOK_SECRET_TOKEN", "short")
    assert main(["run", "--webhook", "--webhook-url", "https://bot.example.org/telegram"]) == 2
    assert "too short" in capsys.readouterr().err
    assert main(["run", "--port", "8443"]) == 2  # webhook flags without --webhook
    assert "need --webhook" in capsys.readouterr().err
    assert not (tmp_path / "db.sqlite3").exists()  # refused before the database was opened
