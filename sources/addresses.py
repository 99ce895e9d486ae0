"""Where a download may connect: public addresses, and the configured providers' own origins.

A preview URL comes from a provider's answer (Spotify's ``preview_url``, Deezer's signed
``preview``), and every redirect it answers names the next host: none of them is ours to trust.
Followed blindly, they reach services that listen only on this machine or its network (a 302 to
``http://127.0.0.1:6379/`` stores that service's answer as a track's audio). So a download may
reach only http(s) hosts whose addresses are all public -- not loopback, private, link-local,
multicast, unspecified or reserved, however the address is spelled (``2130706433``,
``0x7f.1``, ``[::ffff:127.0.0.1]``, a DNS name that resolves there, ``localhost``) -- except
the origins of the providers songmix is configured to talk to, which may well be local (the
loopback demo service, a test fake, a local mirror).

:meth:`AddressPolicy.refusal` checks a URL before any request; :meth:`AddressPolicy.peer_refusal`
checks the address a connection actually reached, so a name that resolves differently the second
time (DNS rebinding) is caught too (see :class:`songmix.sources.http.GuardedSession`).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

#: Schemes a download may use.
ALLOWED_SCHEMES = ("http", "https")
_DEFAULT_PORTS = {"http": 80, "https": 443}
# NAT64 (RFC 6052) embeds an IPv4 address in the last 32 bits.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")

Origin = tuple[str, int]


class AddressRefused(Exception):
    """A connection reached, or would reach, an address the policy refuses.

    Not an ``OSError``: urllib3 and requests let it through unchanged instead of retrying or
    wrapping it as a connection failure.
    """


class AddressPolicy:
    """Public addresses only, plus the origins of the configured providers.

    Parameters
    ----------
    trusted_urls : iterable of str
        Base URLs of the providers (Spotify API and accounts, ReccoBeats, Deezer, the demo
        service). Their origins (host as spelled, lowercased, and port) are exempt from the
        address check; any other origin on the same host is not.
    """

    def __init__(self, trusted_urls: Iterable[str] = ()) -> None:
        self.trusted: frozenset[Origin] = frozenset(
            origin for origin in (_origin(url) for url in trusted_urls) if origin is not None
        )

    def __repr__(self) -> str:
        return f"AddressPolicy(trusted={sorted(self.trusted)})"

    def refusal(self, url: str) -> str | None:
        """Why ``url`` may not be fetched, or None when it may.

        Checks the scheme, then every address the host resolves to. A host that does not
        resolve is let through: its connection fails on its own, as a network error.
        """
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ALLOWED_SCHEMES:
            return f"a {scheme or 'scheme-less'} URL (not http or https)"
        origin = _origin(url)
        if origin is None:
            return "a URL without a valid host and port"
        if origin in self.trusted:
            return None
        host, port = origin
        if _is_localhost_name(host):
            return f"{_where(origin)} (this machine)"
        try:
            resolved = {info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)}
        except (socket.gaierror, UnicodeError, OSError):
            return None
        for address in sorted(resolved):
            kind = address_kind(address)
            if kind is not None:
                return f"{_where(origin)} ({_described(address, kind)})"
        return None

    def peer_refusal(self, host: str, port: int, peer_address: str) -> str | None:
        """Why a connection to ``host:port`` that reached ``peer_address`` must be dropped, or None."""
        origin = (host.lower().strip("[]"), port)
        if origin in self.trusted:
            return None
        kind = address_kind(peer_address)
        return None if kind is None else f"{_where(origin)} (connected to {_described(peer_address, kind)})"


def address_kind(address: str) -> str | None:
    """``None`` for a public IP address, else what it is: ``"loopback"``, ``"private"``, ...

    IPv4 addresses embedded in IPv6 ones (IPv4-mapped, 6to4, NAT64) are judged as IPv4.
    Anything that does not parse as an IP address is ``"unparseable"``.
    """
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone (fe80::1%eth0)
    except ValueError:
        return "unparseable"
    if ip.version == 6:
        embedded = ip.ipv4_mapped or ip.sixtofour or (
            ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF) if ip in _NAT64 else None)
        if embedded is not None:
            return address_kind(str(embedded))
        if ip.is_site_local:
            return "site-local"
    for kind in ("unspecified", "loopback", "link_local", "multicast", "private", "reserved"):
        if getattr(ip, f"is_{kind}"):
            return kind.replace("_", "-")
    return None if ip.is_global else "non-public"


def _origin(url: str) -> Origin | None:
    parts = urlsplit(url)
    try:
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme.lower())
    except ValueError:  # a port out of range or not a number
        return None
    if not parts.hostname or port is None:
        return None
    return parts.hostname.lower(), port


def _is_localhost_name(host: str) -> bool:
    name = host.rstrip(".")
    return name == "localhost" or name.endswith(".localhost")


def _where(origin: Origin) -> str:
    host, port = origin
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _described(address: str, kind: str) -> str:
    article = "an" if kind[0] in "aeiou" else "a"
    return f"{address}, {article} {kind} address"
