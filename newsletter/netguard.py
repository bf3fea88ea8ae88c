"""Decide whether a URL, host or IP address may be fetched, and connect only to what was checked."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

import httpcore
import httpx
import idna

from newsletter.errors import NewsletterError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]

# Names that reach a cloud provider's instance metadata service (credentials live there).
METADATA_HOSTS = frozenset({"metadata", "metadata.google.internal", "metadata.goog",
                            "instance-data", "instance-data.ec2.internal"})
_METADATA_IPS = frozenset(ipaddress.ip_address(a) for a in (
    "169.254.169.254", "169.254.170.2", "100.100.100.200", "fd00:ec2::254"))
_SHARED = ipaddress.ip_network("100.64.0.0/10")  # RFC 6598 carrier-grade NAT
_THIS_NET = ipaddress.ip_network("0.0.0.0/8")  # RFC 791 "this network"
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052: the low 32 bits are an IPv4 address
_V4_COMPAT = ipaddress.ip_network("::/96")  # RFC 4291 §2.5.5.1, deprecated but still routed


# Ranges no public host has, named outright: Python's ipaddress flags miss some of them on
# some versions (fec0::/10 is neither private nor reserved nor non-global on 3.11).
_NOT_PUBLIC = tuple(ipaddress.ip_network(n) for n in (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
    "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16", "198.18.0.0/15",
    "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
    "::/128", "::1/128", "100::/64", "2001:db8::/32", "3fff::/20", "fc00::/7", "fe80::/10",
    "fec0::/10", "ff00::/8"))


class Refused(NewsletterError):
    """A URL the program will not fetch: its scheme, its form or the address it leads to."""


def classify(ip: IPAddress) -> str:
    """Why an address may not be contacted ("" when it is a public unicast address)."""
    embedded = _embedded_ipv4(ip)
    if embedded is not None:
        return classify(embedded)
    if ip in _METADATA_IPS:
        return "a cloud metadata address"
    checks = (("a loopback", ip.is_loopback), ("an unspecified", ip.is_unspecified),
              ("a link-local", ip.is_link_local), ("a multicast", ip.is_multicast),
              ("a shared (CGNAT)", ip.version == 4 and ip in _SHARED),
              ("a 'this network'", ip.version == 4 and ip in _THIS_NET),
              ("a private", ip.is_private), ("a reserved", ip.is_reserved),
              ("a non-public", not ip.is_global
               or any(ip.version == n.version and ip in n for n in _NOT_PUBLIC)))
    return next((f"{name} address" for name, hit in checks if hit), "")


def _embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 transition form carries: whoever routes it reaches that one."""
    if ip.version == 4:
        return None
    if ip.ipv4_mapped or ip.sixtofour:
        return ip.ipv4_mapped or ip.sixtofour
    if ip in _NAT64 or (ip in _V4_COMPAT and int(ip) > 1):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def system_resolver(host: str, port: int) -> list[str]:
    """Every address getaddrinfo gives for HOST, in its order; numeric spellings such as
    2130706433 or 0x7f.1 come back as the dotted address they mean."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _host_key(host: str, port: int | None = None) -> str:
    """A host as httpx connects to it (lower case, no final dot, IDNA A-label) [and port]."""
    host = host.lower().rstrip(".")
    if not host.isascii():
        with suppress(idna.IDNAError):  # if it has no A-label, httpx refuses the URL itself
            host = idna.encode(host, uts46=True).decode("ascii")
    return host if port is None else f"{host}:{port}"


@dataclass(frozen=True)
class NetGuard:
    """The rule for every URL the program itself fetches: http(s) only, and no loopback,
    private, link-local or metadata address unless the operator allows the host by name
    (`[network] allow_hosts`: "host" for any port, or "host:port")."""

    allow_hosts: frozenset[str] = frozenset()
    resolve: Resolver = field(default=system_resolver, compare=False, repr=False)

    def allows(self, host: str, port: int) -> bool:
        return bool({_host_key(host), _host_key(host, port)} & self.allow_hosts)

    def check_url(self, url: str) -> tuple[str, int]:
        """(host, port) of an http(s) URL in plain form; Refused for anything else."""
        if any(c in url for c in "\\\r\n\t ") or any(ord(c) < 0x20 for c in url):
            raise Refused("a URL with a backslash, space or control character", where=url)
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise Refused(f"only http and https are fetched, not {parts.scheme or 'no'} scheme",
                          where=url)
        if "@" in parts.netloc:  # http://allowed.example@127.0.0.1/ names the second host
            raise Refused("user name or password in the URL", where=url)
        try:
            host, port = parts.hostname or "", parts.port
        except ValueError as exc:
            raise Refused("a bad port", where=url) from exc
        if not host:
            raise Refused("no host", where=url)
        port = port or (443 if parts.scheme == "https" else 80)
        if not self.allows(host, port):
            self._refuse_by_name(host, url)
        return host, port

    def _refuse_by_name(self, host: str, url: str) -> None:
        name = _host_key(host)
        if name in METADATA_HOSTS:
            raise Refused("a cloud metadata host", where=url)
        if name == "localhost" or name.endswith(".localhost"):  # RFC 6761 §6.3
            raise Refused("a loopback address (localhost); allow it in newsletter.toml "
                          "[network] allow_hosts", where=url)
        try:
            reason = classify(ipaddress.ip_address(name))
        except ValueError:
            return
        if reason:
            raise Refused(f"{reason}; allow it in newsletter.toml [network] allow_hosts",
                          where=url)

    def addresses(self, host: str, port: int) -> list[str]:
        """The addresses to connect to: every one getaddrinfo gives must be public unless the
        host is allowed (one bad answer is enough: a client may try any of them)."""
        if not self.allows(host, port):
            self._refuse_by_name(host, f"{host}:{port}")
        try:
            found = self.resolve(host, port)
        except (OSError, UnicodeError) as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        if not found:
            raise httpcore.ConnectError(f"cannot resolve {host}")
        if self.allows(host, port):
            return found
        for address in found:
            reason = classify(ipaddress.ip_address(address.split("%")[0]))
            if reason:
                raise Refused(f"{host} resolves to {address}, {reason}; allow it in "
                              "newsletter.toml [network] allow_hosts", where=f"{host}:{port}")
        return found


class _GuardedBackend(httpcore.SyncBackend):
    """Resolves and checks at connect time and connects to the very address it checked, so a
    DNS answer that changes between the check and the connection (rebinding) gains nothing."""

    def __init__(self, guard: NetGuard) -> None:
        self.guard = guard

    def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                    local_address: str | None = None,
                    socket_options: object = None) -> httpcore.NetworkStream:
        error: Exception | None = None
        for address in self.guard.addresses(host, port):
            try:
                return super().connect_tcp(address, port, timeout, local_address,
                                           socket_options)  # type: ignore[arg-type]
            except httpcore.ConnectError as exc:  # try the next address, as getaddrinfo users do
                error = exc
        raise error or httpcore.ConnectError(f"cannot connect to {host}")


class _GuardedTransport(httpx.HTTPTransport):
    """httpx's own transport (exception mapping, streaming) over the guarded backend."""

    def __init__(self, guard: NetGuard) -> None:
        # super().__init__ is skipped: it would only build a pool that this one replaces. No
        # proxy from the environment either: behind a proxy the address reached is not ours
        # to check.
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            network_backend=_GuardedBackend(guard))


def guarded_client(guard: NetGuard, timeout: float) -> httpx.Client:
    """An httpx client that never follows a redirect by itself and connects only where
    `guard` allows; use `open_url` to follow redirects with a check at every hop."""
    return httpx.Client(timeout=timeout, transport=_GuardedTransport(guard), trust_env=False,
                        follow_redirects=False)


@contextmanager
def open_url(client: httpx.Client, guard: NetGuard, url: str, headers: dict[str, str], *,
             max_redirects: int) -> Iterator[httpx.Response]:
    """GET URL as a stream, following up to MAX_REDIRECTS redirects; each target is checked
    before it is requested. Raises Refused, httpx.TooManyRedirects or httpx.HTTPError."""
    for _hop in range(max_redirects + 1):
        guard.check_url(url)
        with client.stream("GET", url, headers=headers) as response:
            location = response.headers.get("Location")
            if not (response.is_redirect and location):
                yield response
                return
        url = urljoin(str(response.url), location.strip())
    raise httpx.TooManyRedirects(f"more than {max_redirects} redirects",
                                 request=response.request)


def parse_allow_hosts(entries: list[str]) -> tuple[frozenset[str], list[str]]:
    """Normalised allowlist entries and the entries that are not "host" or "host:port"."""
    good, bad = set(), []
    for entry in entries:
        try:
            parts = urlsplit("//" + entry.strip())
            host, port = parts.hostname, parts.port
        except ValueError:
            host, port = None, None
        if not host or parts.path or parts.query or "@" in parts.netloc:
            bad.append(entry)
            continue
        good.add(_host_key(host, port))
    return frozenset(good), bad


# Names only a local network answers: RFC 6761 §6.3 localhost, RFC 6762 .local (mDNS),
# RFC 8375 .home.arpa, and .internal (ICANN, 2024: reserved for private use).
_LOCAL_SUFFIXES = (".localhost", ".local", ".home.arpa", ".internal")
# RFC 2606 / RFC 6761 names for examples and tests: looking them up says nothing about readers.
_EXAMPLE_SUFFIXES = (".example", ".test", ".invalid", ".example.com", ".example.net",
                     ".example.org")


def local_name_reason(host: str) -> str:
    """Why readers on the Internet cannot reach HOST, judging by the name alone ("" if they may)."""
    name = _host_key(host)
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
                   and not ("." + _host_key(h)).endswith(_EXAMPLE_SUFFIXES))
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
