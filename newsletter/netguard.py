"""Decide whether a URL, host or IP address may be fetched, and connect only to what was checked."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

import httpcore
import httpx

from newsletter.errors import NewsletterError
from newsletter.ip_ranges import METADATA_HOSTS, classify, host_key

Resolver = Callable[[str, int], list[str]]


class Refused(NewsletterError):
    """A URL the program will not fetch: its scheme, its form or the address it leads to."""


def system_resolver(host: str, port: int) -> list[str]:
    """Every address getaddrinfo gives for HOST, in its order; numeric spellings such as
    2130706433 or 0x7f.1 come back as the dotted address they mean."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True)
class NetGuard:
    """The rule for every URL the program itself fetches: http(s) only, and no loopback,
    private, link-local or metadata address unless the operator allows the host by name
    (`[network] allow_hosts`: "host" for any port, or "host:port")."""

    allow_hosts: frozenset[str] = frozenset()
    resolve: Resolver = field(default=system_resolver, compare=False, repr=False)

    def allows(self, host: str, port: int) -> bool:
        return bool({host_key(host), host_key(host, port)} & self.allow_hosts)

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
        name = host_key(host)
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
        good.add(host_key(host, port))
    return frozenset(good), bad


