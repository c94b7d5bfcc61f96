"""VoIPBIN's default external media: RTP over UDP to ``external_host`` (``host:port``), G.711.

The platform is the client (``connection_type: client``): it sends the caller's audio from a local UDP
port to the checked address of ``external_host`` and plays what that address sends back to the same
port (symmetric RTP, as Asterisk's ExternalMedia does). Packets from any other address are ignored (the
socket is connected). The host is resolved and checked by the SSRF guard before the socket connects.
"""

from __future__ import annotations

import asyncio
import logging
import uuid

from voipbin.flow.interfaces import CallAudio, CallControl
from voipbin.flow.streams.framing import RtpPacketizer, g711, rtp_payload
from voipbin.flow.streams.pump import AudioPump
from voipbin.security.outbound import OutboundPolicy, resolve_checked

log = logging.getLogger(__name__)


def split_host_port(external_host: str) -> tuple[str, int]:
    host, sep, port = external_host.strip().rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"external_host must be host:port, got {external_host!r}")
    return host, int(port)


class _Receiver(asyncio.DatagramProtocol):
    def __init__(self, session: RtpExternalMedia) -> None:
        self.session = session

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.session.received(data)

    def error_received(self, exc: Exception) -> None:  # ICMP port unreachable etc.: keep sending
        log.debug("external media %s: %s", self.session.id, exc)


class RtpExternalMedia:
    """One call's RTP stream to an external host; :meth:`open` then :meth:`run` until cancelled."""

    def __init__(
        self,
        call: CallControl,
        audio: CallAudio,
        external_host: str,
        policy: OutboundPolicy,
        *,
        format_: str = "ulaw",
        listen: bool = True,
        speak: bool = True,
    ) -> None:
        self.id = uuid.uuid4()
        self.call = call
        self.codec = g711(format_)
        self.host, self.port = split_host_port(external_host)
        self.policy = policy
        self.pump = AudioPump(call, audio, listen=listen, speak=speak)
        self.packets_in = 0
        self.packets_out = 0
        self.local: tuple[str, int] = ("", 0)
        self._packetizer = RtpPacketizer(self.codec.payload_type)
        self._transport: asyncio.DatagramTransport | None = None
        self._task: asyncio.Task[object] | None = None

    async def open(self) -> None:
        """Resolve + check the host, connect the UDP socket. Raises OutboundBlocked or OSError."""
        addresses = await resolve_checked(self.policy, self.host, self.port)
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Receiver(self), remote_addr=(addresses[0], self.port)
        )
        self._transport = transport
        sockname = transport.get_extra_info("sockname")
        self.local = (str(sockname[0]), int(sockname[1]))

    def received(self, packet: bytes) -> None:
        payload = rtp_payload(packet, self.codec.payload_type)
        if payload is not None:
            self.packets_in += 1
            self.pump.feed(self.codec.decode(payload))

    async def _send(self, pcm: bytes) -> None:
        assert self._transport is not None
        self._transport.sendto(self._packetizer.packet(self.codec.encode(pcm)))
        self.packets_out += 1

    async def run(self) -> None:
        """Stream until cancelled (external_media_stop) or the call ends (CallHungUp)."""
        if self._transport is None:
            raise RuntimeError("open() first")
        self._task = asyncio.current_task()
        try:
            await self.pump.run(self._send)
        finally:
            self._transport.close()

    def stop(self) -> None:
        """external_media_stop: end :meth:`run` (and close the socket)."""
        if self._task is not None:
            self._task.cancel()
        elif self._transport is not None:
            self._transport.close()
