"""Test helpers: a stand-in for the platform's development carrier, built from our own SIP and media pieces.

``DevCarrier`` is a real SIP endpoint on loopback with a ``Registrar(require_auth=False)`` that keeps
the phone's bindings, can INVITE a registered phone with an SDP offer (a ``MediaSession`` that plays a
known WAV and records what comes back), and answers INVITEs the phone places.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

import numpy as np

from voipbin.media import MediaSession
from voipbin.media.g711 import G711Codec
from voipbin.sip import (
    Binding,
    Call,
    IncomingInvite,
    IncomingRequest,
    InviteResult,
    OutgoingInvite,
    Registrar,
    SipEndpoint,
    SipRequest,
    SipResponse,
    answer_offer,
    build_sdp,
)

DOMAIN = "voipbin.local"
PHONE_NUMBER = "+15559876543"
PLATFORM_NUMBER = "+15551234567"
CARRIER_CALLER = "+15550001111"


def tone(freq: float = 440.0, seconds: float = 1.0, amp: int = 8000, rate: int = 8000) -> np.ndarray:
    """A sine with 50 ms raised-cosine edges (edges make its cross-correlation peak unique)."""
    n = int(seconds * rate)
    t = np.arange(n) / rate
    env = np.ones(n)
    ramp = int(0.05 * rate)
    env[:ramp] = 0.5 - 0.5 * np.cos(np.pi * np.arange(ramp) / ramp)
    env[-ramp:] = env[:ramp][::-1]
    return (amp * env * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def g711_roundtrip(x: np.ndarray, payload_type: int = 0) -> np.ndarray:
    codec = G711Codec(payload_type)
    return np.frombuffer(codec.decode(codec.encode(x.astype("<i2").tobytes())), dtype="<i2")


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x.astype(np.float64) ** 2))) if len(x) else 0.0


def voiced_seconds(x: np.ndarray, threshold: float = 300.0, rate: int = 8000) -> float:
    """Seconds between the first and last 20 ms frame whose RMS exceeds ``threshold``."""
    frames = [rms(x[i : i + 160]) for i in range(0, len(x) - 159, 160)]
    loud = [i for i, r in enumerate(frames) if r > threshold]
    return 0.0 if not loud else (loud[-1] - loud[0] + 1) * 160 / rate


def align(recording: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """The stretch of ``recording`` that best matches ``ref`` (FFT cross-correlation)."""
    rec = recording.astype(np.float64)
    r = ref.astype(np.float64)
    assert len(rec) >= len(r), f"recording ({len(rec)} samples) shorter than the reference ({len(r)})"
    n = 1 << int(np.ceil(np.log2(len(rec) + len(r))))
    corr = np.fft.irfft(np.fft.rfft(rec, n) * np.conj(np.fft.rfft(r, n)), n)[: len(rec) - len(r) + 1]
    k = int(np.argmax(corr))
    return recording[k : k + len(ref)]


class CarrierLeg:
    """One call between the carrier and the phone, seen from the carrier."""

    def __init__(self, ms: MediaSession, record: Path | None, play: Path | None) -> None:
        self.ms = ms
        self.record = record
        self.play = play
        self.pending: OutgoingInvite | None = None
        self.result: InviteResult | None = None
        self.call: Call | None = None
        self.provisional: list[tuple[int, float]] = []
        self.started = time.monotonic()
        self.answered_at: float | None = None
        self.play_task: asyncio.Task[bool] | None = None

    async def start_media(self, addr: str, port: int, pt: int, dtmf_pt: int | None) -> None:
        self.ms.negotiate(addr, port, pt, dtmf_pt)
        self.ms.start()
        if self.record is not None:
            await self.ms.record_start(self.record, direction="in")
        if self.play is not None:
            self.play_task = asyncio.ensure_future(self.ms.play_wav(self.play))

    async def established(self) -> InviteResult:
        """Wait for the phone's final answer; on 200 start media."""
        assert self.pending is not None
        self.result = await self.pending
        if self.result.ok:
            self.answered_at = time.monotonic()
            self.call = self.result.call
            media = self.call.media
            assert media is not None
            await self.start_media(
                media.remote_addr, media.remote_port, media.payload_type, media.dtmf_payload_type
            )
        return self.result

    async def close(self) -> None:
        await self.ms.record_stop()
        await self.ms.close()


class DevCarrier:
    def __init__(self, domain: str = DOMAIN) -> None:
        self.domain = domain
        self.registrar = Registrar(domain, self._lookup, require_auth=False, min_expires=1)
        self.registers: list[tuple[SipRequest, int]] = []  # request, status answered
        self.refuse_register: int | None = None
        self.register_seen = asyncio.Event()
        self.invites: asyncio.Queue[IncomingInvite] = asyncio.Queue()
        self.ep = SipEndpoint("127.0.0.1", 0, user_agent="devcarrier-standin", on_request=self._on_request)
        self.legs: list[CarrierLeg] = []

    @staticmethod
    async def _lookup(_user: str, _realm: str) -> str | None:
        return None

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.ep.port)

    async def start(self) -> None:
        await self.ep.start()

    async def stop(self) -> None:
        for leg in self.legs:
            with contextlib.suppress(Exception):
                await leg.close()
        await self.ep.stop()

    async def _on_request(self, ctx: IncomingRequest) -> None:
        if ctx.request.method == "REGISTER":
            if self.refuse_register is not None:
                ctx.respond(self.refuse_register)
                self.registers.append((ctx.request, self.refuse_register))
                return
            outcome = await self.registrar.handle(ctx)
            self.registers.append((ctx.request, outcome.status))
            self.register_seen.set()
        elif isinstance(ctx, IncomingInvite):
            self.invites.put_nowait(ctx)
        else:
            ctx.respond(405)

    def bindings(self, number: str = PHONE_NUMBER) -> list[Binding]:
        return self.registrar.bindings.lookup(f"sip:{number}@{self.domain}")

    async def wait_registered(self, number: str = PHONE_NUMBER, within: float = 5.0) -> Binding:
        async with asyncio.timeout(within):
            while not self.bindings(number):
                self.register_seen.clear()
                await self.register_seen.wait()
        return self.bindings(number)[0]

    async def call(
        self,
        number: str = PHONE_NUMBER,
        *,
        play: Path | None = None,
        record: Path | None = None,
        ring_timeout: float = 15.0,
    ) -> CarrierLeg:
        """INVITE the phone registered as ``number`` (like a `tel` call through the dev carrier)."""
        bindings = self.bindings(number)
        assert bindings, f"{number} is not registered"
        ms = await MediaSession.create(host="127.0.0.1")
        leg = CarrierLeg(ms, record, play)
        self.legs.append(leg)

        def provisional(resp: SipResponse) -> None:
            if resp.status > 100:  # 100 Trying is hop-by-hop, not the phone's doing
                leg.provisional.append((resp.status, time.monotonic()))

        leg.pending = self.ep.invite(
            bindings[0].contact,
            f"<sip:{CARRIER_CALLER}@{self.domain}>",
            f"<sip:{number}@{self.domain}>",
            build_sdp("127.0.0.1", ms.local_port),
            on_provisional=provisional,
            timeout=ring_timeout,
        )
        return leg

    async def answer(
        self, ctx: IncomingInvite, *, play: Path | None = None, record: Path | None = None
    ) -> CarrierLeg:
        """Answer an INVITE the phone placed."""
        ms = await MediaSession.create(host="127.0.0.1")
        leg = CarrierLeg(ms, record, play)
        self.legs.append(leg)
        sdp, neg = answer_offer(ctx.offer, "127.0.0.1", ms.local_port)
        leg.call = ctx.answer(sdp)
        leg.answered_at = time.monotonic()
        await leg.start_media(neg.remote_addr, neg.remote_port, neg.payload_type, neg.dtmf_payload_type)
        return leg
