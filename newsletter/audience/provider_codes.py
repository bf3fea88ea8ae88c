"""Providers' own error codes (pure): the labels some large receivers put in their replies, which
say more than the RFC 3463 code beside them ("550 5.5.0 ... LPN007_426", "IB506", "AUP#CXBL").

From the providers' published postmaster pages (Orange and La Poste, GoDaddy, Cox,
Microsoft); sisimai's Rhost modules collect the same tables.
"""

from __future__ import annotations

import re

# Orange / Wanadoo / La Poste: "OFR_416", "OFR004_405", "LPN007_426", "LPNAAA_101"
_ORANGE_RE = re.compile(r"\b(?:ofr|lpn|ouk)[a-z]*\d*[_-](\d{3})\b")
_ORANGE = {
    "101": "blocked", "102": "blocked", "103": "blocked", "104": "toomanyconn",
    "305": "securityerror", "401": "authfailure", "402": "securityerror", "403": "rejected",
    "405": "rejected", "415": "rejected", "416": "userunknown", "417": "mailboxfull",
    "420": "suspend", "421": "rejected", "426": "suspend", "505": "systemerror",
    "506": "spamdetected", "510": "blocked", "514": "mesgtoobig", "517": "authfailure",
    "630": "policyviolation", "999": "blocked",
}
# GoDaddy (secureserver.net): "IB506"
_GODADDY_RE = re.compile(r"\bib(\d{3})\b")
_GODADDY = {
    "401": "securityerror", "501": "notcompliantrfc", "502": "notcompliantrfc",
    "506": "rejected", "508": "authfailure", "108": "requireptr", "212": "spamdetected",
    "705": "virusdetected", "605": "toomanyconn", "007": "toomanyconn", "101": "speeding",
    "110": "blocked", "111": "blocked", "112": "blocked", "113": "blocked", "504": "speeding",
    "510": "speeding", "607": "speeding", "103": "badreputation", "104": "blocked",
    "105": "blocked", "106": "blocked",
}
# Cox: "AUP#CXBL", "AUP#IPBL0001", "AUP#URLBL011"
_COX_RE = re.compile(r"aup#([a-z]+)")
_COX = {
    "cxbl": "blocked", "cdrbl": "blocked", "ipbl": "blocked", "cxdns": "requireptr",
    "cxsndr": "authfailure", "cxsmtp": "rejected", "cxcnct": "toomanyconn",
    "cxmxrt": "toomanyconn", "cxthrt": "securityerror", "cxmj": "securityerror",
    "urlbl": "spamdetected",
}


def provider_reason(text: str) -> str:
    """The reason a provider's own code gives ('' if none is quoted); text is normalised."""
    for pattern, table in ((_ORANGE_RE, _ORANGE), (_GODADDY_RE, _GODADDY), (_COX_RE, _COX)):
        for match in pattern.finditer(text):
            if reason := table.get(match.group(1)):
                return reason
    return ""


def microsoft_status_reason(status: str) -> str:
    """Exchange Online's extended 5.7.5xx-6xx and 4.7.5xx-8xx codes: all about the sender."""
    klass, _, rest = status.partition(".")
    subject, _, detail = rest.partition(".")
    if subject != "7" or not detail.isdigit():
        return ""
    number = int(detail)
    if number in (509, 515):
        return "authfailure"  # DMARC, the required authentication level
    if number == 650:
        return "badreputation"
    if 500 <= number <= 699 or (klass == "4" and 850 <= number <= 899):
        return "blocked"  # banned sending IP, customer block list, bad HELO, ...
    return ""
