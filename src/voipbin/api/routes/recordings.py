"""``/v1.0/recordings`` (list/get/delete), the WAV file itself, and recording control on live calls."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from voipbin.api.deps import (
    CallManagerDep,
    CallRecordsDep,
    DbDep,
    PageDep,
    PrincipalDep,
    RecordingsDep,
    parse_id,
)
from voipbin.api.errors import ApiError, check_owned
from voipbin.api.repo import get_owned, list_page
from voipbin.calls.control import LiveCall
from voipbin.calls.manager import CallManager
from voipbin.calls.recordings import recording_to_api
from voipbin.flow.interfaces import CallHungUp, RecordingRequest
from voipbin.store.db import Database
from voipbin.store.tables import Recording

router = APIRouter(prefix="/v1.0", tags=["recordings"])
NOT_FOUND = "RECORDING_NOT_FOUND"


@router.get("/recordings", summary="List recordings")
async def list_recordings(principal: PrincipalDep, db: DbDep, page: PageDep) -> dict[str, Any]:
    async with db.session() as session:
        return await list_page(
            session, Recording, page, customer_id=principal.customer_id, to_api=recording_to_api
        )


@router.get("/recordings/{recording_id}", summary="Get a recording")
async def get_recording(recording_id: str, principal: PrincipalDep, db: DbDep) -> dict[str, Any]:
    async with db.session() as session:
        r = await get_owned(session, Recording, parse_id(recording_id), principal.customer_id, NOT_FOUND)
        return recording_to_api(r)


@router.delete("/recordings/{recording_id}", summary="Delete a recording and its file")
async def delete_recording(
    recording_id: str, principal: PrincipalDep, db: DbDep, recordings: RecordingsDep
) -> dict[str, Any]:
    async with db.session() as session:
        r = await get_owned(session, Recording, parse_id(recording_id), principal.customer_id, NOT_FOUND)
    if r.status == "recording":
        raise ApiError(409, "RECORDING_ALREADY_ACTIVE", "Stop the recording before deleting it.")
    return recording_to_api(await recordings.soft_delete(r))


async def _recording_file(db: Database, principal: Any, recording_id: str) -> FileResponse:
    async with db.session() as session:
        r = await get_owned(session, Recording, parse_id(recording_id), principal.customer_id, NOT_FOUND)
    if r.status == "recording":
        raise ApiError(409, "RECORDING_ALREADY_ACTIVE", "The recording is still in progress.")
    path = Path(r.filename) if r.filename else None
    if path is None or not path.is_file():
        raise ApiError(404, NOT_FOUND, "The recording file is not available.")
    return FileResponse(path, media_type="audio/wav", filename=f"{r.id}.wav")


@router.get("/recordings/{recording_id}/file", summary="Download a recording (WAV)", response_model=None)
async def recording_file(recording_id: str, principal: PrincipalDep, db: DbDep) -> FileResponse:
    return await _recording_file(db, principal, recording_id)


@router.get(
    "/recordingfiles/{recording_id}", summary="Download a recording (VoIPBIN path)", response_model=None
)
async def recordingfile(recording_id: str, principal: PrincipalDep, db: DbDep) -> FileResponse:
    return await _recording_file(db, principal, recording_id)


class RecordingStart(BaseModel):
    format: Literal["wav"] = "wav"
    end_of_silence: int = Field(default=0, ge=0, le=3600)
    end_of_key: Literal["", "none", "any", "*", "#"] = ""
    duration: int = Field(default=0, ge=0, le=86_400)
    beep_start: bool = False
    on_end_flow_id: uuid.UUID | None = None


def _live(calls: CallManager, call_id: uuid.UUID) -> LiveCall:
    live = calls.live_call(call_id)
    if live is None or not live.is_up:
        raise ApiError(409, "CALL_STATE_INVALID", "The call is not answered and live.")
    return live


@router.post("/calls/{call_id}/recording_start", summary="Start recording a live call")
async def call_recording_start(
    call_id: str,
    body: RecordingStart,
    principal: PrincipalDep,
    db: DbDep,
    records: CallRecordsDep,
    calls: CallManagerDep,
) -> dict[str, Any]:
    cid = parse_id(call_id)
    check_owned(await records.get(cid), principal.customer_id, "CALL_NOT_FOUND")
    live = _live(calls, cid)
    try:
        rec_id = await live.recording_start(
            RecordingRequest(
                format=body.format,
                end_of_silence=body.end_of_silence,
                end_of_key=body.end_of_key,
                duration=body.duration,
                beep_start=body.beep_start,
                on_end_flow_id=body.on_end_flow_id,
            )
        )
    except CallHungUp:
        raise ApiError(409, "CALL_STATE_INVALID", "The call ended.") from None
    async with db.session() as session:
        return recording_to_api(await get_owned(session, Recording, rec_id, principal.customer_id, NOT_FOUND))


@router.post("/calls/{call_id}/recording_stop", summary="Stop recording a live call")
async def call_recording_stop(
    call_id: str, principal: PrincipalDep, db: DbDep, records: CallRecordsDep, calls: CallManagerDep
) -> dict[str, Any]:
    cid = parse_id(call_id)
    call = check_owned(await records.get(cid), principal.customer_id, "CALL_NOT_FOUND")
    rec_id = call.recording_id
    live = _live(calls, cid)
    if not live.recording_active:
        raise ApiError(409, "RECORDING_NOT_ACTIVE", "The call is not being recorded.")
    await live.recording_stop()
    async with db.session() as session:
        return recording_to_api(await get_owned(session, Recording, rec_id, principal.customer_id, NOT_FOUND))
