"""The owner of the ``calls`` and ``groupcalls`` tables: creation with defaults, status changes, finishing.

Every other module changes calls through :class:`CallRecords`. A call that is live on this node is held in
memory (``live``) and is the authority for ``GET /calls/{id}``; the row is written when something that
matters changes (creation, status, recordings, the final hangup), not on every flow step. Small changes
(the action being executed, the activeflow id) are kept in memory and written with the next status change.
Serialization to VoIPBIN's JSON lives here, beside the model.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Sequence
from functools import partial
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from voipbin.billing.calls import charge_call, cost_type
from voipbin.calls.state import Status, can_transition, hangup_by
from voipbin.events.bus import EventBus
from voipbin.serialize import timestamps, uid
from voipbin.store.db import Database
from voipbin.store.owner import NodeOwner
from voipbin.store.tables import ZERO_UUID, Call, Groupcall
from voipbin.store.types import creation_time, utcnow
from voipbin.store.writer import WriteBehind

log = logging.getLogger(__name__)
LIVE_STATUSES = (Status.DIALING, Status.RINGING, Status.PROGRESSING, Status.TERMINATING, Status.CANCELING)


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


# Columns by attribute name (``metadata_`` is the ``metadata`` column).
_COLUMNS = {attr.key: attr for attr in Call.__mapper__.column_attrs}
_INSERT = insert(Call)  # one statement object: the group commit inserts many calls in one executemany
# A live call's row is written whole from its in-memory state (this node owns it): one compiled
# statement for every change, batched as one executemany, and a call changed several times within one
# group commit is written once.
_STATE = [(key, attr.columns[0].name) for key, attr in _COLUMNS.items() if key != "id"]
_UPDATE_LIVE = (
    update(Call)
    .where(Call.id == bindparam("k_id"))
    .values({column: bindparam(f"v_{column}") for _, column in _STATE})
    .execution_options(synchronize_session=False)
)


def _row(c: Call) -> dict[str, Any]:
    return {attr.columns[0].name: getattr(c, key) for key, attr in _COLUMNS.items()}


def _rows(c: Call) -> list[dict[str, Any]]:
    return [_row(c)]


def _state_params(c: Call) -> list[dict[str, Any]]:
    params = {f"v_{column}": getattr(c, key) for key, column in _STATE}
    params["k_id"] = c.id
    return [params]


class CallRecords:
    """Calls and groupcalls of one node; ``owner`` stamps the rows this boot creates."""

    def __init__(
        self, db: Database, writer: WriteBehind, events: EventBus, owner: NodeOwner, *, rate_per_minute: int
    ) -> None:
        self.db = db
        self.writer = writer
        self.events = events
        self.owner = owner
        self.rate_per_minute = rate_per_minute
        self._live: dict[uuid.UUID, Call] = {}
        self._finishing: dict[uuid.UUID, asyncio.Future[Any]] = {}  # hangups not yet committed

    # -- creation ------------------------------------------------------------------------------------
    def new_call(
        self,
        customer_id: uuid.UUID,
        *,
        source: dict[str, Any],
        destination: dict[str, Any],
        direction: str,
        status: str = Status.DIALING,
        type: str = "flow",
        flow_id: uuid.UUID = ZERO_UUID,
        master_call_id: uuid.UUID = ZERO_UUID,
        groupcall_id: uuid.UUID = ZERO_UUID,
        variables: dict[str, str] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Call:
        """A call row with every default in one place (not yet stored: see :meth:`add`)."""
        now = utcnow()
        return Call(
            id=uuid.uuid4(),
            customer_id=customer_id,
            owner_type="",
            owner_id=ZERO_UUID,
            flow_id=flow_id,
            activeflow_id=ZERO_UUID,
            type=type,
            master_call_id=master_call_id,
            chained_call_ids=[],
            recording_id=ZERO_UUID,
            recording_ids=[],
            groupcall_id=groupcall_id,
            source=dict(source),
            destination=dict(destination),
            status=str(status),
            action={},
            metadata_=dict(metadata or {}),
            direction=direction,
            mute_direction="",
            hangup_by="",
            hangup_reason="",
            variables=dict(variables or {}),
            tm_ringing=now if status == Status.RINGING else None,
            tm_progressing=None,
            tm_hangup=None,
            tm_create=creation_time(),
            tm_update=None,
            tm_delete=None,
            **self.owner.stamp(),
        )

    async def add(self, calls: Sequence[Call], *, master_id: uuid.UUID | None = None) -> None:
        """Store new calls (the master call lists them as chained) and publish ``call_created`` and the
        first status of each. They are live on this node from now on."""
        # Keyed and read when the batch runs: a call that changes before its group commit is inserted
        # with its latest state.
        inserted = [self.writer.submit(_INSERT, partial(_rows, c), key=c.id) for c in calls]
        for c in calls:  # in the same tick: the events' outbox rows join the inserts' transaction
            self._live[c.id] = c
            self.publish(c, "call_created")
            self.publish(c, f"call_{c.status}")
        try:
            await asyncio.gather(*inserted)
        except BaseException:
            for c in calls:
                self._live.pop(c.id, None)
            raise
        if master_id is not None:
            master = await self.get(master_id)
            if master is not None:
                chained = [*(master.chained_call_ids or []), *(str(c.id) for c in calls)]
                await self.update(master_id, chained_call_ids=chained)

    # -- reading -------------------------------------------------------------------------------------
    def live(self, call_id: uuid.UUID) -> Call | None:
        return self._live.get(call_id)

    def live_by_status(self) -> dict[str, int]:
        """How many calls live on this node are in each status (read by the metrics)."""
        counts: dict[str, int] = {}
        for c in self._live.values():
            counts[c.status] = counts.get(c.status, 0) + 1
        return counts

    async def get(self, call_id: uuid.UUID) -> Call | None:
        """The live state if the call is live here, else the stored row."""
        c = self._live.get(call_id)
        if c is not None:
            finishing = self._finishing.get(call_id)
            if finishing is not None and c.status == Status.HANGUP:
                # Read-your-writes: whoever sees the hangup also finds its charge in the ledger.
                with contextlib.suppress(Exception):
                    await asyncio.shield(finishing)
            return c
        async with self.db.session() as session:
            return await session.get(Call, call_id)

    async def get_owned(self, call_id: uuid.UUID, customer_id: uuid.UUID | None) -> Call | None:
        """The call if it exists, is not deleted and belongs to ``customer_id`` (None: any customer)."""
        c = await self.get(call_id)
        if c is None or c.tm_delete is not None or (customer_id is not None and c.customer_id != customer_id):
            return None
        return c

    # -- changes -------------------------------------------------------------------------------------
    def publish(self, c: Call, event: str) -> None:
        # Serialized only if someone receives the event (at once: a snapshot of this moment).
        self.events.publish(c.customer_id, event, partial(call_to_api, c))

    def note(self, call_id: uuid.UUID, **values: Any) -> Call | None:
        """Change a live call in memory only; its row is written whole with its next persisted change
        (or the hangup)."""
        c = self._live.get(call_id)
        if c is None:
            return None
        for key, value in values.items():
            setattr(c, key, value)
        return c

    def set_action(self, call_id: uuid.UUID, action: dict[str, Any]) -> None:
        """The action the call's flow is executing (VoIPBIN's ``call.action``): memory + ``call_updated``."""
        c = self.note(call_id, action=action, tm_update=utcnow())
        if c is not None:
            self.publish(c, "call_updated")

    async def update(self, call_id: uuid.UUID, **values: Any) -> Call | None:
        """Persist field changes (recording ids, metadata...) of a call; returns the changed call."""
        values["tm_update"] = utcnow()
        c = self._live.get(call_id)
        if c is None:
            async with self.db.session() as session:
                row = await session.get(Call, call_id)
                if row is None:
                    return None
                for key, value in values.items():
                    setattr(row, key, value)
                await session.commit()
            return row
        for key, value in values.items():
            setattr(c, key, value)
        await self._write(c)
        return c

    async def merge_metadata(self, call_id: uuid.UUID, **items: Any) -> Call | None:
        c = await self.get(call_id)
        if c is None:
            return None
        return await self.update(call_id, metadata_={**(c.metadata_ or {}), **items})

    async def _write(self, c: Call) -> None:
        """Persist a live call's state (its whole row), in order; no compare-and-set: this node owns
        the call."""
        await self.writer.write(_UPDATE_LIVE, partial(_state_params, c), key=c.id)

    def _update_statement(self, call_id: uuid.UUID, values: dict[str, Any], expected: str | None) -> Any:
        """UPDATE ... [WHERE status = expected] of a stored (not live) call."""
        columns = {_COLUMNS[k].columns[0].name: v for k, v in values.items()}
        stmt = update(Call).where(Call.id == call_id)
        if expected is not None:
            stmt = stmt.where(Call.status == expected)
        return stmt.values(columns).execution_options(synchronize_session=False)

    async def _hangup_and_charge(self, c: Call, conn: AsyncConnection) -> None:
        await conn.execute(_UPDATE_LIVE, _state_params(c))
        session = AsyncSession(bind=conn, expire_on_commit=False)
        try:
            await charge_call(session, c, self.rate_per_minute)
            await session.flush()
        finally:
            await session.close()

    async def _update_row(
        self, session: Any, call_id: uuid.UUID, values: dict[str, Any], expected: str | None
    ) -> bool:
        result = await session.execute(self._update_statement(call_id, values, expected))
        return bool(result.rowcount == 1)

    async def set_status(self, call_id: uuid.UUID, new: str, **fields: Any) -> Call | None:
        """Move a call to ``new`` if the state machine allows it (compare-and-set); ``call_<status>``."""
        c = self._live.get(call_id)
        if c is None:
            return await self._set_status_stored(call_id, new, fields)
        if not can_transition(c.status, new):
            return None
        now = utcnow()
        values: dict[str, Any] = {"status": str(new), "tm_update": now, **fields}
        if new == Status.RINGING:
            values["tm_ringing"] = now
        elif new == Status.PROGRESSING:
            values["tm_progressing"] = now
        # Memory first: the owner's state is the authority, so a racing change sees the new status at once
        # (this is the compare-and-set of a live call); the row follows in the same order.
        for key, value in values.items():
            setattr(c, key, value)
        stored = self.writer.submit(_UPDATE_LIVE, partial(_state_params, c), key=c.id)
        self.publish(c, f"call_{new}")  # its outbox row joins the status change's transaction
        await stored
        return c

    async def _set_status_stored(self, call_id: uuid.UUID, new: str, fields: dict[str, Any]) -> Call | None:
        """A call not live here (an earlier boot's, or never dialed): compare-and-set on the row."""
        for _ in range(5):
            async with self.db.session() as session:
                c = await session.get(Call, call_id)
                if c is None or not can_transition(c.status, new):
                    return None
                values: dict[str, Any] = {"status": str(new), "tm_update": utcnow(), **fields}
                if not await self._update_row(session, call_id, values, c.status):
                    await session.rollback()
                    continue
                await session.commit()
                await session.refresh(c)
            self.publish(c, f"call_{new}")
            return c
        return None

    async def finish(
        self,
        call_id: uuid.UUID,
        *,
        reason: str,
        by: str | None = None,
        detail: str = "",
        rtp: dict[str, Any] | None = None,
    ) -> Call | None:
        """Final ``hangup`` with reason, charged in the same transaction; idempotent."""
        for _ in range(5):
            live = self._live.get(call_id)
            c = live
            if c is None:
                async with self.db.session() as session:
                    c = await session.get(Call, call_id)
                if c is None:
                    return None
            if c.status == Status.HANGUP:
                self._live.pop(call_id, None)
                return c
            now = utcnow()
            metadata = dict(c.metadata_ or {})
            if detail:
                metadata["hangup_detail"] = detail
            if rtp is not None:
                metadata["rtp"] = rtp
            expected = c.status
            values = {
                "hangup_by": by or hangup_by(c.status),
                "hangup_reason": reason,
                "status": Status.HANGUP.value,
                "tm_hangup": now,
                "tm_update": now,
                "metadata_": metadata,
            }
            for key, value in values.items():
                setattr(c, key, value)
            if live is not None:
                if cost_type(c) is None or c.tm_progressing is None:
                    # Nothing to charge: group-committed.
                    stored = self.writer.submit(_UPDATE_LIVE, partial(_state_params, c), key=c.id)
                else:
                    # The hangup and its charge in one transaction, in order with the call's writes.
                    stored = self.writer.run(partial(self._hangup_and_charge, c))
                self.publish(c, "call_hangup")  # its outbox row joins the hangup's transaction
                committed = self._finishing[call_id] = asyncio.ensure_future(stored)
                try:
                    await committed
                finally:
                    self._finishing.pop(call_id, None)
                    self._live.pop(call_id, None)
                return c
            async with self.db.session() as session:
                if not await self._update_row(session, call_id, values, expected):
                    await session.rollback()
                    continue  # the stored row changed under us: re-read and try again
                await charge_call(session, c, self.rate_per_minute)
                # Its outbox rows commit with the hangup (recovery after a crash comes this way).
                self.events.publish(c.customer_id, "call_hangup", partial(call_to_api, c), session=session)
                await session.commit()
            return c
        return None

    async def soft_delete(self, c: Call) -> Call:
        now = utcnow()
        c.tm_delete = now
        c.tm_update = now
        async with self.db.session() as session:
            await session.execute(
                update(Call)
                .where(Call.id == c.id)
                .values(tm_delete=now, tm_update=now)
                .execution_options(synchronize_session=False)
            )
            self.events.publish(c.customer_id, "call_deleted", partial(call_to_api, c), session=session)
            await session.commit()
        return c

    # -- crash recovery ------------------------------------------------------------------------------
    async def recover(self, detail: str) -> list[Call]:
        """Hang up (reason ``failed``) every call an earlier boot of this node left live."""
        async with self.db.session() as session:
            rows = (
                (
                    await session.execute(
                        select(Call).where(
                            self.owner.left_by_earlier_boot(Call),
                            Call.status.in_([str(s) for s in LIVE_STATUSES]),
                        )
                    )
                )
                .scalars()
                .all()
            )
        ended = []
        for row in rows:
            done = await self.finish(row.id, reason="failed", by="local", detail=detail)
            if done is not None:
                ended.append(done)
        groups = await self._recover_groupcalls()
        if rows or groups:
            log.warning("ended %d calls and %d groupcalls left live by an earlier boot", len(rows), groups)
        return ended

    async def _recover_groupcalls(self) -> int:
        async with self.db.session() as session:
            groups = (
                (
                    await session.execute(
                        select(Groupcall).where(
                            self.owner.left_by_earlier_boot(Groupcall), Groupcall.status != "hangup"
                        )
                    )
                )
                .scalars()
                .all()
            )
            for g in groups:
                g.status = "hangup"
                g.tm_update = utcnow()
            await session.commit()
        for g in groups:
            self.publish_group(g, "groupcall_hangup")
        return len(groups)

    # -- groupcalls ----------------------------------------------------------------------------------
    def new_groupcall(
        self,
        customer_id: uuid.UUID,
        *,
        source: dict[str, Any],
        destinations: list[dict[str, Any]],
        flow_id: uuid.UUID = ZERO_UUID,
    ) -> Groupcall:
        return Groupcall(
            id=uuid.uuid4(),
            customer_id=customer_id,
            owner_type="",
            owner_id=ZERO_UUID,
            status="progressing",
            flow_id=flow_id,
            source=dict(source),
            destinations=list(destinations),
            master_call_id=ZERO_UUID,
            ring_method="ring_all",
            answer_method="hangup_others",
            answer_call_id=ZERO_UUID,
            call_ids=[],
            **self.owner.stamp(),
        )

    async def add_groupcalls(self, groups: Sequence[Groupcall]) -> None:
        async with self.db.session() as session:
            session.add_all(groups)
            await session.commit()
        for g in groups:
            self.publish_group(g, "groupcall_created")

    async def get_groupcall(self, groupcall_id: uuid.UUID) -> Groupcall | None:
        async with self.db.session() as session:
            return await session.get(Groupcall, groupcall_id)

    async def update_groupcall(
        self, groupcall_id: uuid.UUID, event: str | None = None, **values: Any
    ) -> None:
        async with self.db.session() as session:
            g = await session.get(Groupcall, groupcall_id)
            if g is None:
                return
            for key, value in values.items():
                setattr(g, key, value)
            g.tm_update = utcnow()
            await session.commit()
        if event:
            self.publish_group(g, event)

    def publish_group(self, g: Groupcall, event: str) -> None:
        self.events.publish(g.customer_id, event, partial(groupcall_to_api, g))
