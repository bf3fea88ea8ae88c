"""How the PostgreSQL store connects and how it speaks of a connection: the URL as messages
show it (never a password), the password's sources, libpq's keyword arguments, and a psycopg
error as one line."""

from __future__ import annotations

import os
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

PASSWORD_ENV = "NEWSLETTER_DATABASE_PASSWORD"


def one_line(exc: BaseException, secret: str | None) -> str:
    """psycopg's message on one line, never the password. libpq's further lines are kept
    (joined): they say what to do ("Either provide the file or change sslmode ...")."""
    lines = [line.strip() for line in str(exc).strip().splitlines()
             if line.strip() and not line.startswith("DETAIL:")]  # DETAIL may quote row data
    text = "; ".join(lines)[:600] or type(exc).__name__
    if text.endswith("no password supplied"):
        text += f" (set {PASSWORD_ENV}, or a ~/.pgpass line for this host)"
    return text.replace(secret, "***") if secret else text


def describe(url: str) -> str:
    """postgresql://user@host:port/db for messages: never the password."""
    try:
        parts = conninfo_to_dict(url)
    except psycopg.Error:
        return "postgresql://?"
    user = f"{parts['user']}@" if parts.get("user") else ""
    port = f":{parts['port']}" if parts.get("port") else ""
    return f"postgresql://{user}{parts.get('host', '')}{port}/{parts.get('dbname', '')}"


def password_of(password: str | None) -> str | None:
    """An explicit password, else NEWSLETTER_DATABASE_PASSWORD; None lets libpq use
    PGPASSWORD, ~/.pgpass or PGPASSFILE as usual."""
    return password if password is not None else (os.environ.get(PASSWORD_ENV) or None)


def connect_kwargs(url: str, password: str | None) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"autocommit": True, "application_name": "newsletter"}
    if "connect_timeout" not in url:
        kwargs["connect_timeout"] = 10
    # A server gone without closing the connection (its host or the network lost): TCP
    # keepalives notice in about a minute rather than the kernel's two hours.
    for name, value in (("keepalives_idle", 30), ("keepalives_interval", 10),
                        ("keepalives_count", 3)):
        if name not in url:
            kwargs[name] = value
    if password:
        kwargs["password"] = password
    return kwargs
