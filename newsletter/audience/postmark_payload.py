"""Postmark webhook records (bounces, complaints, deliveries, suppressions) to Reports."""

from __future__ import annotations

from newsletter.audience.dsn import Recipient, Report
from newsletter.audience.webhook_payloads import (
    MalformedPayload,
    address_of,
    judge,
    report_of,
    text_of,
)

# https://postmarkapp.com/developer/api/bounce-api#bounce-types: Type -> (TypeCode, class)
_POSTMARK_TYPES = {
    "HardBounce": (1, "hard"), "Transient": (2, "soft"), "Unsubscribe": (16, "unsubscribe"),
    "Subscribe": (32, "none"), "AutoResponder": (64, "auto-reply"), "AddressChange": (128, "none"),
    "DnsError": (256, "soft"), "SpamNotification": (512, "complaint"),
    "OpenRelayTest": (1024, "none"), "Unknown": (2048, "soft"), "SoftBounce": (4096, "soft"),
    "VirusNotification": (8192, "ours"), "ChallengeVerification": (16384, "none"),
    "BadEmailAddress": (100000, "hard"), "SpamComplaint": (100001, "complaint"),
    "ManuallyDeactivated": (100002, "none"), "Unconfirmed": (100003, "none"),
    "Blocked": (100006, "ours"), "SMTPApiError": (100007, "ours"),
    "InboundError": (100008, "none"), "DMARCPolicy": (100009, "ours"),
    "TemplateRenderingFailed": (100010, "ours"),
}
_POSTMARK_CODES = {code: (name, klass) for name, (code, klass) in _POSTMARK_TYPES.items()}
_KINDS = {"unsubscribe": "unsubscribe", "auto-reply": "auto-reply", "complaint": "complaint"}


def postmark_report(obj: object) -> Report | None:
    """Bounce, SpamComplaint, Delivery and SubscriptionChange records; None for the rest."""
    if not isinstance(obj, dict):
        raise MalformedPayload("a Postmark webhook must be a JSON object")
    record = obj.get("RecordType")
    if record in ("Bounce", "SpamComplaint"):
        return _postmark_bounce(obj, record)
    if record == "Delivery":
        return report_of("delivery", (Recipient(address_of(obj.get("Recipient")), "none", "", "",
                                               "delivered"),),
                         "Postmark delivery: " + text_of(obj, "Details"))
    if record == "SubscriptionChange":
        return _postmark_subscription(obj)
    return None


def _postmark_bounce(obj: dict, record: str) -> Report:
    name, code = obj.get("Type"), obj.get("TypeCode")
    if name in _POSTMARK_TYPES:
        klass = _POSTMARK_TYPES[name][1]
    elif isinstance(code, int) and code in _POSTMARK_CODES:
        name, klass = _POSTMARK_CODES[code]
    else:
        raise MalformedPayload(f"unknown Postmark bounce Type {str(name)[:40]!r}")
    if record == "SpamComplaint":
        klass = "complaint"
    details, description = text_of(obj, "Details"), text_of(obj, "Description")
    klass, reason, status = judge((klass, f"postmark:{name}"), details)
    kind = _KINDS.get(klass, "bounce")
    klass = "none" if klass in ("unsubscribe", "auto-reply") else klass
    recipient = Recipient(address_of(obj.get("Email")), klass, status, details or description,
                          reason)
    return report_of(kind, (recipient,), f"Postmark {name}: {details or description}")


_SUPPRESSION = {"ManualSuppression": ("unsubscribe", "none"), "HardBounce": ("bounce", "hard"),
                "SpamComplaint": ("complaint", "complaint")}


def _postmark_subscription(obj: dict) -> Report | None:
    if obj.get("SuppressSending") is not True:
        return None  # a reactivation: only the reader's own opt-in may bring an address back
    why = text_of(obj, "SuppressionReason")
    kind, klass = _SUPPRESSION.get(why, ("other", "none"))
    recipient = Recipient(address_of(obj.get("Recipient")), klass, "", "", f"postmark:{why}")
    origin = text_of(obj, "Origin") or "-"
    return report_of(kind, (recipient,), f"Postmark suppression ({why or 'no reason'}, {origin})")
