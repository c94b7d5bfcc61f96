"""The SSRF guard: every URL the platform fetches or posts to on a customer's behalf goes through here.

Webhook URIs, ``webhook_send``, ``fetch``, ``play`` downloads and external media hosts are written by API
users, so without a guard they reach whatever the server can reach (``http://127.0.0.1:6379/``, the cloud
metadata service at ``169.254.169.254``, the office LAN). The rule: the scheme is http(s) or ws(s), and
every address the host resolves to is a public (globally routable) unicast address — no loopback,
link-local, private, shared (CGNAT), multicast, reserved or unspecified address, IPv4 or IPv6, IPv4-mapped
IPv6 included — unless ``VOIPBIN_OUTBOUND_ALLOW`` (comma-separated CIDRs and host names) allows it.

It is checked twice. When a URL is saved (:func:`check_url`, no DNS: literal addresses in every spelling
``inet_aton`` accepts — ``127.1``, ``2130706433``, ``0x7f.0.0.1`` — and ``localhost`` names; the API
routes add a DNS look-up with :func:`check_url_resolving`). And when it is dialled: the host is resolved
once, each address is checked, and the connection goes to that checked address (:class:`GuardedBackend`
for httpx, :func:`open_checked_socket` for websockets), so a name that resolves to a public address at
save time and to 127.0.0.1 a second later (DNS rebinding) is still refused. TLS keeps the URL's host
name for SNI and certificate checks; only the TCP destination is pinned.

Hand-written because no maintained library pins httpx/websockets connections to a checked address
(``advocate`` and ``ssrf-filter`` wrap ``requests`` only); the address classes come from ``ipaddress``.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import socket
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import httpcore
import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

HTTP_SCHEMES = frozenset({"http", "https"})
WS_SCHEMES = frozenset({"ws", "wss"})
DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
RESOLVE_TIMEOUT = 5.0

# Ranges ``ipaddress`` reports as global although nobody on the public internet answers there.
_NOT_PUBLIC = (ipaddress.ip_network("64:ff9b:1::/48"),)


class OutboundBlocked(ValueError):
    """The URL or the address it resolves to is not one the platform may contact for a customer."""


def _embedded_v4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address inside an IPv6 one (mapped ``::ffff:a.b.c.d``, 6to4, Teredo, ``::a.b.c.d``)."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if 1 < int(ip) < 2**32:  # deprecated IPv4-compatible form
        return ipaddress.IPv4Address(int(ip))
    return None


def _own_class(ip: IPAddress) -> str | None:
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    if ip.is_private:
        return "private"
    if ip.is_reserved:
        return "reserved"
    if not ip.is_global or any(ip in net for net in _NOT_PUBLIC):
        return "non-public"  # e.g. 100.64.0.0/10 (shared address space), documentation ranges
    return None


def address_class(ip: IPAddress) -> str | None:
    """Why ``ip`` is not a public unicast address (``"loopback"``, ``"link-local"``...), or None.

    An IPv4-mapped address is its IPv4 address; other IPv6 forms that embed one (6to4, Teredo,
    IPv4-compatible) must pass both as themselves and as the embedded address."""
    inner = _embedded_v4(ip)
    if inner is not None:
        embedded = _own_class(inner)
        if embedded is not None or (isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None):
            return embedded
    return _own_class(ip)


def parse_ip(host: str) -> IPAddress | None:
    """``host`` as an address if it is one in any spelling a resolver accepts, else None (a name).

    ``inet_aton`` takes the historic IPv4 forms (``127.1``, ``2130706433``, ``0x7f.0.0.1``, ``0177.0.0.1``)
    that ``getaddrinfo`` — and therefore every HTTP client — also accepts."""
    text = host.strip("[]")
    try:
        return ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        pass
    if text and all(c in "0123456789abcdefxABCDEFX." for c in text) and text[0].isdigit():
        try:
            return ipaddress.IPv4Address(socket.inet_aton(text))
        except OSError:
            return None
    return None


def _is_localhost_name(host: str) -> bool:
    name = host.rstrip(".").lower()
    return name == "localhost" or name.endswith(".localhost")  # RFC 6761: always loopback


@dataclass(frozen=True)
class OutboundPolicy:
    """What ``VOIPBIN_OUTBOUND_ALLOW`` lets through besides public addresses."""

    networks: tuple[IPNetwork, ...] = ()
    hosts: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def parse(cls, raw: str) -> OutboundPolicy:
        """``"127.0.0.0/8, ::1, media.internal, .corp.example"``: CIDRs or single addresses, and host
        names (a leading dot allows every subdomain). Raises ValueError naming a bad entry."""
        networks: list[IPNetwork] = []
        hosts: set[str] = set()
        for item in (part.strip() for part in raw.split(",")):
            if not item:
                continue
            try:
                networks.append(ipaddress.ip_network(item.strip("[]"), strict=False))
                continue
            except ValueError:
                pass
            name = item.rstrip(".").lower()
            if "/" in name or ":" in name or not name.strip("."):
                raise ValueError(f"VOIPBIN_OUTBOUND_ALLOW: {item!r} is neither a CIDR nor a host name")
            hosts.add(name)
        return cls(tuple(networks), frozenset(hosts))

    def host_allowed(self, host: str) -> bool:
        name = host.rstrip(".").lower()
        return name in self.hosts or any(h.startswith(".") and name.endswith(h) for h in self.hosts)

    def address_refusal(self, ip: IPAddress) -> str | None:
        """Why ``ip`` may not be contacted, or None when it may."""
        candidates = [ip] + [v4 for v4 in [_embedded_v4(ip)] if v4 is not None]
        if any(c in net for c in candidates for net in self.networks if c.version == net.version):
            return None
        return address_class(ip)

    def check_addresses(self, host: str, addresses: Iterable[IPAddress]) -> None:
        for ip in addresses:
            refusal = self.address_refusal(ip)
            if refusal is not None:
                shown = host if str(ip) == host.strip("[]") else f"{host} ({ip})"
                raise OutboundBlocked(
                    f"{shown} is a {refusal} address; the platform does not connect there "
                    "(allow it with VOIPBIN_OUTBOUND_ALLOW)"
                )


@functools.lru_cache(maxsize=8)
def policy_for(raw: str) -> OutboundPolicy:
    """The parsed ``VOIPBIN_OUTBOUND_ALLOW`` (cached: routes and handlers ask per use)."""
    return OutboundPolicy.parse(raw)


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # without brackets
    port: int


def check_url(policy: OutboundPolicy, url: str, schemes: frozenset[str] = HTTP_SCHEMES) -> Target:
    """The save-time check (no DNS): scheme, a host, and no forbidden literal address or localhost name.
    Raises :class:`OutboundBlocked` with a message fit for a 400."""
    try:
        parts = urllib.parse.urlsplit(url.strip())
        host = parts.hostname or ""
        port = parts.port
    except ValueError as exc:
        raise OutboundBlocked(f"{url!r} is not a valid URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in schemes:
        wanted = " or ".join(f"{s}://" for s in sorted(schemes))
        raise OutboundBlocked(f"{url!r} must be a {wanted} URL")
    if not host:
        raise OutboundBlocked(f"{url!r} has no host")
    target = Target(scheme, host, port or DEFAULT_PORTS.get(scheme, 0))
    if policy.host_allowed(host):
        return target
    ip = parse_ip(host)
    if ip is not None:
        policy.check_addresses(host, [ip])
    elif _is_localhost_name(host):
        policy.check_addresses(host, [ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")])
    return target


async def resolve_checked(policy: OutboundPolicy, host: str, port: int) -> list[str]:
    """Resolve ``host`` once and return its addresses, every one of them checked (the connect-time
    check: the caller must dial one of these, never the name). Raises :class:`OutboundBlocked`."""
    literal = parse_ip(host)
    if literal is not None:
        ips: list[IPAddress] = [literal]
    else:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(RESOLVE_TIMEOUT):
                infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, TimeoutError) as exc:
            raise OutboundBlocked(f"{host} cannot be resolved: {exc}") from None
        ips = []
        for info in infos:
            ip = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
            if ip not in ips:
                ips.append(ip)
    if not policy.host_allowed(host):
        policy.check_addresses(host, ips)  # all of them: a client may fall back to any
    return [str(ip) for ip in ips]


async def check_url_resolving(
    policy: OutboundPolicy, url: str, schemes: frozenset[str] = HTTP_SCHEMES
) -> Target:
    """:func:`check_url` plus a DNS look-up of host names. A name that does not resolve (yet) passes:
    it is checked again when it is dialled."""
    target = check_url(policy, url, schemes)
    if parse_ip(target.host) is None and not policy.host_allowed(target.host):
        try:
            await resolve_checked(policy, target.host, target.port)
        except OutboundBlocked as exc:
            if "cannot be resolved" not in str(exc):
                raise
    return target


def blocked_cause(exc: BaseException) -> OutboundBlocked | None:
    """The guard's refusal behind an httpx error (the transport wraps it in ``httpx.ConnectError``)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OutboundBlocked):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


class _BlockedConnect(httpcore.ConnectError):
    """httpcore's connect error, so httpx callers see ``httpx.ConnectError`` (cause: OutboundBlocked)."""


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore network backend that resolves, checks and dials the checked address itself."""

    def __init__(self, policy: OutboundPolicy) -> None:
        self.policy = policy
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109  (httpcore's backend signature)
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = await resolve_checked(self.policy, host, port)
        except OutboundBlocked as exc:
            raise _BlockedConnect(str(exc)) from exc
        error: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout, local_address=local_address, socket_options=socket_options
                )
            except httpcore.ConnectError as exc:  # next address, like happy eyeballs' fallback
                error = exc
        assert error is not None
        raise error

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109  (httpcore's backend signature)
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise _BlockedConnect("unix sockets are not an outbound target")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport with its connection pool built on :class:`GuardedBackend`.

    httpx has no ``network_backend`` argument, so the pool it built is replaced by one with the same
    settings and our backend (the pool is the transport's only connection-making part)."""

    def __init__(self, policy: OutboundPolicy, *, limits: httpx.Limits | None = None) -> None:
        limits = limits or httpx.Limits(max_connections=100, max_keepalive_connections=20)
        super().__init__(limits=limits, trust_env=False)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=GuardedBackend(policy),
        )


def guarded_client(policy: OutboundPolicy, *, timeout: float | httpx.Timeout = 10.0) -> httpx.AsyncClient:
    """The httpx client for customer URLs: guarded transport, no redirects (a 30x to 127.0.0.1 would
    bypass nothing, but following it silently is not what a webhook sender expects), no env proxies."""
    return httpx.AsyncClient(
        transport=GuardedTransport(policy), timeout=timeout, follow_redirects=False, trust_env=False
    )


async def open_checked_socket(
    policy: OutboundPolicy, url: str, schemes: frozenset[str] = WS_SCHEMES, connect_timeout: float = 10.0
) -> socket.socket:
    """A connected TCP socket to a checked address of ``url``'s host, for ``websockets.connect(url,
    sock=...)``: the handshake's Host header and TLS SNI still come from the URL, and websockets will not
    follow a redirect on a socket it was given."""
    target = check_url(policy, url, schemes)
    addresses = await resolve_checked(policy, target.host, target.port)
    loop = asyncio.get_running_loop()
    error: OSError | None = None
    for address in addresses:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            async with asyncio.timeout(connect_timeout):
                await loop.sock_connect(sock, (address, target.port))
            return sock
        except (OSError, TimeoutError) as exc:
            sock.close()
            error = exc if isinstance(exc, OSError) else OSError(f"connect to {address} timed out")
    assert error is not None
    raise error
