"""The exception tree: every user-facing failure is a NewsletterError naming what it is about."""

from __future__ import annotations


class NewsletterError(Exception):
    """Root of every error the CLI turns into a one-line message and an exit code."""

    exit_code = 1

    def __init__(self, message: str, *, where: str | None = None) -> None:
        super().__init__(message)
        self.where = where
        self.message = message

    def __str__(self) -> str:
        return f"{self.where}: {self.message}" if self.where else self.message


class InputError(NewsletterError):
    """Bad input from a user: a draft, config, CSV row or command-line argument (exit 2)."""

    exit_code = 2


class ConfigError(InputError):
    """newsletter.toml is missing, unreadable or has a bad key."""


class DraftError(InputError):
    """A draft has one or more problems; all of them are listed."""

    def __init__(self, path: str, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems), where=path)

    def __str__(self) -> str:
        return "\n".join(f"{self.where}: {p}" for p in self.problems)


class FeedError(NewsletterError):
    """One feed could not be fetched or parsed; the caller logs it and goes on."""


class DeliveryError(NewsletterError):
    """The transport failed in a way that says nothing about a subscriber (auth, TLS, connect)."""
