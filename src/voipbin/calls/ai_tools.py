"""The AI tools' ports that reach beyond the AI package: ``get_resource`` and ``create_call``.

They live in the calls layer (above ``ai`` and ``transcribe``) because they read calls, recordings,
transcribes and summaries and start outgoing calls; the composition root hands them to the AI package
as plain callables (``AIDeps.get_resource`` / ``AIDeps.create_call``), so ``ai/`` imports none of it.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from voipbin.ai.calls import AICalls, aicall_to_api
from voipbin.billing.ledger import account_for, can_cover
from voipbin.calls.recordings import recording_to_api
from voipbin.calls.records import CallRecords, call_to_api
from voipbin.models.actions import ActionValidationError, validate_actions
from voipbin.store.tables import Flow, Number, Recording, Summary, Transcribe
from voipbin.transcribe.serialize import summary_to_api, transcribe_to_api

if TYPE_CHECKING:
    from voipbin.calls.manager import CallManager
    from voipbin.config import Settings
    from voipbin.store.db import Database


class AIToolPorts:
    def __init__(
        self, db: Database, settings: Settings, aicalls: AICalls, records: CallRecords, calls: CallManager
    ) -> None:
        self.db = db
        self.settings = settings
        self.aicalls = aicalls
        self.records = records
        self.calls = calls

    async def get_resource(
        self, customer_id: uuid.UUID, kind: str, resource_id: uuid.UUID
    ) -> dict[str, Any] | None:
        """The customer's resource in its API shape, or None (missing, deleted or another tenant's)."""
        row: Any
        if kind == "aicall":
            row = await self.aicalls.get(resource_id)
            to_api: Any = aicall_to_api
        elif kind == "call":
            row, to_api = await self.records.get(resource_id), call_to_api
        else:
            model, to_api = {
                "recording": (Recording, recording_to_api),
                "transcribe": (Transcribe, transcribe_to_api),
                "summary": (Summary, summary_to_api),
            }[kind]
            async with self.db.session() as session:
                row = await session.get(model, resource_id)
        if row is None or row.customer_id != customer_id or getattr(row, "tm_delete", None) is not None:
            return None
        out: dict[str, Any] = to_api(row)
        return out

    async def create_call(
        self,
        customer_id: uuid.UUID,
        source: dict[str, Any] | None,
        destinations: list[dict[str, Any]],
        options: dict[str, Any],
    ) -> list[str]:
        """Outgoing calls like ``POST /v1.0/calls`` (the source must be one of the customer's numbers;
        default: the first); raises ``ValueError`` with the reason the model hears."""
        async with self.db.session() as session:
            q = select(Number.number).where(
                Number.customer_id == customer_id, Number.status == "active", Number.tm_delete.is_(None)
            )
            numbers = list((await session.execute(q)).scalars().all())
            if source is None or source.get("type") != "tel":
                if not numbers:
                    raise ValueError("the account has no number to call from")
                source = {"type": "tel", "target": numbers[0], "target_name": "", "name": "", "detail": ""}
            elif source["target"] not in numbers:
                raise ValueError(f"{source['target']} is not a number of this account")
            tel = sum(1 for d in destinations if d["type"] == "tel")
            if tel and not can_cover(
                await account_for(session, customer_id), self.settings.call_rate_per_minute * tel
            ):
                raise ValueError("the balance cannot cover the call (INSUFFICIENT_BALANCE)")
            flow_id = _uuid(options.get("flow_id"))
            if flow_id is not None:
                flow = await session.get(Flow, flow_id)
                if flow is None or flow.customer_id != customer_id or flow.tm_delete is not None:
                    raise ValueError(f"flow {flow_id} not found")
            else:
                try:
                    actions = [a.to_api() for a in validate_actions(options.get("actions") or [])]
                except ActionValidationError as exc:
                    raise ValueError(f"invalid actions: {exc}") from None
                flow = Flow(
                    customer_id=customer_id,
                    name="tmp",
                    detail="AI create_call",
                    actions=actions,
                    persist=False,
                )
                session.add(flow)
                await session.commit()
                flow_id = flow.id
        new = [
            self.records.new_call(
                customer_id, flow_id=flow_id, source=source, destination=d, direction="outgoing"
            )
            for d in destinations
        ]
        await self.records.add(new)
        for c in new:
            await self.calls.start_outgoing(c.id)
        return [str(c.id) for c in new]


def _uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None
