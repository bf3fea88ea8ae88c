"""The smaller sections: [web], [bounces], [network], [webhooks], [review], [translations]."""

from __future__ import annotations

import ipaddress
import re
from email.headerregistry import Address
from typing import Any

from newsletter.config.newsletter_table import ADDR_SPEC_RE
from newsletter.config.problems import Problems
from newsletter.config.settings import WebSettings
from newsletter.netguard import parse_allow_hosts


def parse_web(p: Problems, raw: object) -> WebSettings:
    """[web] limits; trusted_proxies are IP addresses or networks (CIDR)."""
    table = raw if isinstance(raw, dict) else {}
    proxies = p.strings(table, "trusted_proxies", "web",
                        "must be a list of IP addresses or networks") or []
    for proxy in proxies:
        try:
            ipaddress.ip_network(proxy, strict=False)
        except ValueError:
            p.add("web.trusted_proxies", f"has {proxy!r}, not an IP address or network")
    defaults = WebSettings()
    return WebSettings(
        confirm_per_address_hours=p.number(table, "confirm_per_address_hours", "web",
                                           defaults.confirm_per_address_hours, minimum=0,
                                           integer=True),
        per_client_per_hour=p.number(table, "per_client_per_hour", "web",
                                     defaults.per_client_per_hour, minimum=1, integer=True),
        global_per_hour=p.number(table, "global_per_hour", "web", defaults.global_per_hour,
                                 minimum=1, integer=True),
        trusted_proxies=tuple(proxies),
    )


# RFC 5321 4.5.3.1.1: a local part has at most 64 octets; VERP adds "+" and a 32-character
# id token (newsletter.audience.tokens.make_id_token) to the bounce address's own local part.
_VERP_LOCAL_MAX = 64 - 1 - 32


def parse_return_path(p: Problems, table: dict, sender: Address) -> dict[str, Any]:
    """[bounces] address, unsubscribe_address, verp and imap_move_to."""
    found: dict[str, Any] = {}
    for key, field_name in (("address", "bounce_address"),
                            ("unsubscribe_address", "unsubscribe_address")):
        value = p.text(table, key, "bounces", required=False)
        if value and not ADDR_SPEC_RE.fullmatch(value):
            p.add(f"bounces.{key}", "must be one plain ASCII address like 'bounces@example.org'")
            value = ""
        found[field_name] = value
    verp = p.flag(table, "verp", "bounces")
    local = (found["bounce_address"] or sender.addr_spec).rsplit("@", 1)[0]
    if verp and len(local) > _VERP_LOCAL_MAX:
        p.add("bounces.address", f"local part {local!r} is too long for VERP: at most "
              f"{_VERP_LOCAL_MAX} characters, as the token takes 33 of the 64 (RFC 5321)")
    if verp and "+" in local:
        p.add("bounces.address", "must not contain '+' when verp = true (VERP adds '+TOKEN')")
    found["verp"] = verp
    found["imap_move_to"] = p.text(table, "imap_move_to", "bounces", required=False)
    return found


def parse_allow_hosts_table(p: Problems, network: object) -> frozenset[str]:
    """[network] allow_hosts: host names (or host:port) fetched although they resolve to a
    loopback or private address, e.g. an intranet feed server."""
    table = network if isinstance(network, dict) else {}
    raw = p.strings(table, "allow_hosts", "network",
                    'must be a list of host names, e.g. ["feeds.intranet"]')
    if raw is None:
        return frozenset()
    hosts, bad = parse_allow_hosts(raw)
    if bad:
        p.add("network.allow_hosts", f"has entries that are not 'host' or 'host:port': "
              f"{', '.join(repr(b) for b in bad)}")
    return hosts


def parse_review(p: Problems, review: object) -> bool:
    """[review] required = true: send and check want each ready edition's approved_by."""
    return p.flag(review, "required", "review") if isinstance(review, dict) else False


_SNS_TOPIC_RE = re.compile(r"arn:aws:sns:[a-z]{2}(?:-[a-z]+)+-\d{1,2}:\d{12}:[A-Za-z0-9_-]{1,256}")


def parse_sns_topics(p: Problems, webhooks: object) -> tuple[str, ...]:
    """[webhooks] sns_topics: the only SNS TopicArns whose messages the SES webhook accepts."""
    table = webhooks if isinstance(webhooks, dict) else {}
    raw = p.strings(table, "sns_topics", "webhooks", 'must be a list of TopicArns, e.g. '
                    '["arn:aws:sns:us-east-1:123456789012:ses-bounces"]')
    if raw is None:
        return ()
    for topic in raw:
        if not _SNS_TOPIC_RE.fullmatch(topic):
            p.add("webhooks.sns_topics", f"has {topic[:100]!r}, not an SNS TopicArn "
                  "(arn:aws:sns:REGION:ACCOUNT:NAME)")
    return tuple(raw)


_TRANSLATABLE = ("organisation", "reason")


def parse_translations(p: Problems, raw: object) -> tuple:
    """[translations.fr] organisation = "...", reason = "...": the footer in other languages."""
    if not isinstance(raw, dict):
        p.add("translations", "must hold [translations.LANG] tables")
        return ()
    result = []
    for language, table in raw.items():
        where = f"translations.{language}"
        if not isinstance(table, dict):
            p.add(where, "must be a table")
            continue
        texts = []
        for key in table:
            if key not in _TRANSLATABLE:
                p.add(f"{where}.{key}", f"is not a known key (known: {', '.join(_TRANSLATABLE)})")
            else:
                texts.append((key, p.text(table, key, where)))
        result.append((language, tuple(texts)))
    return tuple(result)
