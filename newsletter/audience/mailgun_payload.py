"""Mailgun webhook events (failed, rejected, complained, unsubscribed, delivered) to Reports."""

from __future__ import annotations

from newsletter.audience.dsn import Recipient, Report
from newsletter.audience.webhook_payloads import (
    MalformedPayload,
    address_of,
    judge,
    report_of,
    text_of,
)


def mailgun_report(event: object) -> Report | None:
    """A Mailgun "event-data" object: failed, rejected, complained, unsubscribed, delivered."""
    if not isinstance(event, dict):
        raise MalformedPayload("'event-data' must be an object")
    name = str(event.get("event", "")).lower()
    if name not in ("failed", "rejected", "complained", "unsubscribed", "delivered"):
        return None
    address = address_of(event.get("recipient"))
    if name == "failed":
        return _mailgun_failure(event, address)
    kind, klass, reason = {"rejected": ("other", "ours", "mailgun:rejected"),
                           "complained": ("complaint", "complaint", "feedback"),
                           "unsubscribed": ("unsubscribe", "none", "unsubscribe"),
                           "delivered": ("delivery", "none", "delivered")}[name]
    detail = f"Mailgun {name}" + (f": {text_of(event, 'reason')}" if event.get("reason") else "")
    return report_of(kind, (Recipient(address, klass, "", "", reason),), detail)


# Mailgun drops mail to addresses on its own suppression lists; the list says what they are.
_SUPPRESSED = {"suppress-bounce": ("bounce", "hard"), "suppress-complaint":
               ("complaint", "complaint"), "suppress-unsubscribe": ("unsubscribe", "none")}


def _mailgun_failure(event: dict, address: str) -> Report:
    severity, why = text_of(event, "severity"), text_of(event, "reason")
    if severity not in ("permanent", "temporary"):
        raise MalformedPayload(f"unknown severity {severity[:40]!r}")
    status_obj = event.get("delivery-status")
    status_obj = status_obj if isinstance(status_obj, dict) else {}
    text = " ".join(t for t in (text_of(status_obj, "message"),
                                text_of(status_obj, "description")) if t)
    code = status_obj.get("code")
    kind, provider = "bounce", ("hard" if severity == "permanent" else "soft", f"mailgun:{why}")
    if why in _SUPPRESSED:
        kind, klass = _SUPPRESSED[why]
        provider = (klass, provider[1])
    elif why == "espblock":
        provider = ("ours", provider[1])  # the receiving provider blocked our sending
    elif why == "old":
        provider = ("soft", provider[1])  # retries ran out; the address was never refused
    klass, reason, status = judge(provider, text, status=text_of(status_obj, "enhanced-code"),
                                  code=code if isinstance(code, int) else 0)
    return report_of(kind, (Recipient(address, klass, status, text, reason),),
                     f"Mailgun {severity} failure ({why or 'no reason'}): {text}")
