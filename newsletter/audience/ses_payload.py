"""Amazon SES notifications (SNS and event publishing, also forwarded by email) to Reports."""

from __future__ import annotations

from newsletter.audience.dsn import Recipient, Report
from newsletter.audience.webhook_payloads import (
    MalformedPayload,
    address_of,
    judge,
    list_of,
    object_of,
    report_of,
    text_of,
)


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
        return _ses_bounce(object_of(obj, "bounce"))
    if kind == "Complaint":
        return _ses_complaint(object_of(obj, "complaint"))
    if kind in ("Delivery", "DeliveryDelay"):
        return _ses_delivery(obj, kind)
    if kind == "Reject":  # SES refused to send it (a virus): our content, nobody's address
        return report_of("other", (), "SES rejected the message: "
                        + text_of(obj.get("reject") or {}, "reason"))
    return None


# https://docs.aws.amazon.com/ses/latest/dg/notification-contents.html#bounce-types
_SES_TYPES = {"Permanent": "hard", "Transient": "soft", "Undetermined": "soft"}
_SES_OURS_SUBTYPES = ("ContentRejected", "AttachmentRejected")  # our message, not the reader


def _ses_bounce(bounce: dict) -> Report:
    kind, subtype = text_of(bounce, "bounceType"), text_of(bounce, "bounceSubType")
    if kind not in _SES_TYPES:
        raise MalformedPayload(f"unknown bounceType {kind[:40]!r}")
    provider = ("ours" if subtype in _SES_OURS_SUBTYPES else _SES_TYPES[kind],
                f"ses:{kind}/{subtype or '-'}")
    recipients = []
    for row in list_of(bounce, "bouncedRecipients"):
        if not isinstance(row, dict):
            raise MalformedPayload("'bouncedRecipients' must hold objects")
        text = text_of(row, "diagnosticCode")
        text = text.partition(";")[2].strip() if ";" in text[:20] else text  # "smtp; 550 ..."
        klass, reason, status = judge(provider, text, status=text_of(row, "status"),
                                      action=text_of(row, "action"))
        recipients.append(Recipient(address_of(row.get("emailAddress")), klass, status, text,
                                    reason))
    mta = text_of(bounce, "reportingMTA")
    return report_of("bounce", recipients, f"SES {kind}/{subtype or '-'} bounce"
                     + (f" from {mta}" if mta else ""))


def _ses_complaint(complaint: dict) -> Report:
    feedback = text_of(complaint, "complaintFeedbackType")
    # RFC 5965 / IANA MARF: "not-spam" corrects an earlier verdict; it is nobody's complaint.
    klass = "none" if feedback == "not-spam" else "complaint"
    agent = text_of(complaint, "userAgent") or "a feedback loop"
    reason = "feedback" if klass == "complaint" else "not-spam"
    recipients = tuple(
        Recipient(address_of(row.get("emailAddress") if isinstance(row, dict) else None),
                  klass, "", "", reason)
        for row in list_of(complaint, "complainedRecipients"))
    return report_of("complaint" if klass == "complaint" else "other", recipients,
                     f"SES complaint ({feedback or 'no feedback report'}) from {agent}")


def _ses_delivery(obj: dict, kind: str) -> Report:
    delivery = object_of(obj, "delivery" if kind == "Delivery" else "deliveryDelay")
    key = "recipients" if kind == "Delivery" else "delayedRecipients"
    rows = list_of(delivery, key)
    addresses = [r.get("emailAddress") if isinstance(r, dict) else r for r in rows]
    reason = "delivered" if kind == "Delivery" else "delayed"
    detail = f"SES {kind}: " + (text_of(delivery, "smtpResponse") or text_of(delivery, "delayType"))
    return report_of("delivery", tuple(Recipient(address_of(a), "none", "", "", reason)
                                      for a in addresses), detail)
