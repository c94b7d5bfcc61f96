"""Live transcribes of calls: rows, events and lifetimes around :class:`LiveTranscriber`.

One :class:`TranscribeService` per node (built by the composition root) owns every transcribe
running in this process and the ``transcribes``/``transcripts`` tables. A transcribe ends when it is
stopped (``transcribe_stop``, the API), when its call hangs up, or when the call's media closes; in
every case the last utterance is transcribed before the row turns ``done`` and ``transcribe_done`` is
published. Then its ``on_end_flow_id`` runs
as a new activeflow (reference_type ``transcribe``) with a copy of the starting activeflow's variables.

Events (VoIPBIN names): ``transcribe_created``, ``transcribe_progressing``, ``transcript_created``,
``transcribe_speech_started|interim|ended`` and ``transcribe_done``.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from voipbin.serialize import ts, uid
from voipbin.speech.errors import SpeechConfigError, SpeechError
from voipbin.speech.registry import create_stt, validate_stt_type
from voipbin.speech.stt import SttEvent, SttEventType
from voipbin.store.owner import finish_left_rows
from voipbin.store.tables import ZERO_UUID, Transcribe, Transcript
from voipbin.store.types import utcnow
from voipbin.transcribe.live import LiveTranscriber, TapSource
from voipbin.transcribe.serialize import transcribe_to_api, transcript_to_api

if TYPE_CHECKING:
    from voipbin.events.bus import EventBus
    from voipbin.flow.engine import FlowEngine
    from voipbin.store.db import Database
    from voipbin.store.owner import NodeOwner

log = logging.getLogger(__name__)

DIRECTIONS = {"in": ["in"], "out": ["out"], "both": ["in", "out"]}
FINISH_TIMEOUT = 120.0  # seconds the last utterances may take to transcribe after a stop
_LANG_RE = re.compile(r"^([A-Za-z]{2,3})(?:[-_]([A-Za-z0-9]{1,8}))*$")


class TranscribeError(Exception):
    """A transcribe cannot be started (bad language for the STT engine, no media...)."""


def normalize_language(value: str | None) -> str:
    """BCP47-ish normalisation as VoIPBIN does (``en_us`` -> ``en-US``); unparseable -> ``en-US``."""
    text = (value or "").strip()
    if not text or not _LANG_RE.match(text):
        return "en-US"
    parts = re.split(r"[-_]", text)
    out = [parts[0].lower()]
    for p in parts[1:]:
        out.append(p.upper() if len(p) == 2 else p.title() if len(p) == 4 else p)
    return "-".join(out)


def normalize_direction(value: str | None) -> str:
    return value if value in DIRECTIONS else "both"


@dataclass
class Running:
    """A transcribe running in this process."""

    id: uuid.UUID
    customer_id: uuid.UUID
    call_id: uuid.UUID
    language: str
    direction: str
    transcriber: LiveTranscriber
    activeflow_id: uuid.UUID = ZERO_UUID
    on_end_flow_id: uuid.UUID = ZERO_UUID
    listeners: list[Callable[[Transcript], Any]] = field(default_factory=list)
    stop_requested: asyncio.Event = field(default_factory=asyncio.Event)
    finished: asyncio.Event = field(default_factory=asyncio.Event)
    supervisor: asyncio.Task[None] | None = None


class TranscribeService:
    """Owner of the ``transcribes`` and ``transcripts`` tables and of the live transcribers."""

    def __init__(
        self, db: Database, events: EventBus, flows: FlowEngine, owner: NodeOwner, *, stt_type: str
    ) -> None:
        self.db = db
        self.events = events
        self.flows = flows
        self.owner = owner
        self.stt_type = stt_type
        self.running: dict[uuid.UUID, Running] = {}

    # -- queries -------------------------------------------------------------------------------
    def for_call(
        self, customer_id: uuid.UUID, call_id: uuid.UUID, language: str | None = None
    ) -> Running | None:
        """A transcribe of this call that is still running (in ``language`` if given)."""
        for r in self.running.values():
            mine = r.customer_id == customer_id and r.call_id == call_id
            if mine and not r.stop_requested.is_set() and (language is None or r.language == language):
                return r
        return None

    # -- lifecycle -----------------------------------------------------------------------------
    async def start_call(
        self,
        customer_id: uuid.UUID,
        call_id: uuid.UUID,
        media: TapSource,
        *,
        language: str = "en-US",
        direction: str = "both",
        hangup: Callable[[], Awaitable[Any]] | None = None,
        activeflow_id: uuid.UUID | None = None,
        on_end_flow_id: uuid.UUID | None = None,
        provider: str = "",
    ) -> Transcribe:
        """Create the row and start transcribing ``media``; returns at once (status progressing)."""
        language = normalize_language(language)
        direction = normalize_direction(direction)
        stt_type = self.stt_type
        try:
            validate_stt_type(stt_type, language=language)
            create_stt(stt_type, language=language, sample_rate=8000)  # raises if a key is missing; unused
        except (SpeechConfigError, SpeechError) as exc:
            raise TranscribeError(str(exc)) from None
        row = Transcribe(
            customer_id=customer_id,
            activeflow_id=activeflow_id or ZERO_UUID,
            on_end_flow_id=on_end_flow_id or ZERO_UUID,
            reference_type="call",
            reference_id=call_id,
            status="progressing",
            language=language,
            direction=direction,
            provider=provider,
            **self.owner.stamp(),
        )
        async with self.db.session() as session:
            session.add(row)
            await session.flush()  # defaults filled in: the events show the row as stored
            data = transcribe_to_api(row)
            # Their outbox rows commit with the row.
            self.events.publish(customer_id, "transcribe_created", data, session=session)
            self.events.publish(customer_id, "transcribe_progressing", data, session=session)
            await session.commit()

        tid = row.id

        async def on_final(direction: str, offset: float, text: str) -> None:
            await self._store_transcript(tid, customer_id, direction, offset, text)

        def on_speech(direction: str, ev: SttEvent, offset: float) -> None:
            self._speech_event(tid, customer_id, direction, ev)

        transcriber = LiveTranscriber(
            media,
            DIRECTIONS[direction],
            lambda: create_stt(stt_type, language=language, sample_rate=8000),
            on_final,
            on_speech,
        )
        running = Running(
            tid,
            customer_id,
            call_id,
            language,
            direction,
            transcriber,
            activeflow_id=row.activeflow_id,
            on_end_flow_id=row.on_end_flow_id,
        )
        self.running[tid] = running
        transcriber.start()
        running.supervisor = asyncio.get_running_loop().create_task(
            self._supervise(running, hangup), name=f"transcribe {tid}"
        )
        return row

    async def stop(self, transcribe_id: uuid.UUID) -> bool:
        """Stop a running transcribe and wait until its last transcripts are stored; False if not running."""
        running = self.running.get(transcribe_id)
        if running is None:
            return False
        running.stop_requested.set()
        await running.finished.wait()
        return True

    async def stop_call(self, customer_id: uuid.UUID, call_id: uuid.UUID) -> int:
        """Stop every transcribe of the call; returns how many were stopped."""
        ids = [r.id for r in self.running.values() if r.customer_id == customer_id and r.call_id == call_id]
        await asyncio.gather(*(self.stop(i) for i in ids))
        return len(ids)

    async def flush(self, transcribe_id: uuid.UUID) -> None:
        """Store transcripts of everything heard so far (no-op when not running here)."""
        running = self.running.get(transcribe_id)
        if running is not None and not running.finished.is_set():
            await running.transcriber.flush()

    async def wait_finished(self, transcribe_id: uuid.UUID) -> None:
        """Until the transcribe (if running here) has stored its last transcripts; bounded."""
        running = self.running.get(transcribe_id)
        if running is not None:
            async with asyncio.timeout(FINISH_TIMEOUT):
                await running.finished.wait()

    async def soft_delete(self, transcribe_id: uuid.UUID) -> Transcribe | None:
        """Delete a transcribe that no longer runs; publishes ``transcribe_deleted``."""
        async with self.db.session() as session:
            row = await session.get(Transcribe, transcribe_id)
            if row is None:
                return None
            row.tm_update = row.tm_delete = utcnow()
            self.events.publish(
                row.customer_id, "transcribe_deleted", transcribe_to_api(row), session=session
            )
            await session.commit()
        return row

    async def recover(self) -> int:
        """Mark ``done`` every transcribe an earlier boot of this node left progressing."""
        rows = await finish_left_rows(self.db, self.owner, Transcribe, "progressing", "done")
        for row in rows:
            self.events.publish(row.customer_id, "transcribe_done", transcribe_to_api(row))
        return len(rows)

    async def close(self) -> None:
        """Shutdown: abandon every transcribe (rows are marked done)."""
        for running in list(self.running.values()):
            running.transcriber.cancel()
            running.stop_requested.set()
        tasks = [r.supervisor for r in self.running.values() if r.supervisor is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=5.0)

    async def _supervise(self, running: Running, hangup: Callable[[], Awaitable[Any]] | None) -> None:
        waits = [
            asyncio.ensure_future(running.transcriber.wait()),
            asyncio.ensure_future(running.stop_requested.wait()),
        ]
        if hangup is not None:
            waits.append(asyncio.ensure_future(hangup()))
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            running.stop_requested.set()
            try:
                async with asyncio.timeout(FINISH_TIMEOUT):
                    await running.transcriber.stop()
            except TimeoutError:
                log.error("transcribe %s: last utterances not transcribed in time", running.id)
                running.transcriber.cancel()
        except Exception:
            log.exception("transcribe %s failed", running.id)
        finally:
            for w in waits:
                w.cancel()
            await self._finish(running)

    async def _finish(self, running: Running) -> None:
        row: Transcribe | None = None
        try:
            async with self.db.session() as session:
                row = await session.get(Transcribe, running.id)
                if row is not None:
                    row.status = "done"
                    row.tm_update = utcnow()
                    self.events.publish(
                        running.customer_id, "transcribe_done", transcribe_to_api(row), session=session
                    )
                    await session.commit()
        except Exception:
            log.exception("transcribe %s: marking done failed", running.id)
        finally:
            self.running.pop(running.id, None)
            running.finished.set()
        if row is not None and row.tm_delete is None and running.on_end_flow_id != ZERO_UUID:
            await start_on_end_flow(
                self.flows,
                running.customer_id,
                running.on_end_flow_id,
                reference_type="transcribe",
                reference_id=running.id,
                parent_activeflow_id=running.activeflow_id,
                extra=transcribe_variables(row),
            )

    # -- callbacks -----------------------------------------------------------------------------
    async def _store_transcript(
        self, transcribe_id: uuid.UUID, customer_id: uuid.UUID, direction: str, offset: float, text: str
    ) -> None:
        row = Transcript(
            customer_id=customer_id,
            transcribe_id=transcribe_id,
            direction=direction,
            message=text,
            offset_ms=round(offset * 1000),
        )
        async with self.db.session() as session:
            session.add(row)
            await session.flush()  # defaults filled in
            self.events.publish(customer_id, "transcript_created", transcript_to_api(row), session=session)
            await session.commit()
        running = self.running.get(transcribe_id)
        for listener in list(running.listeners if running else []):
            try:
                listener(row)
            except Exception:
                log.exception("transcribe %s: listener failed", transcribe_id)

    def _speech_event(
        self, transcribe_id: uuid.UUID, customer_id: uuid.UUID, direction: str, ev: SttEvent
    ) -> None:
        kind = {
            SttEventType.SPEECH_STARTED: "transcribe_speech_started",
            SttEventType.INTERIM: "transcribe_speech_interim",
            SttEventType.SPEECH_ENDED: "transcribe_speech_ended",
        }.get(ev.type)
        if kind is None:
            return
        now = ts(utcnow())
        data: dict[str, Any] = {
            "id": str(uuid.uuid4()),
            "customer_id": uid(customer_id),
            "streaming_id": uid(uuid.uuid5(transcribe_id, direction)),
            "transcribe_id": uid(transcribe_id),
            "direction": direction,
            "tm_event": now,
            "tm_create": now,
        }
        if ev.text:
            data["message"] = ev.text
        self.events.publish(customer_id, kind, data)


def transcribe_variables(row: Transcribe) -> dict[str, str]:
    return {
        "voipbin.transcribe.id": str(row.id),
        "voipbin.transcribe.language": row.language,
        "voipbin.transcribe.direction": row.direction,
    }


async def list_transcripts(db: Database, transcribe_id: uuid.UUID, limit: int = 1000) -> list[Transcript]:
    """A transcribe's transcripts in call order (by offset), at most ``limit``."""
    async with db.session() as session:
        q = (
            select(Transcript)
            .where(Transcript.transcribe_id == transcribe_id, Transcript.tm_delete.is_(None))
            .order_by(Transcript.offset_ms, Transcript.tm_create)
            .limit(limit)
        )
        return list((await session.execute(q)).scalars().all())


async def start_on_end_flow(
    flows: FlowEngine,
    customer_id: uuid.UUID,
    flow_id: uuid.UUID,
    *,
    reference_type: str,
    reference_id: uuid.UUID,
    parent_activeflow_id: uuid.UUID,
    extra: dict[str, str],
) -> None:
    """Run ``on_end_flow_id`` as a new activeflow with the parent's variables plus ``extra`` (VoIPBIN)."""
    variables: dict[str, str] = {}
    if parent_activeflow_id != ZERO_UUID:
        parent = await flows.get(parent_activeflow_id)
        if parent is not None and parent.customer_id == customer_id:
            variables.update(parent.variables or {})
    variables.update(extra)
    try:
        await flows.create(
            customer_id,
            reference_type=reference_type,
            reference_id=reference_id,
            flow_id=flow_id,
            inherited_variables=variables,
            reference_activeflow_id=parent_activeflow_id,
        )
    except Exception:
        log.exception("%s %s: on_end_flow_id %s could not start", reference_type, reference_id, flow_id)
