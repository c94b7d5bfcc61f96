"""``MediaSession``: the one object the calls layer uses for a call's media.

API (all from the event loop)::

    ms = await MediaSession.create(allocator=alloc, host="0.0.0.0")  # binds RTP+RTCP; ms.local_port for SDP
    ms.negotiate("203.0.113.5", 40000, payload_type=0, dtmf_payload_type=101, ptime=20, latch=False)
    ms.start()                                  # the 20 ms clock: silence flows until audio is queued
    ok = await ms.play_wav("prompt.wav")        # any rate/width/channels; False if barged in
    ok = await ms.play_pcm(src, rate=24000)     # bytes / int16 array / (async) iterable of chunks
    ok = await ms.enqueue(pcm_8k)               # stream TTS audio; waits while the queue is full
    await ms.wait_played()                      # until the queue has drained
    dropped = ms.flush()                        # barge-in: queued audio gone before the next tick
    await ms.record_start("/x.wav", direction="both", stereo=False)   # "in" | "out" | "both"
    info = await ms.record_stop()               # RecordingInfo(path, direction, channels, frames, ...)
    tap = ms.tap("in")                          # Frame(direction, tick, pcm) for STT/AI: await tap.get()
    chunk = await tap.get_batch(5)              # ... or woken once per 100 ms; ms.untap(tap)
    digit = await ms.next_dtmf()                # DtmfDigit(digit, duration_ms, timestamp); or on_dtmf(cb)
    await ms.send_dtmf("123#")                  # RFC 4733, in the same clock as the audio
    br = ms.bridge(other)                       # A in -> B out and back, PCMU<->PCMA; ms.unbridge()
    ms.stats                                    # RtpStats: packets/bytes, lost, jitter, max gap, RTCP
    await ms.close()                            # stops recording, unbridges, RTCP BYE, frees ports

PCM is 8 kHz mono int16 (little-endian bytes) everywhere; frames are 20 ms (160 samples).
Negotiation results come in as plain values; this package knows nothing of SIP or SDP.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from voipbin.media.bridge import Bridge
from voipbin.media.callmedia import CallMedia, MediaFactory
from voipbin.media.dtmf import DtmfDigit
from voipbin.media.engine import MediaEngine
from voipbin.media.jitter import JitterBuffer
from voipbin.media.ports import PortAllocator
from voipbin.media.recorder import RecordDirection, Recorder, RecordingInfo
from voipbin.media.session import PcmSource, RtpSession
from voipbin.media.stats import RtpStats
from voipbin.media.taps import Tap
from voipbin.media.wav import MEDIA_RATE


class MediaSession:
    def __init__(self, rtp: RtpSession) -> None:
        self.rtp = rtp
        self._recorder: Recorder | None = None
        self._bridge: Bridge | None = None

    @classmethod
    async def create(
        cls,
        allocator: PortAllocator | None = None,
        host: str = "0.0.0.0",
        port: int | None = None,
        playout_frames: int = 50,
        jitter: JitterBuffer[tuple[int, bytes]] | None = None,
        engine: MediaEngine | None = None,
    ) -> MediaSession:
        rtp = RtpSession(
            allocator=allocator, host=host, playout_frames=playout_frames, jitter=jitter, engine=engine
        )
        await rtp.open(port)
        return cls(rtp)

    @staticmethod
    def factory(allocator: PortAllocator) -> MediaFactory:
        """``host -> session`` with ports from ``allocator`` (the calls layer's MediaFactory; every
        session of this process can bridge with every other, so ``near`` changes nothing)."""

        async def create(host: str, *, near: CallMedia | None = None) -> MediaSession:
            return await MediaSession.create(allocator=allocator, host=host)

        return create

    @property
    def local_port(self) -> int:
        return self.rtp.local_port

    @property
    def stats(self) -> RtpStats:
        return self.rtp.stats

    @property
    def family_version(self) -> int:
        return self.rtp.family_version

    def negotiate(
        self,
        remote_addr: str,
        remote_port: int,
        payload_type: int = 0,
        dtmf_payload_type: int | None = None,
        ptime: int = 20,
        *,
        latch: bool = False,
        rtcp_port: int | None = None,
    ) -> None:
        self.rtp.set_remote(
            remote_addr, remote_port, payload_type, dtmf_payload_type, ptime, latch=latch, rtcp_port=rtcp_port
        )

    def start(self) -> None:
        self.rtp.start()

    async def rebind(self, host: str) -> None:
        """Before ``start``: move to new sockets bound to ``host`` (e.g. ``::`` for an IPv6 offer),
        keeping the DTMF subscribers. The old ports are released."""
        old = self.rtp
        if old.running:
            raise RuntimeError("rebind before start()")
        new = RtpSession(
            allocator=old.allocator, host=host, playout_frames=old.playout_frames, jitter=old.jitter,
            engine=old.engine,
        )  # fmt: skip
        await new.open()
        for cb in old.dtmf_callbacks:
            new.on_dtmf(cb)
        self.rtp = new
        await old.close()

    # playout
    async def play_wav(self, path: str | Path, *, wait: bool = True) -> bool:
        return await self.rtp.play(Path(path), wait=wait)

    async def play_pcm(self, source: PcmSource, rate: int = MEDIA_RATE, *, wait: bool = True) -> bool:
        return await self.rtp.play(source, rate, wait=wait)

    async def enqueue(self, pcm: bytes | np.ndarray, *, final: bool = False) -> bool:
        return await self.rtp.enqueue(pcm, final=final)

    def flush(self) -> int:
        return self.rtp.flush()

    @property
    def queued_frames(self) -> int:
        return self.rtp.queued_frames

    async def wait_played(self) -> None:
        await self.rtp.wait_played()

    # recording
    async def record_start(
        self, path: str | Path, direction: RecordDirection = "both", stereo: bool = False, maxsize: int = 250
    ) -> None:
        if self._recorder is not None:
            raise RuntimeError("already recording")
        tap = self.rtp.add_tap(direction, maxsize=maxsize)
        self._recorder = Recorder(path, tap, direction, stereo)
        self._recorder.start()

    async def record_stop(self) -> RecordingInfo | None:
        rec, self._recorder = self._recorder, None
        if rec is None:
            return None
        self.rtp.remove_tap(rec.tap)
        return await rec.stop()

    @property
    def recording(self) -> bool:
        return self._recorder is not None

    # taps
    def tap(self, direction: str = "in", maxsize: int = 50) -> Tap:
        return self.rtp.add_tap(direction, maxsize)

    def untap(self, tap: Tap) -> None:
        self.rtp.remove_tap(tap)

    def on_lost(self, callback: Callable[[], None]) -> None:
        """Media in this process cannot be lost apart from it: ``callback`` never runs."""

    # dtmf
    def on_dtmf(self, callback: Callable[[DtmfDigit], None]) -> None:
        self.rtp.on_dtmf(callback)

    async def next_dtmf(self) -> DtmfDigit:
        """Next received digit (wrap in ``asyncio.timeout`` to bound the wait)."""
        return await self.rtp.dtmf_queue.get()

    async def send_dtmf(self, digits: str, duration_ms: int = 100) -> None:
        await self.rtp.send_dtmf(digits, duration_ms)

    # bridging
    def bridge(self, other: CallMedia, max_queue: int = 3) -> Bridge:
        if not isinstance(other, MediaSession):
            raise TypeError("can only bridge two sessions of this process")
        if self._bridge is not None and self._bridge.active:
            raise RuntimeError("already bridged")
        b = Bridge(self.rtp, other.rtp, max_queue).start()
        self._bridge = other._bridge = b
        return b

    def unbridge(self) -> None:
        if self._bridge is not None:
            self._bridge.stop()
            self._bridge = None

    async def close(self) -> RecordingInfo | None:
        self.unbridge()
        info = await self.record_stop()
        await self.rtp.close()
        return info
