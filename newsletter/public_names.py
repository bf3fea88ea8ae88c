"""Link hosts readers on the Internet cannot reach: local names, and names that resolve only
to non-public addresses (check and the live preview warn about both)."""

from __future__ import annotations

import ipaddress
from concurrent.futures import ThreadPoolExecutor, wait

from newsletter.ip_ranges import classify, host_key
from newsletter.netguard import Resolver, system_resolver

# Names only a local network answers: RFC 6761 §6.3 localhost, RFC 6762 .local (mDNS),
# RFC 8375 .home.arpa, and .internal (ICANN, 2024: reserved for private use).
_LOCAL_SUFFIXES = (".localhost", ".local", ".home.arpa", ".internal")
# RFC 2606 / RFC 6761 names for examples and tests: looking them up says nothing about readers.
_EXAMPLE_SUFFIXES = (".example", ".test", ".invalid", ".example.com", ".example.net",
                     ".example.org")


def local_name_reason(host: str) -> str:
    """Why readers on the Internet cannot reach HOST, judging by the name alone ("" if they may)."""
    name = host_key(host)
    try:
        reason = classify(ipaddress.ip_address(name))
    except ValueError:
        reason = ""
    if reason:
        return reason
    if name == "localhost" or name.endswith(_LOCAL_SUFFIXES):
        return "a name only the local network knows"
    if "." not in name and not name.startswith("["):
        return "a single-label name, which the public DNS does not answer"
    return ""


def private_only_hosts(hosts: set[str], resolve: Resolver = system_resolver, *,
                       timeout: float = 3.0) -> dict[str, str]:
    """The hosts whose every DNS answer is a non-public address, with the reason. Looked up in
    parallel within TIMEOUT; a name that does not resolve in time is not reported."""
    names = sorted(h for h in hosts if not local_name_reason(h)
                   and not ("." + host_key(h)).endswith(_EXAMPLE_SUFFIXES))
    if not names:
        return {}
    pool = ThreadPoolExecutor(max_workers=min(8, len(names)))
    futures = {pool.submit(resolve, name, 443): name for name in names}
    done, _ = wait(futures, timeout=timeout)
    pool.shutdown(wait=False, cancel_futures=True)
    found = {}
    for future in done:
        if future.exception() is None and future.result():
            reasons = {classify(ipaddress.ip_address(a.split("%")[0])) for a in future.result()}
            if "" not in reasons:
                found[futures[future]] = f"it resolves only to {sorted(reasons)[0]}"
    return found
