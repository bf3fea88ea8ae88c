"""Amazon SES notifications that arrive by mail through SNS (pure): the JSON body read into
per-recipient fields, classed by the same rules as a DSN."""

from __future__ import annotations

import json
import re
from email.message import Message

from newsletter.audience.bounce_text import part_text


def ses_notification(message: Message) -> dict | None:
    """The SES notification object in an SNS mail ("Type": "Notification"), else None."""
    if message.is_multipart() or message.get_content_type() != "text/plain":
        return None
    text = part_text(message)
    if '"notificationType' not in text and "notificationType" not in text:
        return None
    # SNS wraps long lines as "...!\n " inside the JSON string; undo that before parsing.
    body = re.sub(r"!\r?\n ", "", text.strip())
    start, end = body.find("{"), body.rfind("}")
    try:
        outer = json.loads(body[start:end + 1])
        inner = outer.get("Message", outer)
        notice = json.loads(inner) if isinstance(inner, str) else inner
    except (ValueError, AttributeError):
        return None
    return notice if isinstance(notice, dict) and "notificationType" in notice else None


def ses_fields(notice: dict) -> tuple[str, list[tuple[str, str, str, str]]]:
    """(type, [(address, action, status, diagnostic)]) of a Bounce, Complaint or Delivery."""
    kind = str(notice.get("notificationType", "")).lower()
    section = notice.get(kind)
    if not isinstance(section, dict):
        section = {}
    if kind == "bounce":
        rows = section.get("bouncedRecipients") or []
        temporary = str(section.get("bounceType", "")).lower() == "transient"
        return kind, [(str(r.get("emailAddress", "")), str(r.get("action", "failed")),
                       str(r.get("status", "") or ("4.0.0" if temporary else "")),
                       str(r.get("diagnosticCode", "")))
                      for r in rows if isinstance(r, dict)]
    if kind == "complaint":
        rows = section.get("complainedRecipients") or []
        return kind, [(str(r.get("emailAddress", "")), "", "", "")
                      for r in rows if isinstance(r, dict)]
    if kind == "delivery":
        return kind, [(str(a), "delivered", "2.0.0", "") for a in section.get("recipients", [])]
    return kind, []
