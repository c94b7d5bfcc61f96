"""``RtpSockets``: one session's RTP and RTCP sockets on the media thread, read in bulk or at arrival.

Two ways to read, switchable while the call runs:

* **at the tick** (the default): the engine drains the sockets at the start of every 20 ms tick
  (``MediaEngine.watch``: one ``epoll`` for all sessions, one ``recvmsg`` per datagram). The media
  thread then wakes 50 times a second however many packets arrive, instead of once per packet;
* **at arrival** (``arrival_reads = True``): a loop reader, for sessions whose listeners (the AI,
  STT) should get audio the moment it is complete rather than at the next tick.

Either way the arrival time of a datagram is the kernel's receive timestamp (``SO_TIMESTAMPNS``), so
interarrival jitter, gaps and the jitter buffer's delay window do not depend on when it was read.
Sending is a plain ``sendto`` on the same non-blocking socket (a full socket buffer drops the packet,
counted in ``send_errors``: late RTP is worthless, queueing it would only add delay).

Hand-written because asyncio's datagram transports (and uvloop's) only read through a per-datagram
``datagram_received`` callback on the loop; there is no way to drain hundreds of sockets at once.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import struct
import time
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from voipbin.media.engine import MediaEngine
    from voipbin.media.stats import RtpStats

log = logging.getLogger(__name__)

# Linux's SO_TIMESTAMPNS (= SCM_TIMESTAMPNS): Python does not export it. A struct timespec follows.
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
_TIMESPEC = struct.Struct("@qq")
_ANC_SIZE = socket.CMSG_SPACE(_TIMESPEC.size)
MAX_DATAGRAM = 2048
_ARRIVAL_BATCH = 16  # datagrams one loop-reader callback reads before it yields to the loop


class Receiver(Protocol):
    """What ``RtpSockets`` hands datagrams to (``RtpSession``): looked up per datagram, so a bench
    that wraps ``_on_rtp`` on the instance still sees every packet."""

    _rx_now: float
    engine: MediaEngine

    @property
    def stats(self) -> RtpStats: ...

    def _on_rtp(self, data: bytes, addr: Any) -> None: ...

    def _on_rtcp(self, data: bytes, addr: Any) -> None: ...


class RtpSockets:
    def __init__(self, receiver: Receiver, rtp: socket.socket, rtcp: socket.socket) -> None:
        self.receiver = receiver
        self.engine = receiver.engine
        self.rtp = rtp
        self.rtcp = rtcp
        self.arrival_reads = False
        self.send_errors = 0
        self._attached = False
        self._rtp_fd = rtp.fileno()
        self._rtcp_fd = rtcp.fileno()

    # ------------------------------------------------------------------ media thread
    def attach(self) -> None:
        for sock in (self.rtp, self.rtcp):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self._attached = True
        self._watch_rtp()
        if self.engine.polls:
            self.engine.watch(self._rtcp_fd, self._read_rtcp)
        else:  # pragma: no cover - not Linux
            self.engine.loop.add_reader(self._rtcp_fd, self._read_rtcp_now)

    def set_arrival_reads(self, on: bool) -> None:
        """Read the RTP socket at arrival (a loop reader) or at the tick (the engine's drain)."""
        if on == self.arrival_reads:
            return
        if self._attached:
            self._unwatch_rtp()
        self.arrival_reads = on
        if self._attached:
            self._watch_rtp()

    def _watch_rtp(self) -> None:
        if self.arrival_reads or not self.engine.polls:
            self.engine.loop.add_reader(self._rtp_fd, self._read_rtp_now)
        else:
            self.engine.watch(self._rtp_fd, self._read_rtp)

    def _unwatch_rtp(self) -> None:
        self.engine.unwatch(self._rtp_fd)
        self.engine.loop.remove_reader(self._rtp_fd)

    def close(self) -> None:
        if self._attached:
            self._unwatch_rtp()
            self.engine.unwatch(self._rtcp_fd)
            self.engine.loop.remove_reader(self._rtcp_fd)
            self._attached = False
        self.rtp.close()
        self.rtcp.close()

    def _read_rtp(self, offset: float) -> bool:
        """Read one RTP datagram (False: nothing was there)."""
        try:
            data, anc, _, addr = self.rtp.recvmsg(MAX_DATAGRAM, _ANC_SIZE)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError as exc:  # e.g. ICMP port unreachable reported on the socket
            log.debug("rtp: socket error %s", exc)
            return True
        r = self.receiver
        r._rx_now = kernel_arrival(anc, offset)
        try:
            # is_rtcp inlined (RFC 5761 demux): this runs once per packet on the media thread
            if len(data) >= 2 and 192 <= data[1] <= 223:
                r._on_rtcp(data, addr)
            else:
                r._on_rtp(data, addr)
        except Exception:  # a bad datagram must never take the session down
            r.stats.malformed_in += 1
            log.exception("rtp: dropped datagram from %s", addr)
        finally:
            r._rx_now = 0.0
        return True

    def _read_rtcp(self, offset: float) -> bool:
        try:
            data, anc, _, addr = self.rtcp.recvmsg(MAX_DATAGRAM, _ANC_SIZE)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError as exc:
            log.debug("rtcp: socket error %s", exc)
            return True
        r = self.receiver
        r._rx_now = kernel_arrival(anc, offset)
        try:
            r._on_rtcp(data, addr)
        except Exception:
            r.stats.malformed_in += 1
            log.exception("rtcp: dropped datagram from %s", addr)
        finally:
            r._rx_now = 0.0
        return True

    def _read_rtp_now(self) -> None:
        offset = time.time() - time.monotonic()
        for _ in range(_ARRIVAL_BATCH):
            if not self._read_rtp(offset):
                return

    def _read_rtcp_now(self) -> None:  # pragma: no cover - not Linux
        offset = time.time() - time.monotonic()
        while self._read_rtcp(offset):
            pass

    # ------------------------------------------------------------------ sending (media thread)
    def send_rtp(self, datagram: bytes, addr: Any) -> None:
        try:
            self.rtp.sendto(datagram, addr)
        except OSError:  # full socket buffer, unreachable network: this packet is lost
            self.send_errors += 1

    def send_rtcp(self, datagram: bytes, addr: Any) -> None:
        try:
            self.rtcp.sendto(datagram, addr)
        except OSError:
            self.send_errors += 1


def kernel_arrival(anc: list[tuple[int, int, bytes]], offset: float) -> float:
    """The datagram's kernel receive time as ``time.monotonic()``, or now if the kernel gave none."""
    if anc:
        level, kind, data = anc[0]
        if kind == SO_TIMESTAMPNS and level == socket.SOL_SOCKET and len(data) >= _TIMESPEC.size:
            sec, nsec = _TIMESPEC.unpack_from(data)
            return float(sec + nsec * 1e-9 - offset)
    return time.monotonic()
