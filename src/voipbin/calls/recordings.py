"""The owner of the ``recordings`` table and of the recordings running on this node's call legs.

A recording is a row (``recording`` → ``ended``), a WAV file under ``<data_dir>/recordings`` written by
the leg's media session, and the call's ``recording_id``/``recording_ids``. After a crash, the recordings
an earlier boot left ``recording`` are ended and their WAV headers repaired, so the audio written so far
plays. Serialization to VoIPBIN's JSON lives here, beside the model.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import select

from voipbin.calls.leg import CallLeg
from voipbin.calls.records import CallRecords
from voipbin.events.bus import EventBus
from voipbin.flow.interfaces import RecordingRequest
from voipbin.media.wav import repair_wav
from voipbin.serialize import timestamps, uid
from voipbin.store.db import Database
from voipbin.store.owner import NodeOwner
from voipbin.store.tables import ZERO_UUID, Recording
from voipbin.store.types import utcnow

log = logging.getLogger(__name__)


def recording_to_api(r: Recording) -> dict[str, Any]:
    return {
        "id": uid(r.id),
        "customer_id": uid(r.customer_id),
        "owner_type": r.owner_type,
        "owner_id": uid(r.owner_id),
        "reference_type": r.reference_type,
        "reference_id": uid(r.reference_id),
        "status": r.status,
        "format": r.format,
        "activeflow_id": uid(r.activeflow_id),
        "on_end_flow_id": uid(r.on_end_flow_id),
        "filenames": [f"{r.id}.wav"] if r.filename else [],
        **timestamps(r, "tm_start", "tm_end"),
    }


class Recordings:
    def __init__(
        self, db: Database, events: EventBus, calls: CallRecords, owner: NodeOwner, directory: Path
    ) -> None:
        self.db = db
        self.events = events
        self.calls = calls
        self.owner = owner
        self.directory = directory
        self._timers: dict[uuid.UUID, asyncio.Task[None]] = {}

    async def start(self, leg: CallLeg, request: RecordingRequest) -> uuid.UUID:
        """Start recording ``leg`` (stopping a recording it already has); returns the recording id."""
        leg.require_up()
        if leg.recording_id is not None:
            await self.stop(leg)
        rec_id = uuid.uuid4()
        self.directory.mkdir(parents=True, exist_ok=True)
        rec = Recording(
            id=rec_id,
            customer_id=leg.customer_id,
            owner_type="",
            owner_id=ZERO_UUID,
            reference_type="call",
            reference_id=leg.call_id,
            status="recording",
            format="wav",
            direction="both",
            activeflow_id=request.activeflow_id or ZERO_UUID,
            on_end_flow_id=request.on_end_flow_id or ZERO_UUID,
            filename=str((self.directory / f"{rec_id}.wav").resolve()),
            tm_start=utcnow(),
            **self.owner.stamp(),
        )
        async with self.db.session() as session:
            session.add(rec)
            await session.commit()
        call = await self.calls.get(leg.call_id)
        ids = [*((call.recording_ids if call else None) or []), str(rec_id)]
        await self.calls.update(leg.call_id, recording_id=rec_id, recording_ids=ids)
        await leg.media.record_start(rec.filename, direction="both")
        leg.recording_id = rec_id
        self.events.publish(leg.customer_id, "recording_started", recording_to_api(rec))
        if request.duration:
            self._timers[rec_id] = asyncio.create_task(self._stop_after(leg, rec_id, request.duration))
        return rec_id

    async def _stop_after(self, leg: CallLeg, rec_id: uuid.UUID, seconds: float) -> None:
        await asyncio.sleep(seconds)
        if leg.recording_id == rec_id:
            await self.stop(leg)

    async def stop(self, leg: CallLeg) -> None:
        """Stop the leg's recording (no-op without one): close the file, end the row."""
        rec_id, leg.recording_id = leg.recording_id, None
        if rec_id is None:
            return
        timer = self._timers.pop(rec_id, None)
        if timer is not None and timer is not asyncio.current_task():
            timer.cancel()
        with contextlib.suppress(Exception):
            await leg.media.record_stop()
        await self.finish(rec_id)

    async def finish(self, rec_id: uuid.UUID) -> Recording | None:
        async with self.db.session() as session:
            rec = await session.get(Recording, rec_id)
            if rec is None or rec.status == "ended":
                return rec
            rec.status = "ended"
            rec.tm_end = utcnow()
            rec.tm_update = rec.tm_end
            # Its outbox rows commit with the change (recovery after a crash comes this way).
            self.events.publish(rec.customer_id, "recording_finished", recording_to_api(rec), session=session)
            await session.commit()
        return rec

    async def soft_delete(self, rec: Recording) -> Recording:
        """Delete an ended recording and its file."""
        now = utcnow()
        async with self.db.session() as session:
            row = await session.get(Recording, rec.id)
            if row is not None:
                row.tm_update = row.tm_delete = now
                self.events.publish(
                    row.customer_id, "recording_deleted", recording_to_api(row), session=session
                )
                await session.commit()
                rec = row
        if rec.filename:
            await asyncio.to_thread(Path(rec.filename).unlink, missing_ok=True)
        if row is None:
            self.events.publish(rec.customer_id, "recording_deleted", recording_to_api(rec))
        return rec

    async def recover(self) -> list[Recording]:
        """End the recordings an earlier boot of this node left running, repairing their WAV files."""
        async with self.db.session() as session:
            rows = (
                (
                    await session.execute(
                        select(Recording).where(
                            self.owner.left_by_earlier_boot(Recording), Recording.status == "recording"
                        )
                    )
                )
                .scalars()
                .all()
            )
        ended = []
        for row in rows:
            if row.filename:
                try:
                    await asyncio.to_thread(_repair_if_present, row.filename)
                except Exception:
                    log.exception("recording %s: the WAV file could not be repaired", row.id)
            done = await self.finish(row.id)
            if done is not None:
                ended.append(done)
        if ended:
            log.warning("ended %d recordings left running by an earlier boot", len(ended))
        return ended


def _repair_if_present(filename: str) -> None:
    if Path(filename).exists():
        repair_wav(filename)
