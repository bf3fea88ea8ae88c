"""Provider webhook payloads (SES, Postmark, Mailgun) to Reports, per recipient (pure)."""

from __future__ import annotations

import re
from collections.abc import Iterable

from newsletter.audience.bounce_rules import refusal_class
from newsletter.audience.bounce_text import codes
from newsletter.audience.dsn import Recipient, Report
from newsletter.errors import InputError


class MalformedPayload(InputError):
    """A payload of a known type that lacks or garbles the fields its documentation promises."""


_VAGUE = ("undefined", "onhold")  # bounce_rules' reasons when the words say nothing definite


def address_of(value: object) -> str:
    """A recipient address from a payload: one addr-spec, lower case; malformed otherwise."""
    if not isinstance(value, str):
        raise MalformedPayload("a recipient address is missing")
    address = value.strip().strip("<>").strip().lower()
    local, at, domain = address.rpartition("@")
    if not at or not local or "." not in domain or len(address) > 320 \
            or re.search(r"[\s\x00-\x1f\x7f<>,;\"\\]", address):
        raise MalformedPayload(f"not an email address: {value[:80]!r}")
    return address


def judge(provider: tuple[str, str], text: str, *, status: str = "", code: int = 0,
          action: str = "") -> tuple[str, str, str]:
    """(class, reason, status) of one failed recipient.

    provider is the provider's own (class, reason). Where it quotes the receiving server, the
    return path's rules (bounce_rules) decide as for a DSN: a refusal that blames us is `ours`
    even in a "Permanent" bounce, a vacation or delay is `none`, a definite reason wins;
    words that say nothing leave the provider's verdict, except that an RFC 3463 4.X.X status
    is never hard.
    """
    klass, reason = provider
    quoted_status, quoted_code = codes(text)
    status, code = status or quoted_status, code or quoted_code
    if klass not in ("hard", "soft") or not (text or status):
        return klass, reason, status
    found, why = refusal_class(text, status=status, code=code, action=action)
    if found in ("ours", "none") or (why not in _VAGUE and found in ("hard", "soft")):
        return found, why, status
    if klass == "hard" and status[:1] == "4":
        return "soft", reason, status
    return klass, reason, status


def _text(obj: dict, key: str) -> str:
    value = obj.get(key, "")
    return " ".join(str(value).split())[:500] if isinstance(value, str | int | float) else ""


def _object(obj: object, key: str) -> dict:
    value = obj.get(key) if isinstance(obj, dict) else None
    if not isinstance(value, dict):
        raise MalformedPayload(f"'{key}' must be an object")
    return value


def _list(obj: dict, key: str) -> list:
    value = obj.get(key)
    if not isinstance(value, list) or not value:
        raise MalformedPayload(f"'{key}' must be a non-empty list")
    return value


# --- Amazon SES (SNS notifications and event publishing, also when forwarded by email) -------

def report_from_ses_json(obj: object) -> Report | None:
    """The Report in an SES notification, or None when obj is not one (or is garbled).

    For the mailbox path: SES "email feedback forwarding" and SNS email subscriptions deliver
    the same JSON; a None means "not an SES notification, classify the message as mail".
    """
    try:
        return ses_report(obj)
    except MalformedPayload:
        return None


def ses_report(obj: object) -> Report | None:
    """None for types we do not act on (Send, Open, Click...); MalformedPayload if garbled."""
    if not isinstance(obj, dict):
        raise MalformedPayload("an SES notification must be a JSON object")
    kind = obj.get("notificationType", obj.get("eventType"))  # eventType: event publishing
    if kind == "Bounce":
        return _ses_bounce(_object(obj, "bounce"))
    if kind == "Complaint":
        return _ses_complaint(_object(obj, "complaint"))
    if kind in ("Delivery", "DeliveryDelay"):
        return _ses_delivery(obj, kind)
    if kind == "Reject":  # SES refused to send it (a virus): our content, nobody's address
        return _report("other", (), "SES rejected the message: "
                      + _text(obj.get("reject") or {}, "reason"))
    return None


# https://docs.aws.amazon.com/ses/latest/dg/notification-contents.html#bounce-types
_SES_TYPES = {"Permanent": "hard", "Transient": "soft", "Undetermined": "soft"}
_SES_OURS_SUBTYPES = ("ContentRejected", "AttachmentRejected")  # our message, not the reader


def _ses_bounce(bounce: dict) -> Report:
    kind, subtype = _text(bounce, "bounceType"), _text(bounce, "bounceSubType")
    if kind not in _SES_TYPES:
        raise MalformedPayload(f"unknown bounceType {kind[:40]!r}")
    provider = ("ours" if subtype in _SES_OURS_SUBTYPES else _SES_TYPES[kind],
                f"ses:{kind}/{subtype or '-'}")
    recipients = []
    for row in _list(bounce, "bouncedRecipients"):
        if not isinstance(row, dict):
            raise MalformedPayload("'bouncedRecipients' must hold objects")
        text = _text(row, "diagnosticCode")
        text = text.partition(";")[2].strip() if ";" in text[:20] else text  # "smtp; 550 ..."
        klass, reason, status = judge(provider, text, status=_text(row, "status"),
                                      action=_text(row, "action"))
        recipients.append(Recipient(address_of(row.get("emailAddress")), klass, status, text,
                                    reason))
    mta = _text(bounce, "reportingMTA")
    return _report("bounce", recipients, f"SES {kind}/{subtype or '-'} bounce"
                   + (f" from {mta}" if mta else ""))


def _ses_complaint(complaint: dict) -> Report:
    feedback = _text(complaint, "complaintFeedbackType")
    # RFC 5965 / IANA MARF: "not-spam" corrects an earlier verdict; it is nobody's complaint.
    klass = "none" if feedback == "not-spam" else "complaint"
    agent = _text(complaint, "userAgent") or "a feedback loop"
    reason = "feedback" if klass == "complaint" else "not-spam"
    recipients = tuple(
        Recipient(address_of(row.get("emailAddress") if isinstance(row, dict) else None),
                  klass, "", "", reason)
        for row in _list(complaint, "complainedRecipients"))
    return _report("complaint" if klass == "complaint" else "other", recipients,
                   f"SES complaint ({feedback or 'no feedback report'}) from {agent}")


def _ses_delivery(obj: dict, kind: str) -> Report:
    delivery = _object(obj, "delivery" if kind == "Delivery" else "deliveryDelay")
    key = "recipients" if kind == "Delivery" else "delayedRecipients"
    rows = _list(delivery, key)
    addresses = [r.get("emailAddress") if isinstance(r, dict) else r for r in rows]
    reason = "delivered" if kind == "Delivery" else "delayed"
    detail = f"SES {kind}: " + (_text(delivery, "smtpResponse") or _text(delivery, "delayType"))
    return _report("delivery", tuple(Recipient(address_of(a), "none", "", "", reason)
                                    for a in addresses), detail)


# --- Postmark ----------------------------------------------------------------------------------

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
        return _report("delivery", (Recipient(address_of(obj.get("Recipient")), "none", "", "",
                                             "delivered"),),
                       "Postmark delivery: " + _text(obj, "Details"))
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
    details, description = _text(obj, "Details"), _text(obj, "Description")
    klass, reason, status = judge((klass, f"postmark:{name}"), details)
    kind = _KINDS.get(klass, "bounce")
    klass = "none" if klass in ("unsubscribe", "auto-reply") else klass
    recipient = Recipient(address_of(obj.get("Email")), klass, status, details or description,
                          reason)
    return _report(kind, (recipient,), f"Postmark {name}: {details or description}")


_SUPPRESSION = {"ManualSuppression": ("unsubscribe", "none"), "HardBounce": ("bounce", "hard"),
                "SpamComplaint": ("complaint", "complaint")}


def _postmark_subscription(obj: dict) -> Report | None:
    if obj.get("SuppressSending") is not True:
        return None  # a reactivation: only the reader's own opt-in may bring an address back
    why = _text(obj, "SuppressionReason")
    kind, klass = _SUPPRESSION.get(why, ("other", "none"))
    recipient = Recipient(address_of(obj.get("Recipient")), klass, "", "", f"postmark:{why}")
    return _report(kind, (recipient,),
                   f"Postmark suppression ({why or 'no reason'}, {_text(obj, 'Origin') or '-'})")


# --- Mailgun -----------------------------------------------------------------------------------

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
    detail = f"Mailgun {name}" + (f": {_text(event, 'reason')}" if event.get("reason") else "")
    return _report(kind, (Recipient(address, klass, "", "", reason),), detail)


# Mailgun drops mail to addresses on its own suppression lists; the list says what they are.
_SUPPRESSED = {"suppress-bounce": ("bounce", "hard"), "suppress-complaint":
               ("complaint", "complaint"), "suppress-unsubscribe": ("unsubscribe", "none")}


def _mailgun_failure(event: dict, address: str) -> Report:
    severity, why = _text(event, "severity"), _text(event, "reason")
    if severity not in ("permanent", "temporary"):
        raise MalformedPayload(f"unknown severity {severity[:40]!r}")
    status_obj = event.get("delivery-status")
    status_obj = status_obj if isinstance(status_obj, dict) else {}
    text = " ".join(t for t in (_text(status_obj, "message"),
                                _text(status_obj, "description")) if t)
    code = status_obj.get("code")
    kind, provider = "bounce", ("hard" if severity == "permanent" else "soft", f"mailgun:{why}")
    if why in _SUPPRESSED:
        kind, klass = _SUPPRESSED[why]
        provider = (klass, provider[1])
    elif why == "espblock":
        provider = ("ours", provider[1])  # the receiving provider blocked our sending
    elif why == "old":
        provider = ("soft", provider[1])  # retries ran out; the address was never refused
    klass, reason, status = judge(provider, text, status=_text(status_obj, "enhanced-code"),
                                  code=code if isinstance(code, int) else 0)
    return _report(kind, (Recipient(address, klass, status, text, reason),),
                   f"Mailgun {severity} failure ({why or 'no reason'}): {text}")


def _report(kind: str, recipients: Iterable[Recipient], detail: str) -> Report:
    return Report(kind=kind, recipients=tuple(recipients), detail=" ".join(detail.split())[:300])
