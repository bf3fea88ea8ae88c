"""Relay refusals that stop the run: the relay's reply is about us, so no reader's row may carry
it. The rows in hand go back to `pending` and the next run sends them; nobody is deferred
toward `failed` or marked failed for a limit of ours. Two kinds, found against a real Postfix
(tests/deliver/test_postfix_relay.py):

- Too large: RFC 3463 X.3.4 "message too big for system" (Postfix's message_size_limit:
  "552 5.3.4 Message size exceeds fixed limit"), or, from a relay without enhanced codes,
  the wording of one. Every reader's copy of an edition is about as large: failing them one
  by one would fail the whole list for one setting. A RCPT refusal is about its recipient,
  and X.2.x (a mailbox's own limit, a full mailbox) is the reader's, so neither counts here.
- Held back: a 4xx to MAIL FROM, which names only our reverse-path (RFC 5321 3.3; Postfix:
  "450 4.7.1 Error: too much mail from ...", "452 4.3.1 Insufficient system storage"), or a
  4xx at any stage whose text says we send too fast (Postfix: "450 4.7.1 Error: too many
  recipients from ..."), as the bounce rules' rate wordings read it. Deferring each reader
  would start their 72-hour retry clock on our quota and send the relay more of what it
  refused.
"""

from __future__ import annotations

import re

from newsletter.audience.bounce_rules import refusal_class
from newsletter.audience.sender_rules import SENDER_RULES, normalise

# RFC 2034: an enhanced status code (RFC 3463 class.subject.detail) opens the reply's text
_STATUS = re.compile(r"\d{3}[ -]([245])\.(\d{1,3})\.(\d{1,3})\b")
_TOO_BIG = dict(SENDER_RULES)["mesgtoobig"]
_RATE_REASONS = ("toomanyconn", "speeding")


def stop_reason(code: int, text: str, stage: str, size_limit: int = 0) -> str:
    """The run's one-line stop for a refusal (text: the reply as reply_text gives it) at a
    stage (MAIL, RCPT, DATA, DATA-END), or "" when it is the reader's or an ordinary
    deferral. size_limit: the relay's EHLO SIZE (RFC 1870), 0 if it gave none."""
    if code >= 500 and stage != "RCPT" and _too_big(text):
        limit = (f"its limit is {size_limit:,} bytes (EHLO SIZE)" if size_limit
                 else "it did not say its limit")
        return (f"the relay refuses the message as too large ({text}; {limit}); nobody was "
                "marked failed: shorten the issue or raise the relay's limit, then send again")
    if 400 <= code < 500 and (stage == "MAIL" or _throttled(code, text)):
        return (f"the relay holds back our mail ({text}); nobody was deferred or marked "
                "failed: the rest stays pending for the next run (if it is a rate limit, "
                "set [delivery] rate_per_second or connections below it)")
    return ""


def connect_hint(code: int, text: str) -> str:
    """What to add to a refusal of the session itself (the greeting, EHLO): when it reads as a
    limit on our connections, the setting that keeps under it. Nothing was claimed yet, so
    every run would stop the same way until it is changed."""
    if 400 <= code < 500 and _throttled(code, text):
        return ("; nothing was claimed: the relay limits our connections, so set [delivery] "
                "connections lower (and processes, each opens its own)")
    return ""


def _too_big(text: str) -> bool:
    status = _STATUS.match(text)
    if status is not None:
        return status.group(2, 3) == ("3", "4")
    words = normalise(text)
    return "mailbox" not in words and _TOO_BIG.search(words) is not None


def _throttled(code: int, text: str) -> bool:
    """A rate of ours, not one reader's: X.2.x is the mailbox's own status (RFC 3463), e.g.
    Gmail's "4.2.1 ... receiving mail at a rate": that reader is deferred, or every run would
    stop again at the same reader, first in line."""
    status = _STATUS.match(text)
    if status is not None and status.group(2) == "2":
        return False
    return refusal_class(text, code=code)[1] in _RATE_REASONS


def size_limit(features: dict[str, str]) -> int:
    """The EHLO SIZE value smtplib recorded (RFC 1870: 0 or none means no fixed limit)."""
    value = features.get("size", "").strip()
    return int(value) if value.isdigit() else 0
