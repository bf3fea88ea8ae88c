"""Sender-side refusals (pure): the reply texts that blame us, not the reader's address.

Shared by the bounce classifier (class `ours`) and by send's policy stop, so a refusal that
stops a run is the same refusal a later DSN reports as `ours`. The phrases are the ones real
MTAs and providers use; the grouping by reason follows sisimai's reason names (BSD 2-Clause,
https://libsisimai.org/en/reason/), re-expressed here as our own patterns.
"""

from __future__ import annotations

import re


def _rule(*phrases: str) -> re.Pattern[str]:
    """One pattern from phrases (regular expressions over lower-case, single-spaced text)."""
    return re.compile("|".join(f"(?:{p})" for p in phrases))


# Each: (reason, pattern). Order matters only between these reasons: the first match wins.
SENDER_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    # RFC 7208 SPF, RFC 6376 DKIM, RFC 7489 DMARC
    ("authfailure", _rule(
        r"\bspf\b.{0,40}\b(?:fail|softfail|hardfail|check|validation|record|violation|"
        r"error|authentication|not pass)",
        r"sender policy framework", r"\bdmarc\b", r"\bdkim\b.{0,40}\b(?:fail|invalid|signature|"
        r"required|missing|not pass)", r"no (?:passing|valid|acceptable) dkim",
        r"(?:doesn't|does not) meet the (?:required )?authentication",
        r"authentication requirements defined for the sender", r"not allowed to send (?:mail )?"
        r"from .{0,80}per (?:it'?s|its) spf",
        r"unauthenticated email (?:from|is not accepted)", r"authentication checks? failed",
        r"\bspf\b(?![^.;]{0,20}\bpass)",
        r"5\.7\.2[0-69]\b")),
    ("requireptr", _rule(
        r"reverse dns", r"\bptr[- ]record", r"\bptr resource record", r"\brdns\b",
        r"cannot find your hostname", r"cannot resolve your address", r"ip name lookup failed",
        r"(?:no|missing|generic) (?:dns )?ptr", r"unresolvable relay host name",
        r"reverse (?:lookup|resolution)", r"forward dns entry does not point",
        r"mismatches client ip", r"unverifiable sending ip", r"5\.7\.25\b")),
    ("badreputation", _rule(
        r"reputation", r"user complaints", r"unexpected volume")),
    ("virusdetected", _rule(
        r"\bvirus", r"malware", r"potentially executable attachment",
        r"infected", r"malicious")),
    ("spamdetected", _rule(
        r"\bspam(?!haus|cop|rats)", r"unsolicited", r"\bjunk\b",
        r"bulk (?:e-?mail|mail|advertising)",
        r"content filter", r"message filtered", r"spamassassin", r"spam ?score",
        r"mail content denied", r"message content rejected", r"unacceptable content",
        r"rejecting (?:banned|mail) content", r"blacklisted url", r"uribl",
        r"recurrent pattern detection", r"classified as bulk", r"antispam",
        r"\bphish", r"suspicious (?:content|message|link)", r"5\.7\.28\b")),
    ("blocked", _rule(
        r"black ?list", r"block ?list", r"blocked (?:using|by|for|because|from|due)",
        r"\bdnsbl\b", r"\brbl\b", r"spamhaus", r"spamcop", r"barracuda", r"sorbs",
        r"abuseat", r"\bcbl\b", r"surbl", r"listed (?:at|on|in|as)", r"(?:your|sender|sending|"
        r"client|source|the) (?:ip|host|server|network)\b.{0,60}(?:blocked|rejected|refused|"
        r"listed|banned|not allowed|denied|poor)", r"(?:ip|host) (?:address )?(?:is )?"
        r"(?:blocked|banned|blacklisted)", r"\bip\b.{0,40}\b(?:blocked|block list)",
        r"banned sending ip", r"not currently accepting mail from your ip",
        r"dynamic ?ip", r"dial-?up", r"residential", r"zombie", r"open proxy",
        r"use the smtp server of your isp", r"looks suspiciously like spammer",
        r"client host .{0,80}(?:rejected|blocked|refused)", r"helo command rejected",
        r"refused to talk to me", r"not allowed to connect", r"access denied.{0,20}"
        r"(?:ip|host|client)", r"your (?:ip|server|host) (?:address )?(?:has been|was|is) "
        r"(?:temporarily )?(?:blocked|rejected|throttled|deferred)",
        r"connections? (?:not accepted|refused|will not be accepted) from",
        r"service refused", r"you are not allowed to", r"not authorized to send",
        r"not accepting (?:connections|messages from|mail from)", r"network not allowed",
        r"\b(?:ip|server|host|sender)\b.{0,40}\bis blocked\b", r"(?:blocked|refused) - see",
        r"\b5\d\d blocked\b",
        r"bad (?:sender )?ip", r"ip profile", r"\bgo away\b", r"invalid ip for sending",
        r"not allowed to send mail from", r"no access from mail server", r"not passed "
        r"validation", r"server access forbidden", r"to submit messages to this e-mail system",
        r"unwanted messages", r"requires confirmation", r"confirm this mail server",
        r"\bip\b.{0,30}has been rejected")),
    ("norelaying", _rule(
        r"relay(?:ing)? (?:access )?(?:denied|not permitted|prohibited|not allowed)",
        r"no relaying", r"unable to relay", r"insecure mail relay", r"relaying mail to",
        r"not (?:a|an open) "
        r"(?:gateway|relay)", r"as a relay", r"relay through this", r"configured to relay",
        r"(?:not|isn'?t) (?:in my list of )?allowed rcpthosts", r"we don'?t handle mail for",
        r"not local host", r"requires authentication when attempting to send to a non-local")),
    ("rejected", _rule(
        r"sender (?:address |email address |domain )?(?:rejected|denied|refused|blocked|"
        r"not (?:allowed|pre-approved|accepted)|is (?:in my black list|spammer|invalid))",
        r"(?:domain of )?sender address (?:rejected|is not|does not)", r"invalid sender",
        r"sender verif(?:y|ication) failed", r"sender was rejected", r"unroutable sender",
        r"bogus mail from", r"null sender", r"empty envelope sender", r"batv",
        r"returned mail not accepted", r"mail from not owned", r"sender domain",
        r"from: domain is invalid", r"envelope blocked", r"not (?:a member|subscribed|"
        r"allowed to post)", r"members-only", r"list of senders to accept mail from",
        r"address (?:is )?not verified", r"email address is not verified",
        r"sending this from a different address", r"backscatter", r"senderfilter",
        r"provide a valid from", r"not a registered gateway user", r"permission to post",
        r"administrative prohibition", r"purported responsible address", r"emetteur invalide",
        r"third-party dsns", r"fully qualified email address required",
        r"does not accept mail from",
        # Google Groups answers every refused post, in the poster's language, from this host:
        # a per-system rule as sisimai has one (its wording is translated, its link is not)
        r"access denied \(sender", r"groups\.google\.com")),
    ("policyviolation", _rule(
        r"polic(?:y|ies)", r"prohibited", r"not permitted", r"organi[sz]ation(?:al)? "
        r"(?:settings|policy)", r"illegal attachment", r"attachments? (?:are|is) not",
        r"mass mailer", r"closed mailing list", r"captcha", r"protocol violation",
        r"header error", r"header are not accepted", r"containing (?:images|attachments)")),
    ("contenterror", _rule(
        r"duplicate header", r"header size exceeds", r"8-bit data in message header",
        r"mime (?:complexity|headers?)", r"improperly-formatted", r"base64 encoding",
        r"too many received", r"message (?:header|content) (?:is )?(?:invalid|malformed)",
        r"invalid (?:mime|header)", r"rfc ?5322", r"rfc ?2822", r"rfcmessagenoncompliant",
        r"\bmultiple \S+(?: \S+)? headers?\b", r"not (?:rfc|rfc-)?compliant",
        r"syntax error in (?:header|message)", r"message-id (?:header )?(?:is )?(?:missing|"
        r"invalid|required)", r"bare (?:lf|linefeed|cr)")),
    ("securityerror", _rule(
        r"authentication (?:required|failure|failed|credentials)", r"must authenticate",
        r"unauthenticated", r"starttls", r"tls (?:is )?required", r"encryption required",
        r"certificate", r"not authorized")),
    ("mesgtoobig", _rule(
        r"message (?:is )?too (?:big|large)", r"message size exceeds", r"size limit",
        r"exceeds (?:the )?(?:fixed |maximum )+(?:message )?size", r"too large for",
        r"message length exceeds", r"message (?:file )?too big", r"size exceeds (?:fixed|"
        r"maximum)", r"maximum (?:inbound|incoming) message size", r"line limit exceeded",
        r"taille limite", r"5\.3\.4\b")),
    ("syntaxerror", _rule(
        r"improper (?:sequence|command)", r"bad sequence", r"command (?:unrecognized|not "
        r"recognized|not implemented)", r"unrecognized command", r"syntax error",
        # Exim's wording when a To/Cc header of OUR message holds a broken address list
        # ("Mail failure - malformed recipient address"): the reader's address is not at fault
        r"malformed address: \S+ may not follow")),
)

# RFC 3463: these enhanced codes name the sender's side whatever the text says.
_SENDER_STATUS = {
    "5.1.7": "rejected", "5.1.8": "rejected", "4.1.7": "rejected", "4.1.8": "rejected",
    "5.3.4": "mesgtoobig", "5.7.23": "authfailure", "5.7.24": "authfailure",
    "5.7.26": "authfailure", "5.7.20": "authfailure", "5.7.21": "authfailure",
    "5.7.22": "authfailure", "4.7.24": "authfailure", "4.7.26": "authfailure",
    "5.7.25": "requireptr", "4.7.25": "requireptr", "5.7.28": "spamdetected",
}


def normalise(text: str) -> str:
    """Lower case, one space between words: the form every rule is written against."""
    return " ".join(text.lower().split())


def sender_reason(text: str) -> str:
    """The reason a reply text blames the sender ('' when it does not); text is normalised."""
    for reason, pattern in SENDER_RULES:
        if pattern.search(text):
            return reason
    return ""


def sender_status_reason(status: str) -> str:
    return _SENDER_STATUS.get(status, "")


def is_sender_refusal(code: int, text: str) -> bool:
    """send's policy stop: a 5xx whose text or enhanced code blames us (our IP, our domain,
    our authentication, our content), not the recipient's address."""
    from newsletter.audience.bounce_rules import (
        refusal_class,  # the full rule order, as bounces use
    )

    if code < 500:
        return False
    klass, reason = refusal_class(text, code=code)
    # Too large is ours too, but it is this message's size, not a block: retrying or stopping
    # the run changes nothing, so the row fails with the reply (the operator sees it).
    return klass == "ours" and reason != "mesgtoobig"
