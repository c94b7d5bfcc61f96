"""``LiveCall``: one call leg in progress — its SIP dialog, its media session, and the ``CallControl``
the flow engine drives.

Every awaiting method races the hangup: when the call ends, waits stop at once with ``CallHungUp``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Awaitable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from voipbin.calls.service import finish_call, set_status
from voipbin.calls.state import Status
from voipbin.flow.interfaces import CallHungUp, RecordingRequest
from voipbin.media.mediasession import MediaSession
from voipbin.media.taps import TapClosed
from voipbin.platform import Platform
from voipbin.sip.endpoint import Call as SipCall
from voipbin.sip.endpoint import IncomingInvite
from voipbin.sip.sdp import answer_offer
from voipbin.store.tables import Call, Recording
from voipbin.store.types import utcnow

if TYPE_CHECKING:
    from voipbin.calls.telephony import SipCallManager

log = logging.getLogger(__name__)
T = TypeVar("T")


class LiveCall:
    def __init__(
        self,
        manager: SipCallManager,
        call_id: uuid.UUID,
        customer_id: uuid.UUID,
        media: MediaSession,
        *,
        incoming: IncomingInvite | None = None,
    ) -> None:
        self.manager = manager
        self.platform: Platform = manager.platform
        self._call_id = call_id
        self._customer_id = customer_id
        self.media = media
        self.incoming = incoming
        self.sip: SipCall | None = None
        self.pending: Any = None  # OutgoingInvite while dialing
        self.ended = asyncio.Event()
        self.hangup_reason = ""
        self.local_hangup_requested = False
        self._digits: asyncio.Queue[str] = asyncio.Queue()
        self._recording: uuid.UUID | None = None
        self._recording_task: asyncio.Task[None] | None = None
        self.activeflow_id: uuid.UUID | None = None
        self.bridged_with: LiveCall | None = None
        media.on_dtmf(lambda d: self._digits.put_nowait(d.digit if hasattr(d, "digit") else str(d)))

    # -- CallControl -------------------------------------------------------------------------------
    @property
    def call_id(self) -> uuid.UUID:
        return self._call_id

    @property
    def customer_id(self) -> uuid.UUID:
        return self._customer_id

    @property
    def is_up(self) -> bool:
        return self.sip is not None and not self.ended.is_set()

    @property
    def is_hungup(self) -> bool:
        return self.ended.is_set()

    async def _race(self, aw: Awaitable[T]) -> T:
        """Await ``aw`` unless the call ends first (then CallHungUp)."""
        if self.ended.is_set():
            if asyncio.iscoroutine(aw):
                aw.close()
            raise CallHungUp(str(self.call_id))
        task = asyncio.ensure_future(aw)
        ended = asyncio.ensure_future(self.ended.wait())
        try:
            done, _ = await asyncio.wait({task, ended}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            task.cancel()
            ended.cancel()
            raise
        if task in done:
            ended.cancel()
            return task.result()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        raise CallHungUp(str(self.call_id))

    async def answer(self) -> None:
        if self.sip is not None or self.incoming is None:
            return  # outgoing calls are answered by the callee; answering twice is a no-op
        if self.ended.is_set():
            raise CallHungUp(str(self.call_id))
        host = self.manager.public_host
        body, negotiated = answer_offer(self.incoming.offer, host, self.media.local_port)
        self.sip = self.incoming.answer(body)
        self.media.negotiate(
            negotiated.remote_addr,
            negotiated.remote_port,
            negotiated.payload_type,
            negotiated.dtmf_payload_type,
            negotiated.ptime,
            latch=True,
        )
        self.media.start()
        self.manager.watch_dialog(self)
        await set_status(self.platform, self.call_id, Status.PROGRESSING)
        self.manager.limit_duration(self)

    async def play_wav(self, source: str | Path | bytes) -> None:
        await self._require_up()
        if isinstance(source, bytes):
            with tempfile.NamedTemporaryFile(suffix=".wav", delete=False) as fh:
                fh.write(source)
                path = Path(fh.name)
            try:
                await self._race(self.media.play_wav(path))
            finally:
                await asyncio.to_thread(path.unlink, missing_ok=True)
        else:
            await self._race(self.media.play_wav(source))

    async def play_tts(self, text: str, language: str, voice: str) -> None:
        await self._require_up()
        from voipbin.speech.registry import create_tts

        tts = create_tts(
            self.platform.settings.default_tts_type, voice_id=voice or None, language=language or None
        )

        async def speak() -> None:
            await tts.feed(text)
            await tts.end()
            await self.media.play_pcm(tts, rate=tts.sample_rate)

        try:
            await self._race(speak())
        finally:
            tts.cancel()

    async def send_dtmf(self, digits: str, duration_ms: int = 100, interval_ms: int = 0) -> None:
        await self._require_up()
        for i, d in enumerate(digits):
            await self._race(self.media.send_dtmf(d, duration_ms))
            if interval_ms and i < len(digits) - 1:
                await self._race(asyncio.sleep(interval_ms / 1000))

    async def receive_digits(self, max_len: int, terminator: str, duration: float) -> str:
        """Digits until ``max_len``, a terminator, or ``duration`` seconds in all (buffered digits first)."""
        await self._require_up()
        got = ""
        deadline = asyncio.get_running_loop().time() + duration
        while max_len <= 0 or len(got) < max_len:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                break
            try:
                digit = await self._race(asyncio.wait_for(self._digits.get(), left))
            except TimeoutError:
                break
            if terminator and digit in terminator:
                break
            got += digit
        return got

    # -- CallAudio (ai / ai_talk) -------------------------------------------------------------------
    async def audio_in(self) -> AsyncIterator[bytes]:
        """Inbound 20 ms frames from a media tap; the tap closes with the media, which ends this."""
        await self._require_up()
        tap = self.media.tap("in", maxsize=100)
        try:
            while True:
                try:
                    frames = await tap.get_batch(2)  # woken every 40 ms, not every frame
                except TapClosed:
                    break
                for frame in frames:
                    yield frame.pcm
        finally:
            self.media.untap(tap)
        raise CallHungUp(str(self.call_id))

    async def play_stream(self, chunks: AsyncIterable[bytes], rate: int = 8000) -> bool:
        await self._require_up()
        return await self._race(self.media.play_pcm(chunks, rate=rate))

    def flush_playout(self) -> int:
        return self.media.flush()

    @property
    def recording_active(self) -> bool:
        return self._recording is not None

    def push_digit(self, digit: str) -> None:
        """DTMF that arrived by SIP INFO rather than RTP."""
        self._digits.put_nowait(digit)

    async def recording_start(self, request: RecordingRequest) -> uuid.UUID:
        await self._require_up()
        if self._recording is not None:
            await self.recording_stop()
        rec = Recording(
            customer_id=self.customer_id,
            reference_type="call",
            reference_id=self.call_id,
            status="recording",
            format="wav",
            direction="both",
            activeflow_id=request.activeflow_id or uuid.UUID(int=0),
            on_end_flow_id=request.on_end_flow_id or uuid.UUID(int=0),
            tm_start=utcnow(),
        )
        directory = self.platform.settings.data_dir / "recordings"
        directory.mkdir(parents=True, exist_ok=True)
        async with self.platform.db.session() as session:
            session.add(rec)
            await session.flush()
            rec.filename = str((directory / f"{rec.id}.wav").resolve())
            row = await session.get(Call, self.call_id)
            if row is not None:
                row.recording_id = rec.id
                row.recording_ids = [*(row.recording_ids or []), str(rec.id)]
                row.tm_update = utcnow()
            await session.commit()
        await self.media.record_start(rec.filename, direction="both")
        self._recording = rec.id
        self.platform.events.publish(self.customer_id, "recording_started", {"id": str(rec.id)})
        if request.duration:
            self._recording_task = asyncio.create_task(self._stop_recording_after(request.duration))
        return rec.id

    async def _stop_recording_after(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        await self.recording_stop()

    async def recording_stop(self) -> None:
        rec_id, self._recording = self._recording, None
        if rec_id is None:
            return
        if self._recording_task is not None and self._recording_task is not asyncio.current_task():
            self._recording_task.cancel()
        self._recording_task = None
        await self.media.record_stop()
        await self.manager.finish_recording(rec_id)

    async def connect(
        self, source: dict[str, Any], destinations: list[dict[str, Any]], anonymous: str = ""
    ) -> tuple[bool, str]:
        """Dial ``destinations`` (first answer wins) and bridge; returns when that leg has ended."""
        await self._require_up()
        return await self._race(self.manager.connect_legs(self, source, destinations, anonymous))

    async def hangup(self, reason: str = "normal") -> None:
        await self.manager.hangup_live(self, reason)

    async def wait_hangup(self) -> None:
        await self.ended.wait()

    async def _require_up(self) -> None:
        if self.ended.is_set():
            raise CallHungUp(str(self.call_id))
        if self.sip is None:
            raise CallHungUp(f"{self.call_id} is not answered")

    # -- lifecycle (driven by the manager) ---------------------------------------------------------
    async def finish(self, reason: str, by: str | None = None, detail: str = "") -> None:
        """Release media and mark the row hung up; idempotent."""
        if self.ended.is_set():
            return
        self.hangup_reason = reason
        self.ended.set()
        with contextlib.suppress(Exception):
            await self.recording_stop()
        with contextlib.suppress(Exception):
            await self.media.close()
        st = self.media.stats
        rtp = {
            "packets_in": st.packets_in, "packets_out": st.packets_out, "lost": st.lost,
            "jitter_ms": round(st.jitter_ms, 2), "max_gap_ms": round(st.max_gap_ms, 2),
            "late_ticks": st.late_ticks, "skipped_ticks": st.skipped_ticks,
        }  # fmt: skip
        await finish_call(self.platform, self.call_id, reason=reason, by=by, detail=detail, rtp=rtp)
