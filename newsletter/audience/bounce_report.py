"""What a report says (data only): each recipient's class, and the report's kind."""

from __future__ import annotations

import re
from dataclasses import dataclass

FAILED = ("hard", "soft", "ours")
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f]")


@dataclass(frozen=True)
class Recipient:
    """One reader named by a report. klass: hard, soft, ours, complaint or none."""

    address: str  # lower case
    klass: str
    status: str = ""  # RFC 3463 enhanced code, "5.1.1"
    diagnostic: str = ""  # the remote server's words, one line
    reason: str = ""  # userunknown, mailboxfull, blocked, authfailure, ... (see bounce_rules)


@dataclass(frozen=True)
class Report:
    """What one message means.

    kind: bounce, complaint, unsubscribe, auto-reply, delivery, other or unparseable.
    """

    kind: str
    recipients: tuple[Recipient, ...] = ()
    detail: str = ""


def make_report(recipients: list[Recipient]) -> Report:
    failed = [r for r in recipients if r.klass in FAILED]
    kind = "bounce" if failed else "delivery"
    shown = failed or recipients
    detail = "; ".join(dict.fromkeys(f"{r.klass} {r.reason}" for r in shown))
    return Report(kind, tuple(recipients), detail)


def one_line(text: str) -> str:
    """A remote server's words made safe to print and store: one line, no control characters
    (an ESC in a hostile diagnostic would reach the operator's terminal), 300 at most."""
    return " ".join(_CONTROLS.sub(" ", text).split())[:300]


