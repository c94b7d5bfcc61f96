"""The owner of the ``activeflows`` table: creation with defaults, the stored state, finishing, recovery.

While an activeflow runs, its state document lives in the engine's memory (the engine answers
``GET /activeflows/{id}`` from it); this module writes the row when the activeflow starts and ends.
Serialization to VoIPBIN's JSON lives here, beside the model.
"""

from __future__ import annotations

import logging
import uuid
from functools import partial
from typing import Any

from sqlalchemy import bindparam, insert, select, update

from voipbin.events.bus import EventBus
from voipbin.serialize import timestamps, uid
from voipbin.store.db import Database
from voipbin.store.owner import NodeOwner
from voipbin.store.tables import ZERO_UUID, Activeflow
from voipbin.store.types import creation_time, utcnow
from voipbin.store.writer import WriteBehind

log = logging.getLogger(__name__)

RUNNING = "running"
ENDED = "ended"
# The state document: what the engine changes while the activeflow runs.
STATE_FIELDS = (
    "stack",
    "variables",
    "loop_counts",
    "executed_actions",
    "current_action",
    "execute_count",
    "status",
    "error",
)


def activeflow_to_api(a: Activeflow) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": uid(a.id),
        "customer_id": uid(a.customer_id),
        "flow_id": uid(a.flow_id),
        "status": a.status,
        "reference_type": a.reference_type,
        "reference_id": uid(a.reference_id),
        "reference_activeflow_id": uid(a.reference_activeflow_id),
        "on_complete_flow_id": uid(a.on_complete_flow_id),
        "webhook_uri": a.webhook_uri,
        "webhook_method": a.webhook_method,
        "forward_action_id": uid(a.forward_action_id),
        "executed_actions": list(a.executed_actions or []),
        **timestamps(a),
    }
    if a.current_action:  # absent until the first action runs
        out["current_action"] = a.current_action
    return out


_COLUMNS = {attr.key: attr.columns[0].name for attr in Activeflow.__mapper__.column_attrs}
_INSERT = insert(Activeflow)  # one statement object: the group commit batches new activeflows
_SAVE = (
    update(Activeflow)
    .where(Activeflow.id == bindparam("k_id"))
    .values({name: bindparam(f"v_{name}") for name in (*STATE_FIELDS, "tm_update")})
    .execution_options(synchronize_session=False)
)


def _insert_params(row: Activeflow) -> list[dict[str, Any]]:
    return [{column: getattr(row, key) for key, column in _COLUMNS.items()}]


def _state_params(row: Activeflow) -> list[dict[str, Any]]:
    params = {f"v_{name}": getattr(row, name) for name in (*STATE_FIELDS, "tm_update")}
    params["k_id"] = row.id
    return [params]


class ActiveflowRecords:
    def __init__(self, db: Database, writer: WriteBehind, events: EventBus, owner: NodeOwner) -> None:
        self.db = db
        self.writer = writer
        self.events = events
        self.owner = owner

    def new(
        self,
        customer_id: uuid.UUID,
        *,
        activeflow_id: uuid.UUID | None = None,
        flow_id: uuid.UUID = ZERO_UUID,
        reference_type: str = "",
        reference_id: uuid.UUID = ZERO_UUID,
        reference_activeflow_id: uuid.UUID = ZERO_UUID,
        on_complete_flow_id: uuid.UUID = ZERO_UUID,
        webhook_uri: str = "",
        webhook_method: str = "",
        actions: list[dict[str, Any]] | None = None,
        variables: dict[str, str] | None = None,
        complete_count: int = 0,
    ) -> Activeflow:
        """An activeflow row with every default in one place (stored by :meth:`add`)."""
        return Activeflow(
            id=activeflow_id or uuid.uuid4(),
            customer_id=customer_id,
            flow_id=flow_id,
            status=RUNNING,
            reference_type=reference_type,
            reference_id=reference_id,
            reference_activeflow_id=reference_activeflow_id,
            on_complete_flow_id=on_complete_flow_id,
            webhook_uri=webhook_uri,
            webhook_method=webhook_method,
            current_action={},
            forward_action_id=ZERO_UUID,
            executed_actions=[],
            stack=[{"actions": list(actions or []), "index": 0}],
            variables=dict(variables or {}),
            loop_counts={},
            execute_count=0,
            complete_count=complete_count,
            error="",
            tm_create=creation_time(),
            tm_update=None,
            tm_delete=None,
            **self.owner.stamp(),
        )

    async def add(self, row: Activeflow) -> None:
        stored = self.writer.submit(_INSERT, partial(_insert_params, row), key=row.id)
        self.publish(row, "activeflow_created")  # same tick: its outbox row joins the insert's transaction
        await stored

    def publish(self, row: Activeflow, event: str = "activeflow_updated", *, session: Any = None) -> None:
        if row.tm_delete is None:
            self.events.publish(row.customer_id, event, partial(activeflow_to_api, row), session=session)

    async def save(self, row: Activeflow, *, publish: bool = True) -> None:
        """Write the state document of a (live) activeflow."""
        row.tm_update = utcnow()
        # The state is read when the batch is written: several saves within one batch write once.
        stored = self.writer.submit(_SAVE, partial(_state_params, row), key=row.id)
        if publish:
            self.publish(row)  # same tick: its outbox row joins the save's transaction
        await stored

    async def get(self, activeflow_id: uuid.UUID) -> Activeflow | None:
        async with self.db.session() as session:
            return await session.get(Activeflow, activeflow_id)

    async def end_stored(self, activeflow_id: uuid.UUID, error: str = "") -> Activeflow | None:
        """End a row that no engine runs (left by an earlier boot); None if it is not running."""
        async with self.db.session() as session:
            row = await session.get(Activeflow, activeflow_id)
            if row is None or row.status != RUNNING:
                return None
            row.status = ENDED
            if error:
                row.error = error
            row.tm_update = utcnow()
            self.publish(row, session=session)  # its outbox rows commit with the change
            await session.commit()
        return row

    async def soft_delete(self, activeflow_id: uuid.UUID) -> Activeflow | None:
        """Delete an activeflow that no longer runs; publishes ``activeflow_deleted``."""
        async with self.db.session() as session:
            row = await session.get(Activeflow, activeflow_id)
            if row is None:
                return None
            now = utcnow()
            row.tm_update = now
            row.tm_delete = now
            self.events.publish(
                row.customer_id, "activeflow_deleted", activeflow_to_api(row), session=session
            )
            await session.commit()
        return row

    async def set_stored_variables(self, activeflow_id: uuid.UUID, values: dict[str, str]) -> bool:
        async with self.db.session() as session:
            row = await session.get(Activeflow, activeflow_id)
            if row is None:
                return False
            row.variables = {**(row.variables or {}), **values}
            row.tm_update = utcnow()
            await session.commit()
        return True

    async def recover(self, detail: str) -> list[Activeflow]:
        """End every activeflow an earlier boot of this node left running."""
        async with self.db.session() as session:
            ids = (
                (
                    await session.execute(
                        select(Activeflow.id).where(
                            self.owner.left_by_earlier_boot(Activeflow), Activeflow.status == RUNNING
                        )
                    )
                )
                .scalars()
                .all()
            )
        ended = [row for aid in ids if (row := await self.end_stored(aid, detail)) is not None]
        if ended:
            log.warning("ended %d activeflows left running by an earlier boot", len(ended))
        return ended
