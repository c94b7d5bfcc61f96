"""``CallLeg``: one call leg's SIP dialog and media session, and nothing else.

A leg knows no manager, record or flow: the manager decides what a leg's events mean. Every operation
that uses the media checks that the leg is up and raises ``CallHungUp`` once it has ended; waits are
plain awaits, cancelled by the manager stopping the call's flow when the call ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import tempfile
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Callable
from pathlib import Path
from typing import Any

from voipbin.flow.interfaces import CallHungUp
from voipbin.media.callmedia import CallMedia
from voipbin.media.taps import TapClosed
from voipbin.sip.endpoint import Call as SipCall
from voipbin.sip.endpoint import IncomingInvite, OutgoingInvite
from voipbin.sip.errors import SipError
from voipbin.sip.sdp import answer_offer, offer_address
from voipbin.speech.tts import TTS

TtsFactory = Callable[[str, str], TTS]  # (voice, language) -> a single-use TTS stream
IPV6_MEDIA_HOST = "::"


def local_address_towards(remote: str) -> str:
    """Our source address for packets to ``remote`` (a UDP ``connect`` sends nothing; no DNS)."""
    family = socket.AF_INET6 if ":" in remote else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        s.connect((remote, 9))
        return str(s.getsockname()[0])


def sdp_address(remote: str, public_host: str, public_host6: str | None) -> str:
    """Our SDP ``c=`` address for a peer at ``remote``: an IPv6 peer next to an IPv4 ``public_host``
    gets ``public_host6`` (``VOIPBIN_SIP_PUBLIC_HOST6``) when set, else our route's source towards it."""
    if ":" not in remote or ":" in public_host:
        return public_host
    return public_host6 or local_address_towards(remote)


class CallLeg:
    def __init__(
        self,
        call_id: uuid.UUID,
        customer_id: uuid.UUID,
        media: CallMedia,
        *,
        incoming: IncomingInvite | None,
    ) -> None:
        self.call_id = call_id
        self.customer_id = customer_id
        self.media = media
        self.incoming = incoming
        self.sip: SipCall | None = None
        self.pending: OutgoingInvite | None = None  # while dialing
        self.ended = asyncio.Event()
        self.answered = asyncio.Event()
        self.hangup_reason = ""
        self.local_hangup_requested = False
        self.activeflow_id: uuid.UUID | None = None
        self.bridged_with: CallLeg | None = None
        self.recording_id: uuid.UUID | None = None
        self.watchers: list[asyncio.Task[Any]] = []  # waits that end with the call (or its answer)
        self.duration_timer: asyncio.TimerHandle | None = None
        self._digits: asyncio.Queue[str] = asyncio.Queue()
        media.on_dtmf(lambda d: self._digits.put_nowait(d.digit if hasattr(d, "digit") else str(d)))

    def stop_watchers(self) -> None:
        for task in self.watchers:
            if task is not asyncio.current_task():
                task.cancel()
        self.watchers.clear()

    @property
    def is_up(self) -> bool:
        return self.sip is not None and not self.ended.is_set()

    def require_up(self) -> None:
        if self.ended.is_set():
            raise CallHungUp(str(self.call_id))
        if self.sip is None:
            raise CallHungUp(f"{self.call_id} is not answered")

    # -- SIP ---------------------------------------------------------------------------------------
    async def match_offer_family(self) -> None:
        """Before answering: an IPv6 offer needs IPv6 RTP sockets (our IPv4 ones cannot reach it)."""
        if self.incoming is None or not self.incoming.offer.strip():
            return
        with contextlib.suppress(SipError):  # unreadable offers are refused before this point
            addr = offer_address(self.incoming.offer)
            if addr and ":" in addr and self.media.family_version == 4:
                await self.media.rebind(IPV6_MEDIA_HOST)

    def answer_incoming(self, public_host: str, public_host6: str | None = None) -> None:
        """Answer the incoming INVITE with our SDP answer and start the media."""
        assert self.incoming is not None
        offered = offer_address(self.incoming.offer) if self.incoming.offer.strip() else None
        public_host = sdp_address(offered or "", public_host, public_host6)  # an IPv6 offer: IPv6 c=
        body, negotiated = answer_offer(self.incoming.offer, public_host, self.media.local_port)
        self.sip = self.incoming.answer(body)
        self.answered.set()
        self.media.negotiate(
            negotiated.remote_addr,
            negotiated.remote_port,
            negotiated.payload_type,
            negotiated.dtmf_payload_type,
            negotiated.ptime,
            latch=True,
        )
        self.media.start()

    def answered_outgoing(self, sip_call: SipCall) -> bool:
        """The far end answered our INVITE; False when its SDP answer was unusable."""
        self.sip = sip_call
        self.answered.set()
        m = sip_call.media
        if m is None:
            return False
        try:
            self.media.negotiate(m.remote_addr, m.remote_port, m.payload_type, m.dtmf_payload_type, m.ptime)
        except ValueError:  # e.g. an IPv6 answer to our IPv4 offer: unusable
            return False
        self.media.start()
        return True

    def watch_info(self) -> None:
        """DTMF sent as SIP INFO (``Signal=5``) joins the RTP digits."""
        if self.sip is None:
            return

        def on_info(req: Any) -> None:
            body = (req.body or b"").decode(errors="replace")
            for line in body.splitlines():
                key, _, value = line.partition("=")
                if key.strip().lower() == "signal" and value.strip():
                    self._digits.put_nowait(value.strip()[:1])

        self.sip.on_info = on_info

    # -- media -------------------------------------------------------------------------------------
    async def play_wav(self, source: str | Path | bytes) -> None:
        self.require_up()
        if isinstance(source, bytes):
            with tempfile.NamedTemporaryFile(suffix=".wav", delete=False) as fh:
                fh.write(source)
                path = Path(fh.name)
            try:
                await self.media.play_wav(path)
            finally:
                await asyncio.to_thread(path.unlink, missing_ok=True)
        else:
            await self.media.play_wav(source)

    async def play_tts(self, tts: TTS, text: str) -> None:
        self.require_up()
        try:
            await tts.feed(text)
            await tts.end()
            await self.media.play_pcm(tts, rate=tts.sample_rate)
        finally:
            tts.cancel()

    async def send_dtmf(self, digits: str, duration_ms: int = 100, interval_ms: int = 0) -> None:
        self.require_up()
        for i, d in enumerate(digits):
            await self.media.send_dtmf(d, duration_ms)
            if interval_ms and i < len(digits) - 1:
                await asyncio.sleep(interval_ms / 1000)

    async def receive_digits(self, max_len: int, terminator: str, duration: float) -> str:
        """Digits until ``max_len``, a terminator, or ``duration`` seconds in all (buffered digits first)."""
        self.require_up()
        got = ""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + duration
        while max_len <= 0 or len(got) < max_len:
            left = deadline - loop.time()
            if left <= 0:
                break
            try:
                digit = await asyncio.wait_for(self._digits.get(), left)
            except TimeoutError:
                break
            if terminator and digit in terminator:
                break
            got += digit
        return got

    async def audio_in(self) -> AsyncIterator[bytes]:
        """Inbound 20 ms frames from a media tap; the tap closes with the media, which ends this."""
        self.require_up()
        tap = self.media.tap("in", maxsize=100)
        try:
            while True:
                try:
                    # Each frame as it comes (not two at a time): the AI's voice onset and turn
                    # end are decided on it, and a 20 ms wait is a fifth of the barge-in budget.
                    frames = await tap.get_batch(1)
                except TapClosed:
                    break
                for frame in frames:
                    yield frame.pcm
        finally:
            self.media.untap(tap)
        raise CallHungUp(str(self.call_id))

    async def play_stream(self, chunks: AsyncIterable[bytes], rate: int = 8000) -> bool:
        self.require_up()
        return await self.media.play_pcm(chunks, rate=rate)

    def flush_playout(self) -> int:
        return self.media.flush()

    def push_digit(self, digit: str) -> None:
        self._digits.put_nowait(digit)

    # -- end ---------------------------------------------------------------------------------------
    async def release(self) -> dict[str, Any]:
        """Close the media; returns its RTP statistics for the call's metadata."""
        if self.duration_timer is not None:
            self.duration_timer.cancel()
        with contextlib.suppress(Exception):
            await self.media.close()
        st = self.media.stats
        # max_gap_ms: inbound (arrival) gaps, as before; max_gap_out_ms: between the packets we sent.
        return {
            "packets_in": st.packets_in, "packets_out": st.packets_out, "lost": st.lost,
            "jitter_ms": round(st.jitter_ms, 2), "max_gap_ms": round(st.max_gap_ms, 2),
            "late_ticks": st.late_ticks, "skipped_ticks": st.skipped_ticks,
            "max_gap_out_ms": round(st.max_gap_out_ms, 2), "concealed_frames": st.concealed_frames,
            "late_or_duplicate": st.late_or_duplicate,
            "remote_fraction_lost": round(st.remote_fraction_lost, 4),
            "remote_jitter_ms": round(st.remote_jitter_ms, 2),
        }  # fmt: skip
