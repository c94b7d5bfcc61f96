"""AI summaries of transcribes and calls (VoIPBIN's ``/aisummaries`` and the ``ai_summary`` action).

* reference_type ``transcribe`` — synchronous: the transcribe's transcripts so far (a running
  transcribe is flushed first, so what was just said is included) are summarised by the platform's
  LLM (``VOIPBIN_DEFAULT_ENGINE_MODEL``) and stored with status ``done``.
* reference_type ``call`` — real time: a transcribe of the call is reused (or started), the summary is
  created ``progressing``; with ``real_time`` its content is refreshed every
  ``VOIPBIN_SUMMARY_UPDATE_EVERY`` (default 3) new transcripts (``summary_updated``); when the call
  hangs up the last utterances are transcribed, the final summary is written and the status turns
  ``done`` (``summary_updated``).

Idempotent as in VoIPBIN: an existing summary with the same (customer, reference_id, language) is
returned instead of a new one. Unlike VoIPBIN the helper transcribe belongs to the customer (so it is
visible in ``GET /transcribes``); VoIPBIN hides it under a system customer.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from voipbin.ai.llm.base import Message
from voipbin.ai.registry import ModelLocations, create_llm
from voipbin.store.owner import finish_left_rows
from voipbin.store.tables import ZERO_UUID, Summary, Transcribe, Transcript
from voipbin.store.types import utcnow
from voipbin.transcribe.live import TapSource
from voipbin.transcribe.serialize import summary_to_api
from voipbin.transcribe.service import (
    TranscribeError,
    TranscribeService,
    list_transcripts,
    normalize_language,
    start_on_end_flow,
)

if TYPE_CHECKING:
    from voipbin.events.bus import EventBus
    from voipbin.flow.engine import FlowEngine
    from voipbin.store.db import Database
    from voipbin.store.owner import NodeOwner

log = logging.getLogger(__name__)

LLM_TIMEOUT = 60.0  # VoIPBIN's summary RPC timeout
PROMPT = (
    "You summarize phone call transcripts. Write a concise, structured summary of the key points of "
    "the call: the caller's purpose, what was discussed, any decisions, problems or feedback, and the "
    "follow-up actions. Use short bullet points. Do not invent anything that is not in the transcript. "
    "Write the summary in the language {language}."
)
SPEAKERS = {"in": "caller", "out": "agent"}


class SummaryError(Exception):
    """A summary could not be made; ``reason``/``http_status`` map it to the API's error envelope."""

    def __init__(self, message: str, *, reason: str = "INTERNAL", http_status: int = 500) -> None:
        super().__init__(message)
        self.reason = reason
        self.http_status = http_status


def not_found(what: str, reason: str) -> SummaryError:
    return SummaryError(f"{what} not found", reason=reason, http_status=404)


def format_transcript(transcripts: Sequence[Transcript]) -> str:
    lines = []
    for t in transcripts:
        seconds = t.offset_ms // 1000
        lines.append(
            f"[{seconds // 60:02d}:{seconds % 60:02d}] {SPEAKERS.get(t.direction, t.direction)}: {t.message}"
        )
    return "\n".join(lines)


async def summarize_transcripts(
    engine_model: str,
    transcripts: Sequence[Transcript],
    language: str,
    *,
    models: ModelLocations | None = None,
) -> str:
    """The LLM's summary of ``transcripts``; raises :class:`SummaryError` when the model fails."""
    if not transcripts:
        return "Nothing was said on the call."
    messages = [
        Message.system(PROMPT.format(language=language)),
        Message.user("Call transcript:\n" + format_transcript(transcripts)),
    ]
    try:
        llm = create_llm(engine_model, None, timeout=LLM_TIMEOUT, models=models)
    except Exception as exc:
        raise SummaryError(f"the summary model {engine_model!r} is not usable: {exc}", http_status=503,
                           reason="SERVICE_UNAVAILABLE") from None  # fmt: skip
    try:
        content = (await llm.complete(messages)).strip()
    except Exception as exc:
        raise SummaryError(
            f"the summary model {engine_model!r} failed: {exc}", http_status=503, reason="SERVICE_UNAVAILABLE"
        ) from None
    finally:
        await llm.aclose()
    if not content:
        raise SummaryError(
            f"the summary model {engine_model!r} returned nothing",
            http_status=503,
            reason="SERVICE_UNAVAILABLE",
        )
    return content


def summary_variables(row: Summary) -> dict[str, str]:
    return {
        "voipbin.ai_summary.id": str(row.id),
        "voipbin.ai_summary.reference_type": row.reference_type,
        "voipbin.ai_summary.reference_id": str(row.reference_id),
        "voipbin.ai_summary.language": row.language,
        "voipbin.ai_summary.content": row.content,
    }


class SummaryService:
    """Owner of the ``summaries`` table."""

    def __init__(
        self,
        db: Database,
        events: EventBus,
        flows: FlowEngine,
        transcribes: TranscribeService,
        owner: NodeOwner,
        *,
        engine_model: str,
        models: ModelLocations | None = None,
        update_every: int = 3,
    ) -> None:
        self.db = db
        self.events = events
        self.flows = flows
        self.transcribes = transcribes
        self.owner = owner
        self.engine_model = engine_model
        self.models = models
        self.update_every = max(1, update_every)  # refresh a real-time summary every N transcripts
        self._tasks: set[asyncio.Task[None]] = set()

    async def existing(
        self, customer_id: uuid.UUID, reference_id: uuid.UUID, language: str
    ) -> Summary | None:
        async with self.db.session() as session:
            q = select(Summary).where(
                Summary.customer_id == customer_id,
                Summary.reference_id == reference_id,
                Summary.language == language,
                Summary.tm_delete.is_(None),
            )
            return (await session.execute(q.limit(1))).scalars().first()

    async def _transcribe_row(self, customer_id: uuid.UUID, transcribe_id: uuid.UUID) -> Transcribe:
        async with self.db.session() as session:
            row = await session.get(Transcribe, transcribe_id)
        if row is None or row.customer_id != customer_id or row.tm_delete is not None:
            raise not_found(f"transcribe {transcribe_id}", "TRANSCRIBE_NOT_FOUND")
        return row

    # -- reference_type transcribe (synchronous) -----------------------------------------------------
    async def summarize_transcribe(
        self,
        customer_id: uuid.UUID,
        transcribe_id: uuid.UUID,
        *,
        language: str = "",
        activeflow_id: uuid.UUID | None = None,
        on_end_flow_id: uuid.UUID | None = None,
    ) -> Summary:
        transcribe = await self._transcribe_row(customer_id, transcribe_id)
        language = normalize_language(language or transcribe.language)
        found = await self.existing(customer_id, transcribe_id, language)
        if found is not None:
            return found
        await self.transcribes.flush(transcribe_id)
        content = await summarize_transcripts(
            self.engine_model, await list_transcripts(self.db, transcribe_id), language, models=self.models
        )
        row = Summary(
            customer_id=customer_id,
            activeflow_id=activeflow_id or ZERO_UUID,
            on_end_flow_id=on_end_flow_id or ZERO_UUID,
            reference_type="transcribe",
            reference_id=transcribe_id,
            transcribe_id=transcribe_id,
            status="done",
            language=language,
            content=content,
            **self.owner.stamp(),
        )
        async with self.db.session() as session:
            session.add(row)
            await session.flush()  # defaults filled in; the event's outbox rows commit with the row
            self.events.publish(customer_id, "summary_created", summary_to_api(row), session=session)
            await session.commit()
        await self._on_end(row)
        return row

    # -- reference_type call (real time) ---------------------------------------------------------------
    async def start_call(
        self,
        customer_id: uuid.UUID,
        call_id: uuid.UUID,
        media: TapSource,
        hangup: Callable[[], Awaitable[Any]],
        *,
        language: str = "",
        real_time: bool = False,
        activeflow_id: uuid.UUID | None = None,
        on_end_flow_id: uuid.UUID | None = None,
    ) -> Summary:
        """Create a ``progressing`` summary of a live call and keep it up to date until it hangs up."""
        transcribes = self.transcribes
        running = transcribes.for_call(
            customer_id, call_id, normalize_language(language) if language else None
        )
        language = normalize_language(language or (running.language if running else ""))
        found = await self.existing(customer_id, call_id, language)
        if found is not None:
            return found
        if running is None:
            try:
                transcribe = await transcribes.start_call(
                    customer_id, call_id, media, language=language, direction="both", hangup=hangup,
                    activeflow_id=activeflow_id,
                )  # fmt: skip
            except TranscribeError as exc:
                raise SummaryError(str(exc), reason="INVALID_ARGUMENT", http_status=400) from None
            transcribe_id = transcribe.id
        else:
            transcribe_id = running.id
        row = Summary(
            customer_id=customer_id,
            activeflow_id=activeflow_id or ZERO_UUID,
            on_end_flow_id=on_end_flow_id or ZERO_UUID,
            reference_type="call",
            reference_id=call_id,
            transcribe_id=transcribe_id,
            status="progressing",
            language=language,
            content="",
            **self.owner.stamp(),
        )
        async with self.db.session() as session:
            session.add(row)
            await session.flush()  # defaults filled in; the event's outbox rows commit with the row
            self.events.publish(customer_id, "summary_created", summary_to_api(row), session=session)
            await session.commit()
        task = asyncio.get_running_loop().create_task(
            self._follow_call(row.id, transcribe_id, hangup, real_time), name=f"summary {row.id}"
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return row

    async def _follow_call(
        self,
        summary_id: uuid.UUID,
        transcribe_id: uuid.UUID,
        hangup: Callable[[], Awaitable[Any]],
        real_time: bool,
    ) -> None:
        transcribes = self.transcribes
        running = transcribes.running.get(transcribe_id)
        new = asyncio.Event()
        counter = [0]

        def listener(_: Transcript) -> None:
            counter[0] += 1
            new.set()

        if running is not None and real_time:
            running.listeners.append(listener)
        hung = asyncio.ensure_future(hangup())
        try:
            summarized = 0
            every = self.update_every
            while real_time and not hung.done():
                waiter = asyncio.ensure_future(new.wait())
                await asyncio.wait({waiter, hung}, return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
                new.clear()
                if not hung.done() and counter[0] - summarized >= every:
                    summarized = counter[0]
                    try:
                        await self._refresh(summary_id, transcribe_id, final=False)
                    except SummaryError as exc:
                        log.warning("summary %s: live update failed: %s", summary_id, exc)
            await hung
        except Exception:
            log.exception("summary %s: waiting for the call failed", summary_id)
        finally:
            hung.cancel()
            if running is not None and listener in running.listeners:
                running.listeners.remove(listener)
        try:
            await transcribes.wait_finished(transcribe_id)
        except TimeoutError:
            log.error("summary %s: transcribe %s did not finish in time", summary_id, transcribe_id)
        try:
            await self._refresh(summary_id, transcribe_id, final=True)
        except SummaryError as exc:
            log.error("summary %s: final summary failed: %s", summary_id, exc)
            await self._refresh(summary_id, transcribe_id, final=True, content=None)

    async def _refresh(
        self, summary_id: uuid.UUID, transcribe_id: uuid.UUID, *, final: bool, content: str | None = ""
    ) -> None:
        """Recompute (``content=""``) or keep (``None``) the content; ``final`` also marks it done."""
        async with self.db.session() as session:
            row = await session.get(Summary, summary_id)
        if row is None or row.tm_delete is not None:
            return
        if content == "":
            content = await summarize_transcripts(
                self.engine_model,
                await list_transcripts(self.db, transcribe_id),
                row.language,
                models=self.models,
            )
        async with self.db.session() as session:
            row = await session.get(Summary, summary_id)
            if row is None:
                return
            if content is not None:
                row.content = content
            if final:
                row.status = "done"
            row.tm_update = utcnow()
            self.events.publish(row.customer_id, "summary_updated", summary_to_api(row), session=session)
            await session.commit()
        if row.activeflow_id != ZERO_UUID:
            engine = self.flows
            if engine.is_live(row.activeflow_id):
                await engine.set_variables(row.activeflow_id, summary_variables(row))
        if final:
            await self._on_end(row)

    async def _on_end(self, row: Summary) -> None:
        if row.on_end_flow_id != ZERO_UUID:
            await start_on_end_flow(
                self.flows,
                row.customer_id,
                row.on_end_flow_id,
                reference_type="ai",
                reference_id=row.id,
                parent_activeflow_id=row.activeflow_id,
                extra=summary_variables(row),
            )

    async def soft_delete(self, summary_id: uuid.UUID) -> Summary | None:
        """Delete a summary; publishes ``summary_deleted``."""
        async with self.db.session() as session:
            row = await session.get(Summary, summary_id)
            if row is None:
                return None
            row.tm_update = row.tm_delete = utcnow()
            self.events.publish(row.customer_id, "summary_deleted", summary_to_api(row), session=session)
            await session.commit()
        return row

    async def recover(self) -> int:
        """Finish (``done``, with what was summarised so far) every summary an earlier boot left open."""
        rows = await finish_left_rows(self.db, self.owner, Summary, "progressing", "done")
        for row in rows:
            self.events.publish(row.customer_id, "summary_updated", summary_to_api(row))
        return len(rows)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
