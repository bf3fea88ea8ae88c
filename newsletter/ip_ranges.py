"""Which IP addresses no public host has, and host names in the form connections use."""

from __future__ import annotations

import ipaddress
from contextlib import suppress

import idna

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

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


def host_key(host: str, port: int | None = None) -> str:
    """A host as httpx connects to it (lower case, no final dot, IDNA A-label) [and port]."""
    host = host.lower().rstrip(".")
    if not host.isascii():
        with suppress(idna.IDNAError):  # if it has no A-label, httpx refuses the URL itself
            host = idna.encode(host, uts46=True).decode("ascii")
    return host if port is None else f"{host}:{port}"
