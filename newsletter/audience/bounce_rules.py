"""One failed recipient's class (pure): DSN Action and Status, reply code and diagnostic text.

The text decides first where a code is ambiguous: many servers send 5.x.x for a full mailbox
or a blocklisted sender (RFC 3463 codes are often generic, 5.0.0 or 5.7.1 for anything). The
reason names follow sisimai's (https://libsisimai.org/en/reason/); each maps to one of the
five classes that say what happens to the reader.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from newsletter.audience.bounce_text import codes
from newsletter.audience.provider_codes import microsoft_status_reason, provider_reason
from newsletter.audience.sender_rules import SENDER_RULES, normalise, sender_status_reason

_rule = re.compile

# Temporary by nature: the address is alive; try again (RFC 3463 "persistent transient").
_RATE = _rule(r"too many (?:connections|concurrent|smtp sessions|errors|recipients|messages "
              r"from)|rate limit|throttl|try again slower|max(?:imum)? (?:emails|messages|"
              r"sending rate) per|sending rate|trop de connexions|connection limit|"
              r"receiving mail at a rate|exceeded the max emails|rate limited|too many sessions?|"
              r"connection \S+ limit|message threshold exceeded")
_FULL = _rule(r"mailbox (?:is )?(?:\S+ )?full|full mailbox|mail ?(?:box|folder|drop) "
              r"(?:size )?(?:is )?(?:full|over|exceed)|over ?quota|quota (?:exceeded|violation|"
              r"full|exceed)|exceeded (?:\S+ )?(?:storage|quota)|(?:disk|storage|mailbox) quota|"
              r"insufficient (?:disk|storage) ?space|not (?:sufficient|enough) (?:disk )?space|"
              r"no space left|too many messages (?:on|in)|space has been used up|boite du "
              r"destinataire pleine|would exceed (?:the )?(?:maximum|quota)|"
              r"too much mail data|account is (?:over|full)|receiving limits|mailbox size limit|"
              r"has exceeded (?:his|her|their|the) "
              r"(?:quota|storage)|user has exceeded")
# The address is dead: RFC 3463 X.1.1, X.1.2, X.1.6 and the wordings servers use for them.
_DEAD = (
    ("userunknown", _rule(
        r"user (?:is )?unknown|unknown (?:user|recipient|mailbox|address|local ?part|e-?mail)|"
        r"no such (?:user|mailbox|recipient|address|person|account)|(?:user|mailbox|recipient|"
        r"address|account|addressee)(?: name)?(?: \S+)? (?:does not|doesn't|did not|not|"
        r"no longer) exists?|address (?:couldn'?t|could not|cannot|can'?t) be found|"
        r"not listed in (?:the )?(?:\S+ )?(?:directory|address book|public name)|"
        r"invalid (?:final delivery )?user ?id|(?:user|mailbox|recipient|address|account)"
        r"(?: \S+)? (?:was |is )?not found|invalid (?:recipient|mailbox|address|user|"
        r"e-?mail address)|not a valid "
        r"(?:mailbox|recipient|user|address)|(?<!sender )address (?:invalid|unknown)|no mailbox|"
        r"mailbox (?:unavailable|not available|is unavailable|invalid|not present)"
        r"(?![^;]{0,80}(?:listed|block|spam|reputation|\bip\b))|"
        r"no account by that name|is not a known user|bad destination mailbox|badrcptto|"
        r"validrcptto|recipient not ok|recipientnotfound|recipient ?not ?found|not present in "
        r"directory|there is no one at this address|no one here by that name|utilisateur "
        r"inconnu|nessun utente|no existe|unbekannt|destination addresses were unknown|"
        r"not a local address|non-?existent|does not exist|"
        r"user not (?:found|known|active|exist)|address .{0,40}no longer (?:valid|"
        r"in use)|wrong or no longer valid|undeliverable address|email account that you tried "
        r"to reach does not exist|unroutable recipient|recipient (?:rejected|refused)|"
        r"recipient address rejected: access denied|recipient address rejected\.?$|"
        r"^(?:\S+ )?address rejected\.?$|bad (?:address|recipient)|can'?t accept user|"
        r"rejected recipients|not an active address|no mail ?box available|account "
        r"unavailable|invalid-recipient|userunknown|recipient (?:is )?not local|recipient "
        r"unknown|envelope recipient has been denied|recipients? (?:was|were) undeliverable|"
        r"email name is not found|badrecipientto|missing home directory|unknown virtual user|"
        r"nicht gefunden|<[^<>\s]+> not found|in name directory|user \([^)]*\) unknown|"
        r"no valid recipients|user doesn'?t have (?:a|an) "
        r".{0,30}account|"
        # Japanese: "not found in the (Domino) directory"; "the user/recipient ... is not
        # found / does not exist"
        r"ディレクトリ ?に(?:は)?見つかりません|(?:ユーザ|宛先|受信者).{0,80}(?:見つかりません|"
        r"存在しません)")),
    ("hostunknown", _rule(
        r"host (?:or domain name )?(?:is )?unknown|unknown host|host or domain name not found|"
        r"domain (?:name )?(?:does not exist|not found|unknown|is not reachable|must exist|"
        r"not exist|may not exist)|no such domain|unknown domain|name or service not known|"
        r"unroute?able address|mail domain .{0,40}unknown|nxdomain")),
    ("hasmoved", _rule(r"has been replaced by|has moved|no forwarding address|moved to")),
    ("suspend", _rule(
        r"(?<!service )suspended(?![^.;]{0,60}(?:client host|\bip\b|blocked))|deactivated|"
        r"inactive (?:account|user|mailbox)|account (?:is )?(?:inactive|"
        r"disabled|locked|closed|expired|frozen)|mailbox (?:is )?(?:disabled|inactive|frozen|"
        r"locked|closed)|disabled (?:account|mailbox|user)|(?:user|account) (?:is )?terminated|"
        r"discontinued|archived recipient|no longer accepts mail|temporarily inactive|"
        r"email account that you tried to reach is (?:disabled|inactive)|temporary locked|"
        r"suspend the service|(?:user|domain|account|mailbox) is disabled|(?:recipient|user) "
        r"(?:account )?is blocked|compte du destinataire est bloque")),
    ("notaccept", _rule(
        r"does not accept (?:any )?mail(?! from)|null ?mx|mail receiving disabled|"
        r"(?:host|domain|server) "
        r"(?:is )?not accepting (?:any )?mail|no mx record|accepts no mail|no smtp service")),
)
# Said anywhere in a reply, these decide before any address wording: servers add "mailbox
# unavailable" or "recipient rejected" to a refusal that is about our IP, our message or our
# sender address (Postfix: "Sender address rejected: Domain not found" is OUR domain).
_DECISIVE_SENDER = (
    ("blocked", _rule(r"\bdnsbl\b|\brbl\b|spamhaus|spamcop|sorbs|barracudacentral|abuseat|"
                      r"\bcbl\b|(?<!not )listed (?:in|on|at) (?:the )?\S*(?:bl|block ?list|black ?"
                      r"list)\b")),
    ("spamdetected", _rule(r"(?:identified|classified|detected|considered|marked|flagged) as "
                           r"(?:spam|junk|bulk)|spam (?:content|message|detected)|looks like "
                           r"spam")),
    ("virusdetected", _rule(r"\bvirus|malware")),
    ("rejected", _rule(r"sender address rejected|sender verif(?:y|ication) failed")),
)
_TRANSIENT = (
    ("expired", _rule(
        r"expired|timed? ?out|giving up|too long in (?:the )?queue|in the queue too long|"
        r"could not be delivered for|retry time not reached|failing for a long time|"
        r"has been delayed|did not respond|not reachable within|delivery attempts will "
        r"continue|not been collected|unable to deliver message after multiple")),
    ("networkerror", _rule(
        r"no route to host|(?:host|network) (?:is )?(?:unreachable|not reachable)|"
        r"connection (?:refused|reset|dropped|closed|lost)|name server|\bdns\b|lookup fail|"
        r"host not found|mail loop|"
        r"routing loop|forwarding loop|too many hops|hop count|loops? back|unable to connect|"
        r"could not connect|cannot connect|connect to .{0,60} failed|unrouteable mail domain")),
    ("systemfull", _rule(r"mail system full|system storage|insufficient system")),
    ("mailererror", _rule(
        r"x-unix|mailer error|command (?:died|failed)|exit (?:code|status)|unknown mailer|"
        r"procmail|permission denied|can'?t create (?:user )?output")),
    ("systemerror", _rule(
        r"system (?:error|config)|internal (?:server )?error|local (?:error|configuration|"
        r"problem)|temporary (?:local )?(?:problem|failure|error)|configuration error|"
        r"misconfigured|service (?:currently |temporarily )?(?:not )?(?:unavailable|available)|"
        r"try again later|queue file write error|interrupted system call|server error|"
        r"temporarily (?:unavailable|deferred)|please try again")),
)
_VACATION = _rule(r"out of (?:the )?office|on vacation|away from (?:my|the) (?:office|desk)|"
                  r"auto-?reply|automatic reply|abwesenheit")

# RFC 3463 enhanced codes whose meaning is specific enough when no text rule matched.
_STATUS_REASON = {
    "5.1.0": "userunknown", "5.1.1": "userunknown", "5.1.3": "userunknown",
    "5.1.2": "hostunknown", "5.4.4": "hostunknown", "5.1.6": "hasmoved", "5.1.10": "notaccept",
    "5.7.27": "notaccept", "5.3.2": "systemerror", "4.3.2": "notaccept", "5.2.1": "suspend",
    "5.7.13": "suspend", "4.2.1": "suspend", "5.7.17": "hasmoved", "5.7.18": "hasmoved",
    "4.2.2": "mailboxfull", "5.2.2": "mailboxfull", "4.2.3": "exceedlimit", "5.2.3": "exceedlimit",
    "4.3.1": "systemfull", "5.3.1": "systemfull", "4.4.5": "systemfull", "4.4.1": "expired",
    "4.4.7": "expired", "5.4.7": "expired", "4.4.2": "networkerror", "4.4.4": "networkerror",
    "4.4.6": "networkerror", "5.4.6": "networkerror", "5.4.0": "networkerror",
    "4.4.3": "systemerror", "5.4.3": "systemerror", "5.3.0": "systemerror",
    "5.5.3": "toomanyconn", "4.5.3": "toomanyconn",
}
# A reason is stated in a few lines; a longer "diagnostic" is hostile or a quoted message.
_MAX_TEXT = 4000
_CLASS = {
    "userunknown": "hard", "hostunknown": "hard", "hasmoved": "hard", "notaccept": "hard",
    "suspend": "hard", "mailboxfull": "soft", "exceedlimit": "soft", "expired": "soft",
    "networkerror": "soft", "toomanyconn": "soft", "systemerror": "soft", "systemfull": "soft",
    "mailererror": "soft", "onhold": "soft", "undefined": "soft", "speeding": "soft",
    "feedback": "complaint",
    "delivered": "none", "delayed": "none", "vacation": "none",
}
_QUOTED_REPLY = _rule(r"[45]\d\d[ -]'?(?=[45]\.\d{1,3}\.\d{1,3}\b)")
_TRANSCRIPT = _rule(r">>> (mail from|rcpt to|data|ehlo|helo)\b(?:(?!>>> ).)*?<<< [45]\d\d")
_COMMAND = _rule(r"(?:after|in reply to|for|response to|did not like our) (?:the )?(mail from|"
                 r"rcpt to|data|end of data|helo|ehlo|connect|initial connection|greeting|"
                 r"banner)")


def refusal_class(diagnostic: str, *, status: str = "", code: int = 0, action: str = ""
                  ) -> tuple[str, str]:
    """(class, reason) of one failed recipient. action and status are RFC 3464 fields."""
    action = action.lower()
    if action in ("delivered", "relayed", "expanded") or status.startswith("2."):
        return "none", "delivered"
    if action == "delayed":
        # RFC 3464 2.3.3: still being retried. The address is alive and this message could
        # not be taken yet: soft, as sisimai and the corpus class it; suppression.py records
        # it but never counts a warning toward the soft limit (one slow message sends two or
        # three of them, then its final report, which does count).
        return "soft", "delayed"
    text = normalise(diagnostic[:_MAX_TEXT])
    reason = (provider_reason(text) or microsoft_status_reason(status) or _command_reason(text)
              or _remote_reason(text) or _text_reason(text, status) or _status_reason(status))
    temporary = status.startswith("4.") or (not status and 400 <= code < 500)
    if not reason and _command(text) in ("data", "end of data"):
        reason = "contenterror"  # refused after DATA for no reason about the address: content
    if not reason:
        reason = "undefined" if temporary or status or code or text else "onhold"
    if reason == "userunknown" and action == "failed":
        temporary = False  # the MTA retried for days and was told "no such user" each time
    return _class_of(reason, temporary), reason


def _text_reason(text: str, status: str) -> str:
    if not text:
        return ""
    if status[1:] == ".2.3":  # RFC 3463 X.2.3: the mailbox's own size limit, not the system's
        return "exceedlimit"  # "5.2.3 message too large for this recipient" too: its limit
    if (reason := _sender(text, ("badreputation",))) or _RATE.search(text):
        return reason or "toomanyconn"
    if _FULL.search(text):
        return "mailboxfull"
    if reason := _sender(text, ("authfailure", "requireptr", "norelaying")) or \
            sender_status_reason(status):
        return reason
    # _DECISIVE_SENDER before the address wordings: see its comment
    return (_first(_DECISIVE_SENDER, text) or _first(_DEAD, text) or _sender(text)
            or _first(_TRANSIENT, text) or ("vacation" if _VACATION.search(text) else ""))


def _first(rules: Iterable[tuple[str, re.Pattern[str]]], text: str) -> str:
    """The name of the first rule whose pattern the text matches ("" if none does)."""
    return next((name for name, pattern in rules if pattern.search(text)), "")


def _sender(text: str, only: tuple[str, ...] = ()) -> str:
    for reason, pattern in SENDER_RULES:
        if (not only or reason in only) and pattern.search(text):
            return reason
    return ""


def _status_reason(status: str) -> str:
    if reason := _STATUS_REASON.get(status) or sender_status_reason(status):
        return reason
    if status[1:4] in (".6.", ".7."):  # RFC 3463 X.6 content, X.7 security or policy
        return "contenterror" if status[2] == "6" else "securityerror"
    return ""


def _command(text: str) -> str:
    """The SMTP command the refusal answered, as the bounce quotes it ('' if it does not)."""
    match = _COMMAND.search(text) or _TRANSCRIPT.search(text)
    return match.group(1) if match else ""


def _command_reason(text: str) -> str:
    """A refusal before RCPT (connect, HELO, MAIL FROM) is about us, never the address."""
    if _command(text) in ("", "rcpt to", "data", "end of data"):
        return ""
    if _RATE.search(text):
        return "toomanyconn"
    return _sender(text) or "blocked"


def _remote_reason(text: str) -> str:
    """The remote server's own reply ("... said: 550 5.7.1 ...", "error 550-'5.7.1 ...'")
    decides over the words of the MTA that relays it. A multi-line reply (RFC 5321 4.2.1:
    "550-5.2.1 ... 550-5.2.1 ... 550 5.2.1 <link>") is read from its first line: its last
    line often holds only a link, and the status alone would decide."""
    starts = [m.start() for m in _QUOTED_REPLY.finditer(text)]
    while len(starts) > 1 and text[starts[-2]:starts[-2] + 4] == f"{text[starts[-1]:][:3]}-":
        starts.pop()  # the line before is the same reply, continued ("550-")
    if not starts or starts[-1] == 0:
        return ""
    inner = text[starts[-1]:]
    status = codes(inner)[0]
    return _text_reason(inner, status) or _status_reason(status)


def _class_of(reason: str, temporary: bool) -> str:
    klass = _CLASS.get(reason, "ours")
    # A 4xx "user unknown" is a directory lookup that failed for now (RFC 5321 4.2.1).
    return "soft" if klass == "hard" and temporary else klass
