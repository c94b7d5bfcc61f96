"""asyncio UDP + TCP transports for SIP on one port.

The transport only moves bytes: it frames TCP streams by Content-Length (RFC 3261 §18.3), hands every
complete message to ``on_message(data, source)`` and sends bytes to ``(ip, port, transport)``.
Responses to TCP requests go back on the connection they came in on (we key connections by peer
address). Junk never escapes: oversized or unframeable TCP input closes that one connection, and
UDP datagrams are passed up as they are (the parser rejects junk).

Dual stack: besides the IPv4 ``host`` it can listen on an IPv6 ``host6`` on the same port, with
``IPV6_V6ONLY`` set so the two never claim each other's traffic (a dual-stack ``::`` socket would
see IPv4 peers as ``::ffff:a.b.c.d`` and collide with the IPv4 bind). A datagram goes out of the
socket of its destination's family.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import socket
from collections.abc import Callable
from typing import Any

from .ua_base import Source

log = logging.getLogger(__name__)

MAX_HEADER = 16384
MAX_BODY = 65535
_CLEN_RE = re.compile(rb"^(?:content-length|l)[ \t]*:[ \t]*(\d+)[ \t]*$", re.I | re.M)


OnMessage = Callable[[bytes, Source], None]


class StreamFramer:
    """Splits a SIP byte stream into messages using Content-Length. Sans-I/O."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        """Returns complete messages; raises ValueError if the stream is unframeable (close it)."""
        self._buf += data
        out: list[bytes] = []
        while True:
            # keep-alive CRLFs between messages (RFC 5626 uses CRLFCRLF pings)
            while self._buf[:2] == b"\r\n":
                del self._buf[:2]
            end = self._buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buf) > MAX_HEADER:
                    raise ValueError("header section too large")
                return out
            m = _CLEN_RE.search(bytes(self._buf[:end]))
            length = int(m.group(1)) if m else 0
            if length > MAX_BODY:
                raise ValueError("body too large")
            total = end + 4 + length
            if len(self._buf) < total:
                return out
            out.append(bytes(self._buf[:total]))
            del self._buf[:total]


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, owner: SipTransport) -> None:
        self.owner = owner

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        if data.strip(b"\r\n\x00") == b"":
            return  # keep-alive
        self.owner._deliver(data, Source(addr[0], addr[1], "udp"))

    def error_received(self, exc: Exception) -> None:
        log.debug("udp error: %s", exc)


class _TcpProtocol(asyncio.Protocol):
    def __init__(self, owner: SipTransport) -> None:
        self.owner = owner
        self.framer = StreamFramer()
        self.transport: asyncio.Transport | None = None
        self.peer: tuple[str, int] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.peer = (peer[0], peer[1])
        self.owner._tcp[self.peer] = self

    def data_received(self, data: bytes) -> None:
        try:
            messages = self.framer.feed(data)
        except ValueError as exc:
            log.info("closing TCP %s: %s", self.peer, exc)
            if self.transport:
                self.transport.close()
            return
        assert self.peer is not None
        for msg in messages:
            self.owner._deliver(msg, Source(self.peer[0], self.peer[1], "tcp"))

    def connection_lost(self, exc: Exception | None) -> None:
        if self.peer and self.owner._tcp.get(self.peer) is self:
            del self.owner._tcp[self.peer]

    def write(self, data: bytes) -> None:
        if self.transport and not self.transport.is_closing():
            self.transport.write(data)


def is_ipv6(ip: str) -> bool:
    return ":" in ip


def _bound_socket(host: str, port: int, kind: socket.SocketKind) -> socket.socket:
    """A non-blocking socket bound to ``host:port``; IPv6 ones are IPv6-only (see the module doc)."""
    family = socket.AF_INET6 if is_ipv6(host) else socket.AF_INET
    sock = socket.socket(family, kind)
    try:
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        if kind == socket.SOCK_STREAM:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


class SipTransport:
    def __init__(
        self,
        host: str,
        port: int,
        on_message: OnMessage,
        on_error: Callable[[Source], None] | None = None,
        *,
        host6: str | None = None,
        host6_optional: bool = False,
    ) -> None:
        self.host = host
        self.host6 = host6  # also listen on this IPv6 address (same port); None: IPv4 only
        self.host6_optional = host6_optional
        self.port = port
        self.on_message = on_message
        self.on_error = on_error  # told when a destination is unreachable (TCP connect failed)
        self._udp: asyncio.DatagramTransport | None = None
        self._udp6: asyncio.DatagramTransport | None = None
        self._servers: list[asyncio.Server] = []
        self._tcp: dict[tuple[str, int], _TcpProtocol] = {}
        self._connecting: dict[tuple[str, int], asyncio.Task[None]] = {}
        self._pending: dict[tuple[str, int], list[bytes]] = {}

    async def start(self) -> int:
        """Bind UDP and TCP on the same port (port 0 = pick a free one for all). Returns the port.

        With ``host6_optional`` an IPv6 side that cannot bind that port is logged and left out
        instead of failing the start (``VOIPBIN_SIP_HOST6=auto``)."""
        for _attempt in range(20):
            try:
                port = await self._bind(self.host, self.port)
            except OSError:
                if self.port:
                    raise
                continue  # port 0 picked a UDP port whose TCP twin is busy: try another
            if self.host6:
                try:
                    await self._bind(self.host6, port)
                except OSError as exc:
                    if not self.port:
                        self._close_bound()
                        continue  # its IPv6 twin is busy: try another port for all four
                    if not self.host6_optional:
                        self._close_bound()
                        raise
                    log.warning("SIP over IPv6 disabled: cannot bind [%s]:%s (%s)", self.host6, port, exc)
            self.port = port
            return port
        raise OSError("could not bind UDP and TCP on the same port")

    async def _bind(self, host: str, port: int) -> int:
        """UDP then TCP on ``host:port``; the UDP bind fixes port 0. Both or neither stay bound."""
        loop = asyncio.get_running_loop()
        udp, _ = await loop.create_datagram_endpoint(
            lambda: _UdpProtocol(self), sock=_bound_socket(host, port, socket.SOCK_DGRAM)
        )
        port = udp.get_extra_info("sockname")[1]
        try:
            server = await loop.create_server(
                lambda: _TcpProtocol(self), sock=_bound_socket(host, port, socket.SOCK_STREAM)
            )
        except OSError:
            udp.close()
            raise
        if is_ipv6(host):
            self._udp6 = udp
        else:
            self._udp = udp
        self._servers.append(server)
        return port

    def _close_bound(self) -> None:
        for udp in (self._udp, self._udp6):
            if udp:
                udp.close()
        for server in self._servers:
            server.close()
        self._udp = self._udp6 = None
        self._servers = []

    @property
    def ipv6(self) -> bool:
        """Whether this transport can reach IPv6 peers."""
        return self._udp6 is not None

    async def stop(self) -> None:
        for task in self._connecting.values():
            task.cancel()
        for proto in list(self._tcp.values()):
            if proto.transport:
                proto.transport.close()
        for udp in (self._udp, self._udp6):
            if udp:
                udp.close()
        for server in self._servers:
            server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 1)

    def _deliver(self, data: bytes, source: Source) -> None:
        try:
            self.on_message(data, source)
        except Exception:  # the receive path must survive anything
            log.exception("error handling SIP message from %s", source)

    def send(self, data: bytes, dest: Source) -> None:
        """Fire-and-forget send; TCP connects on demand and queues until connected."""
        if dest.transport == "tcp":
            proto = self._tcp.get(dest.addr)
            if proto is not None:
                proto.write(data)
                return
            self._pending.setdefault(dest.addr, []).append(data)
            if dest.addr not in self._connecting:
                self._connecting[dest.addr] = asyncio.get_running_loop().create_task(self._connect(dest.addr))
            return
        udp = self._udp6 if is_ipv6(dest.ip) else self._udp
        if udp is None:
            log.info("udp send to %s dropped: no socket of its address family", dest)
            return
        try:
            udp.sendto(data, dest.addr)
        except OSError as exc:
            log.info("udp send to %s failed: %s", dest, exc)

    async def _connect(self, addr: tuple[str, int]) -> None:
        loop = asyncio.get_running_loop()
        try:
            _, proto = await asyncio.wait_for(
                loop.create_connection(lambda: _TcpProtocol(self), addr[0], addr[1]), 10
            )
            for data in self._pending.pop(addr, []):
                proto.write(data)
        except (OSError, TimeoutError) as exc:
            log.info("tcp connect to %s failed: %s", addr, exc)
            self._pending.pop(addr, None)
            if self.on_error is not None:
                try:
                    self.on_error(Source(addr[0], addr[1], "tcp"))
                except Exception:
                    log.exception("transport error callback failed")
        finally:
            self._connecting.pop(addr, None)


__all__ = ["MAX_BODY", "MAX_HEADER", "OnMessage", "SipTransport", "Source", "StreamFramer", "is_ipv6"]
