"""Which URLs a webhook may have, and which addresses a delivery may connect to (SSRF rules,
docs/security.md).

A URL is refused unless it is ``http``/``https``, absolute, without credentials or fragment,
at most 2,000 characters. Its host is resolved when it is registered *and* again before every
attempt; the attempt connects to the address that was checked (no second lookup, so a DNS
answer that changes in between cannot redirect it). Every address the name resolves to must be
allowed:

* public (globally routable) unicast addresses are;
* ``ANTEROOM_WEBHOOK_ALLOWED_HOSTS`` lists names, addresses or CIDR networks that are allowed
  although not public (``127.0.0.1`` for a receiver on this machine);
* ``ANTEROOM_WEBHOOK_ALLOW_PRIVATE`` allows the private ranges (not loopback or link-local);
* unspecified, multicast and broadcast addresses never are;
* a URL naming this server (a name in ``ALLOWED_HOSTS`` not listed above, or the very host and
  port a registration request came in on) is refused.

Redirects are never followed (``delivery``), so a receiver cannot bounce a delivery elsewhere.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from django.http.request import validate_host

from lobby.errors import WebhookInvalidUrl, WebhookUrlNotAllowed

MAX_URL_CHARS = 2000
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_BAD_CHARS = re.compile(r"[\x00-\x20\x7f-\x9f\\]")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")  # RFC 8215: a site's own translator
_V4_COMPATIBLE = ipaddress.ip_network("::/96")  # deprecated ``::a.b.c.d``
_CGNAT = ipaddress.ip_network("100.64.0.0/10")


@dataclass(frozen=True)
class Target:
    """A parsed webhook URL: what to connect to and what to ask for."""

    scheme: str
    host: str  # lower-case, IDNA (ASCII); an IPv6 literal without brackets
    port: int
    target: str  # path and query, as sent on the request line
    host_header: str

    @property
    def is_ip(self) -> bool:
        return _ip(self.host) is not None


def _ip(value: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def parse_url(url: object) -> Target:
    """Check a URL's form. Raises ``WebhookInvalidUrl`` (the message never repeats it)."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL_CHARS:
        raise WebhookInvalidUrl(f"url must be a string of 1 to {MAX_URL_CHARS} characters.")
    if _BAD_CHARS.search(url):
        raise WebhookInvalidUrl("url must not contain spaces, control characters or '\\'.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise WebhookInvalidUrl("url is not a valid URL.") from exc
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise WebhookInvalidUrl("url must start with http:// or https://.")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise WebhookInvalidUrl("url must not contain credentials; use the signing secret.")
    if parts.fragment or url.endswith("#"):
        raise WebhookInvalidUrl("url must not have a fragment.")
    raw_host = parts.hostname or ""
    if not raw_host:
        raise WebhookInvalidUrl("url must name a host.")
    if _ip(raw_host) is not None:
        host = str(_ip(raw_host))
    else:
        try:
            host = raw_host.encode("idna").decode("ascii").lower().rstrip(".")
        except UnicodeError as exc:
            raise WebhookInvalidUrl("url has an invalid host name.") from exc
        if not host or len(host) > 253 or not re.fullmatch(r"[a-z0-9.-]+", host):
            raise WebhookInvalidUrl("url has an invalid host name.")
    if port is None:
        port = 443 if scheme == "https" else 80
    if port == 0:
        raise WebhookInvalidUrl("url has an invalid port.")
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    shown = f"[{host}]" if ":" in host else host
    default = (scheme, port) in (("http", 80), ("https", 443))
    return Target(scheme, host, port, target, shown if default else f"{shown}:{port}")


# Address policy ------------------------------------------------------------------------------


def _allowed_entries() -> tuple[set[str], list[ipaddress.IPv4Network | ipaddress.IPv6Network]]:
    names: set[str] = set()
    nets: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    for entry in settings.ANTEROOM_WEBHOOK_ALLOWED_HOSTS:
        entry = entry.strip().lower().strip("[]")
        try:
            nets.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            names.add(entry.rstrip("."))
    return names, nets


def _unwrap(ip: IPAddress) -> IPAddress:
    """An IPv4 address carried inside IPv6 is that address: mapped ``::ffff:a.b.c.d``,
    IPv4-compatible ``::a.b.c.d``, 6to4 ``2002:AABB:CCDD::``, NAT64 (``64:ff9b::/96`` and the
    local-use ``64:ff9b:1::/48``, whose last 32 bits are the address)."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip.sixtofour is not None:
            return ip.sixtofour
        if ip in _NAT64 or ip in _NAT64_LOCAL:
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if ip in _V4_COMPATIBLE and int(ip) > 1:  # not ``::`` or ``::1``
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip


def _site_local(ip: IPAddress) -> bool:
    return isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local


def address_refusal(ip: IPAddress, *, host_listed: bool) -> str | None:
    """Why a delivery may not connect to ``ip`` (None: it may)."""
    ip = _unwrap(ip)
    if ip.is_unspecified or ip.is_multicast or ip == ipaddress.IPv4Address("255.255.255.255"):
        return "an unspecified, multicast or broadcast address"
    if host_listed:
        return None
    _, nets = _allowed_entries()
    if any(ip.version == n.version and ip in n for n in nets):
        return None
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if (ip.is_private or ip in _CGNAT) and settings.ANTEROOM_WEBHOOK_ALLOW_PRIVATE:
        return None
    # ``is_global`` alone is not enough: Python calls some reserved and deprecated ranges
    # global (site-local ``fec0::/10``, parts of ``::/8``).
    if not ip.is_global or ip.is_reserved or _site_local(ip) or ip in _CGNAT:
        return "a private or reserved address"
    return None


def _is_self_name(host: str) -> bool:
    names, _ = _allowed_entries()
    if host in names:
        return False
    return validate_host(host, [h.lower() for h in settings.ALLOWED_HOSTS])


def resolve(t: Target) -> list[IPAddress]:
    """The addresses ``t``'s host resolves to, all of them allowed, or ``WebhookUrlNotAllowed``.
    Used when a URL is registered and before every delivery attempt."""
    if not t.is_ip and _is_self_name(t.host):
        raise WebhookUrlNotAllowed("The webhook URL names this server.")
    names, _ = _allowed_entries()
    listed = not t.is_ip and t.host in names
    if t.is_ip:
        found = [_ip(t.host)]
    else:
        try:
            infos = socket.getaddrinfo(t.host, t.port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            raise WebhookUrlNotAllowed("The webhook URL's host does not resolve.") from exc
        found = [_ip(str(info[4][0]).split("%", 1)[0]) for info in infos]
    addresses: list[IPAddress] = []
    for ip in found:
        if ip is None:
            raise WebhookUrlNotAllowed("The webhook URL's host resolves to no usable address.")
        why = address_refusal(ip, host_listed=listed)
        if why is not None:
            raise WebhookUrlNotAllowed(
                f"The webhook URL points at {why}; see ANTEROOM_WEBHOOK_ALLOWED_HOSTS."
            )
        if ip not in addresses:
            addresses.append(ip)
    if not addresses:
        raise WebhookUrlNotAllowed("The webhook URL's host resolves to no address.")
    return addresses


def check_url(url: object, *, served_at: tuple[str, int] | None = None) -> Target:
    """Registration: the URL's form, then its addresses. ``served_at`` is the (host, port) the
    registering request came in on: a URL pointing right back at it is refused even when its
    address is allowed."""
    t = parse_url(url)
    if served_at is not None:
        host, port = served_at
        host = host.lower().strip("[]")
        if t.host == host and t.port == port:
            raise WebhookUrlNotAllowed("The webhook URL names this server.")
    resolve(t)
    return t
