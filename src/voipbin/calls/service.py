"""Call rows: status changes with events, shared by the API and the call manager."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from sqlalchemy import update

from voipbin.billing.calls import charge_call
from voipbin.calls.state import Status, can_transition, hangup_by
from voipbin.platform import Platform
from voipbin.serialize import timestamps, uid
from voipbin.store.tables import Call, Groupcall
from voipbin.store.types import utcnow

log = logging.getLogger(__name__)


def address_out(addr: dict[str, Any] | None) -> dict[str, Any]:
    """VoIPBIN's Address with ``omitempty``: type and target always, the rest when set."""
    addr = addr or {}
    out = {"type": addr.get("type", ""), "target": addr.get("target", "")}
    for key in ("target_name", "name", "detail"):
        if addr.get(key):
            out[key] = addr[key]
    return out


def call_to_api(c: Call) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": uid(c.id),
        "customer_id": uid(c.customer_id),
        "owner_type": c.owner_type,
        "owner_id": uid(c.owner_id),
        "flow_id": uid(c.flow_id),
        "activeflow_id": uid(c.activeflow_id),
        "type": c.type,
        "master_call_id": uid(c.master_call_id),
        "recording_id": uid(c.recording_id),
        "recording_ids": list(c.recording_ids or []),
        "groupcall_id": uid(c.groupcall_id),
        "source": address_out(c.source),
        "destination": address_out(c.destination),
        "status": c.status,
        "metadata": c.metadata_ or {},
        "direction": c.direction,
        "mute_direction": c.mute_direction,
        "hangup_by": c.hangup_by,
        "hangup_reason": c.hangup_reason,
        **timestamps(c, "tm_progressing", "tm_ringing", "tm_hangup"),
    }
    if c.action:  # the action being executed; absent before the flow starts
        out["action"] = c.action
    if c.chained_call_ids:
        out["chained_call_ids"] = list(c.chained_call_ids)
    return out


def groupcall_to_api(g: Groupcall) -> dict[str, Any]:
    return {
        "id": uid(g.id),
        "customer_id": uid(g.customer_id),
        "owner_type": g.owner_type,
        "owner_id": uid(g.owner_id),
        "status": g.status,
        "flow_id": uid(g.flow_id),
        "source": address_out(g.source),
        "destinations": [address_out(d) for d in g.destinations or []],
        "master_call_id": uid(g.master_call_id),
        "ring_method": g.ring_method,
        "answer_method": g.answer_method,
        "answer_call_id": uid(g.answer_call_id),
        "call_ids": list(g.call_ids or []),
        "call_count": len(g.call_ids or []),
        **timestamps(g),
    }


def publish_call(platform: Platform, c: Call, event: str) -> None:
    platform.events.publish(c.customer_id, event, call_to_api(c))


async def _compare_and_set(session: Any, call_id: uuid.UUID, expected: str, values: dict[str, Any]) -> bool:
    """UPDATE ... WHERE status = expected: a concurrent status change (a BYE racing an answer) makes this
    fail instead of being overwritten. SQLite's driver only begins a transaction at the first write, so
    a read-then-write on the ORM object would not protect the row."""
    result = await session.execute(
        update(Call)
        .where(Call.id == call_id, Call.status == expected)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


async def set_status(platform: Platform, call_id: uuid.UUID, new: str, **fields: Any) -> Call | None:
    """Move a call to ``new`` if the state machine allows it; publishes ``call_<status>``."""
    for _ in range(5):
        async with platform.db.session() as session:
            c = await session.get(Call, call_id)
            if c is None or not can_transition(c.status, new):
                return None
            now = utcnow()
            values: dict[str, Any] = {"status": new, "tm_update": now, **fields}
            if new == Status.RINGING:
                values["tm_ringing"] = now
            elif new == Status.PROGRESSING:
                values["tm_progressing"] = now
            if not await _compare_and_set(session, call_id, c.status, values):
                await session.rollback()
                continue  # the status moved under us: re-check the transition against the new one
            await session.commit()
            await session.refresh(c)
        publish_call(platform, c, f"call_{new}")
        return c
    return None


async def finish_call(
    platform: Platform,
    call_id: uuid.UUID,
    *,
    reason: str,
    by: str | None = None,
    detail: str = "",
    rtp: dict[str, Any] | None = None,
) -> Call | None:
    """Final ``hangup`` with reason; idempotent (a finished call is returned unchanged)."""
    for _ in range(5):
        async with platform.db.session() as session:
            c = await session.get(Call, call_id)
            if c is None:
                return None
            if c.status == Status.HANGUP:
                return c
            now = utcnow()
            metadata = dict(c.metadata_ or {})
            if detail:
                metadata["hangup_detail"] = detail
            if rtp is not None:
                metadata["rtp"] = rtp
            values = {
                "hangup_by": by or hangup_by(c.status),
                "hangup_reason": reason,
                "status": Status.HANGUP,
                "tm_hangup": now,
                "tm_update": now,
                "metadata_": metadata,
            }
            if not await _compare_and_set(session, call_id, c.status, values):
                await session.rollback()
                continue
            await session.refresh(c)
            await charge_call(session, c, platform.settings.call_rate_per_minute)
            await session.commit()
        publish_call(platform, c, "call_hangup")
        return c
    return None
