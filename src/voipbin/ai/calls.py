"""Owner of the ``aicalls`` and ``aimessages`` tables, and of the AI calls live on this node.

A live aicall is an :class:`AICallRecord` in :attr:`AICalls.live` (the authority for ``GET
/aicalls/{id}`` while it runs, like live calls in ``calls/records.py``); its row is written through the
group commit when it starts, when its status changes and when it ends; every message is one row,
written in order. A node that starts again ends what an earlier boot of it left live (``terminated``,
``metadata.end_reason`` says so) with the normal ``aicall_status_terminated`` event.

Serialization to VoIPBIN's JSON (``aicall_to_api``, ``aimessage_to_api``) lives here. Our extensions:
``aicall.metadata`` (usage and latency sums, ``end_reason``, ``errors``, ``warnings``, per-turn latency
lists) and ``aimessage.turn`` (an assistant message's timings and usage) — see docs/api.md.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from sqlalchemy import bindparam, insert, select, update

from voipbin.events.bus import EventBus
from voipbin.serialize import ts, uid
from voipbin.store.db import Database
from voipbin.store.owner import NodeOwner, finish_left_rows
from voipbin.store.tables import ZERO_UUID, AICall, AIMessage
from voipbin.store.types import creation_time, utcnow
from voipbin.store.writer import WriteBehind

log = logging.getLogger(__name__)

LIVE_STATUSES = ("initiating", "progressing", "terminating")
_STATUS_EVENT = {"initiating": "aicall_status_initializing"}  # VoIPBIN's own naming mismatch
DIRECTIONS = {"user": "incoming", "assistant": "outgoing", "tool": "outgoing", "system": "outgoing"}
USAGE_KEYS = ("input_tokens", "cached_input_tokens", "output_tokens", "tts_characters", "stt_seconds")


# -- serializers -----------------------------------------------------------------------------------
def aicall_to_api(row: AICall) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "customer_id": str(row.customer_id),
        "assistance_type": row.assistance_type,
        "assistance_id": uid(row.assistance_id),
        "ai_engine_model": row.ai_engine_model,
        "ai_tts_type": row.ai_tts_type,
        "ai_tts_voice_id": row.ai_tts_voice_id,
        "ai_stt_type": row.ai_stt_type,
        "ai_vad_config": row.ai_vad_config,
        "parameter": dict(row.parameter or {}),
        "activeflow_id": uid(row.activeflow_id),
        "reference_type": row.reference_type,
        "reference_id": uid(row.reference_id),
        "confbridge_id": uid(None),
        "current_member_id": uid(None),
        "status": row.status,
        "stt_language": row.stt_language,
        "metadata": dict(row.metadata_ or {}),
        "tm_end": ts(row.tm_end),
        "tm_create": ts(row.tm_create),
        "tm_update": ts(row.tm_update),
        "tm_delete": ts(row.tm_delete),
    }


def aimessage_to_api(row: AIMessage) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": str(row.id),
        "customer_id": str(row.customer_id),
        "aicall_id": str(row.aicall_id),
        "activeflow_id": uid(row.activeflow_id),
        "active_ai_id": uid(row.active_ai_id),
        "role": row.role,
        "content": row.content,
        "direction": row.direction,
        "tm_create": ts(row.tm_create),
        "tm_delete": ts(row.tm_delete),
    }
    if row.tool_calls:
        out["tool_calls"] = list(row.tool_calls)
    if row.tool_call_id:
        out["tool_call_id"] = row.tool_call_id
    if row.turn:
        out["turn"] = dict(row.turn)
    return out


def participants_to_api(row: AICall) -> list[dict[str, Any]]:
    """VoIPBIN's participants of an aicall: the AI(s) that took part (one: we have no teams)."""
    return [{"ai_id": uid(row.assistance_id), "aicall_id": str(row.id), "tm_create": ts(row.tm_create)}]


# -- control messages a live session reads from its queue ----------------------------------------
@dataclass(frozen=True)
class Terminate:
    """``POST /aicalls/{id}/terminate``: end the session; the flow continues with the next action."""

    reason: str = "terminated"


@dataclass(frozen=True)
class Inject:
    """``POST /aimessages`` into a live aicall: ``user``/``system`` steer the next reply, ``assistant``
    is spoken as it is."""

    role: str
    content: str
    message_id: uuid.UUID


# -- the live record -------------------------------------------------------------------------------
_COLUMNS = {attr.key: attr.columns[0].name for attr in AICall.__mapper__.column_attrs}
_INSERT = insert(AICall)
_SAVE_FIELDS = ("status", "metadata_", "tm_update", "tm_end", "ai_tts_voice_id", "ai_engine_model")
_SAVE = (
    update(AICall)
    .where(AICall.id == bindparam("k_id"))
    .values({_COLUMNS[name]: bindparam(f"v_{name}") for name in _SAVE_FIELDS})
    .execution_options(synchronize_session=False)
)
_INSERT_MESSAGE = insert(AIMessage)
_MESSAGE_COLUMNS = {attr.key: attr.columns[0].name for attr in AIMessage.__mapper__.column_attrs}


def _insert_params(row: AICall) -> list[dict[str, Any]]:
    return [{column: getattr(row, key) for key, column in _COLUMNS.items()}]


def _save_params(row: AICall) -> list[dict[str, Any]]:
    params = {f"v_{name}": getattr(row, name) for name in _SAVE_FIELDS}
    params["k_id"] = row.id
    return [params]


@dataclass
class AICallRecord:
    """One live aicall: its row (live state), its messages, usage sums and the session's inbox."""

    owner: AICalls
    row: AICall
    messages: list[AIMessage] = field(default_factory=list)
    post: Callable[[object], None] | None = None  # the running session's queue (set by the session)
    sequence: int = 0  # of aimessage_intermediate events

    @property
    def id(self) -> uuid.UUID:
        return self.row.id

    @property
    def customer_id(self) -> uuid.UUID:
        return self.row.customer_id

    @property
    def status(self) -> str:
        return self.row.status

    @property
    def metadata(self) -> dict[str, Any]:
        return self.row.metadata_

    def to_api(self) -> dict[str, Any]:
        return aicall_to_api(self.row)

    def set_status(self, status: str) -> None:
        row = self.row
        if row.status == status and row.tm_update is not None:
            return
        row.status = status
        row.tm_update = utcnow()
        if status == "terminated":
            row.tm_end = row.tm_update
        self.owner.save(self)
        self.owner.events.publish(row.customer_id, _STATUS_EVENT.get(status, f"aicall_status_{status}"),
                                  aicall_to_api(row))  # fmt: skip
        if status == "terminated":
            self.owner.live.pop(row.id, None)

    def add_message(
        self,
        role: str,
        content: str,
        *,
        tool_calls: Iterable[Any] = (),
        tool_call_id: str | None = None,
        turn: dict[str, Any] | None = None,
    ) -> AIMessage:
        calls = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in tool_calls
        ]
        message = AIMessage(
            id=uuid.uuid4(),
            customer_id=self.row.customer_id,
            aicall_id=self.row.id,
            activeflow_id=self.row.activeflow_id,
            active_ai_id=self.row.assistance_id,
            role=role,
            content=content,
            direction=DIRECTIONS.get(role, ""),
            tool_calls=calls,
            tool_call_id=tool_call_id or "",
            turn=dict(turn or {}),
            tm_create=creation_time(),
            tm_update=None,
            tm_delete=None,
        )
        self.messages.append(message)
        if turn:
            self._sum(turn)
        self.owner.store_message(message)
        self.owner.events.publish(self.row.customer_id, "aimessage_created", aimessage_to_api(message))
        return message

    def intermediate(self, role: str, delta: str) -> None:
        """A streamed piece of the assistant's answer (``aimessage_intermediate``)."""
        self.sequence += 1
        row = self.row
        self.owner.events.publish(
            row.customer_id,
            "aimessage_intermediate",
            {
                "id": str(uuid.uuid5(row.id, str(self.sequence))),
                "customer_id": str(row.customer_id),
                "aicall_id": str(row.id),
                "activeflow_id": uid(row.activeflow_id),
                "active_ai_id": uid(row.assistance_id),
                "role": role,
                "content": delta,
                "direction": DIRECTIONS.get(role, ""),
                "sequence": self.sequence,
            },
        )

    def _sum(self, turn: dict[str, Any]) -> None:
        meta = self.row.metadata_
        usage = meta.setdefault("usage", {k: 0 for k in USAGE_KEYS})
        for key, value in (turn.get("usage") or {}).items():
            if isinstance(value, int | float):
                usage[key] = round(usage.get(key, 0) + value, 3)
        by_engine = meta.setdefault("usage_by_engine", {})
        for key in ("llm", "tts"):
            engine = turn.get(key)
            if not engine:
                continue
            slot = by_engine.setdefault(engine, {})
            wanted = ("input_tokens", "output_tokens") if key == "llm" else ("tts_characters",)
            for name in wanted:
                slot[name] = slot.get(name, 0) + int((turn.get("usage") or {}).get(name, 0))
        meta["turns"] = meta.get("turns", 0) + 1
        if turn.get("interrupted"):
            meta["interruptions"] = meta.get("interruptions", 0) + 1

    def add_stt_seconds(self, stt_type: str, seconds: float) -> None:
        meta = self.row.metadata_
        usage = meta.setdefault("usage", {k: 0 for k in USAGE_KEYS})
        usage["stt_seconds"] = round(usage.get("stt_seconds", 0) + seconds, 3)
        slot = meta.setdefault("usage_by_engine", {}).setdefault(stt_type, {})
        slot["stt_seconds"] = round(slot.get("stt_seconds", 0) + seconds, 3)

    def note(self, kind: str, text: str) -> None:
        """Record an ``error`` or a ``warning`` on the aicall (kept in ``metadata.errors|warnings``)."""
        self.row.metadata_.setdefault(f"{kind}s", []).append(text)
        log.warning("aicall %s %s: %s", self.row.id, kind, text)

    def end(self, reason: str) -> None:
        self.row.metadata_["end_reason"] = reason


class AICalls:
    """The aicalls/aimessages owner (one per node, built by the composition root)."""

    def __init__(self, db: Database, writer: WriteBehind, events: EventBus, owner: NodeOwner) -> None:
        self.db = db
        self.writer = writer
        self.events = events
        self.owner = owner
        self.live: dict[uuid.UUID, AICallRecord] = {}

    def new(
        self,
        customer_id: uuid.UUID,
        *,
        activeflow_id: uuid.UUID,
        reference_type: str,
        reference_id: uuid.UUID,
        assistance_type: str = "ai",
        assistance_id: uuid.UUID | None = None,
        engine_model: str = "",
        tts_type: str = "",
        tts_voice_id: str = "",
        stt_type: str = "",
        stt_language: str = "",
        vad_config: dict[str, Any] | None = None,
        parameter: dict[str, Any] | None = None,
    ) -> AICallRecord:
        """A live aicall (``initiating``), stored and announced."""
        row = AICall(
            id=uuid.uuid4(),
            customer_id=customer_id,
            assistance_type=assistance_type,
            assistance_id=assistance_id or ZERO_UUID,
            ai_engine_model=engine_model,
            ai_tts_type=tts_type,
            ai_tts_voice_id=tts_voice_id,
            ai_stt_type=stt_type,
            ai_vad_config=vad_config,
            parameter=dict(parameter or {}),
            activeflow_id=activeflow_id,
            reference_type=reference_type,
            reference_id=reference_id,
            status="initiating",
            stt_language=stt_language,
            metadata_={"usage": {k: 0 for k in USAGE_KEYS}},
            tm_end=None,
            tm_create=creation_time(),
            tm_update=None,
            tm_delete=None,
            **self.owner.stamp(),
        )
        record = AICallRecord(self, row)
        self.live[row.id] = record
        self.writer.submit(_INSERT, partial(_insert_params, row), key=row.id)
        self.events.publish(customer_id, "aicall_status_initializing", aicall_to_api(row))
        return record

    def save(self, record: AICallRecord) -> None:
        self.writer.submit(_SAVE, partial(_save_params, record.row), key=record.row.id)

    def store_message(self, message: AIMessage) -> None:
        self.writer.submit(
            _INSERT_MESSAGE, [{column: getattr(message, key) for key, column in _MESSAGE_COLUMNS.items()}]
        )

    # -- reads -------------------------------------------------------------------------------------
    async def get(self, aicall_id: uuid.UUID) -> AICall | None:
        """The aicall (its live state while it runs here), or None."""
        live = self.live.get(aicall_id)
        if live is not None:
            return live.row
        async with self.db.session() as session:
            return await session.get(AICall, aicall_id)

    async def messages(self, aicall_id: uuid.UUID, limit: int = 1000) -> list[AIMessage]:
        """The aicall's messages in order (what has been committed plus what is still queued)."""
        await self.writer.flush()
        async with self.db.session() as session:
            q = (
                select(AIMessage)
                .where(AIMessage.aicall_id == aicall_id, AIMessage.tm_delete.is_(None))
                .order_by(AIMessage.tm_create, AIMessage.id)
                .limit(limit)
            )
            return list((await session.execute(q)).scalars().all())

    # -- control -----------------------------------------------------------------------------------
    def terminate(self, aicall_id: uuid.UUID) -> bool:
        """Ask a live session to end (the flow continues); False if it does not run here."""
        record = self.live.get(aicall_id)
        if record is None or record.post is None:
            return False
        record.post(Terminate())
        return True

    def inject(self, aicall_id: uuid.UUID, role: str, content: str) -> AIMessage | None:
        """``POST /aimessages``: store the message and hand it to the live session; None if not live here."""
        record = self.live.get(aicall_id)
        if record is None or record.post is None:
            return None
        message = record.add_message(role, content)
        record.post(Inject(role, content, message.id))
        return message

    async def soft_delete(self, aicall_id: uuid.UUID) -> AICall | None:
        """Delete an aicall that no longer runs, with its messages; publishes ``aicall_deleted``."""
        await self.writer.flush()
        async with self.db.session() as session:
            row = await session.get(AICall, aicall_id)
            if row is None:
                return None
            row.tm_update = row.tm_delete = utcnow()
            await session.execute(
                update(AIMessage)
                .where(AIMessage.aicall_id == aicall_id, AIMessage.tm_delete.is_(None))
                .values(tm_delete=row.tm_delete)
            )
            await session.commit()
        self.events.publish(row.customer_id, "aicall_deleted", aicall_to_api(row))
        return row

    async def delete_message(self, message_id: uuid.UUID) -> AIMessage | None:
        await self.writer.flush()
        async with self.db.session() as session:
            row = await session.get(AIMessage, message_id)
            if row is None:
                return None
            row.tm_update = row.tm_delete = utcnow()
            await session.commit()
        return row

    async def recover(self, detail: str) -> int:
        """End every aicall an earlier boot of this node left live."""
        n = 0
        for status in LIVE_STATUSES:
            rows = await finish_left_rows(self.db, self.owner, AICall, status, "terminated")
            for row in rows:
                row.metadata_ = {**(row.metadata_ or {}), "end_reason": "restart", "end_detail": detail}
                row.tm_end = row.tm_update
                await self.writer.write(_SAVE, _save_params(row), key=row.id)
                self.events.publish(row.customer_id, "aicall_status_terminated", aicall_to_api(row))
            n += len(rows)
        return n

    async def close(self) -> None:
        """Shutdown: live sessions end with their calls; wait a moment for their last writes."""
        for record in list(self.live.values()):
            if record.post is not None:
                record.post(Terminate("shutdown"))
        for _ in range(50):
            if not self.live:
                break
            await asyncio.sleep(0.02)
