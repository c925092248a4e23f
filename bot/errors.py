"""Domain exceptions: services raise them, handlers turn them into replies in the user's language."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A refusal the user should read: ``key`` names a catalog message, ``params`` fill it."""

    def __init__(self, key: str, **params: Any):
        self.key = key
        self.params = params
        super().__init__(key)


class NotAuthorized(DomainError):
    """The actor lacks the role the action needs (callback data carries no authority)."""


class NotFound(DomainError):
    """The thing named does not exist in this branch."""


class AlreadyDone(DomainError):
    """A repeat of a state change that already happened (a double tap, a redelivered update)."""


class InvalidInput(DomainError):
    """Input that breaks a rule; nothing was saved."""
