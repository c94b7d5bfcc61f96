"""``/v1.0/recordings`` (list/get/delete), the WAV file itself, and recording control on live calls."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from voipbin.api.deps import PageDep, PlatformDep, PrincipalDep, parse_id
from voipbin.api.errors import ApiError
from voipbin.api.repo import get_owned, list_page, soft_delete
from voipbin.flow.interfaces import CallHungUp, RecordingRequest
from voipbin.platform import Platform
from voipbin.serialize import timestamps, uid
from voipbin.store.tables import Call, Recording

router = APIRouter(prefix="/v1.0", tags=["recordings"])
NOT_FOUND = "RECORDING_NOT_FOUND"


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


@router.get("/recordings", summary="List recordings")
async def list_recordings(principal: PrincipalDep, platform: PlatformDep, page: PageDep) -> dict[str, Any]:
    async with platform.db.session() as session:
        return await list_page(
            session, Recording, page, customer_id=principal.customer_id, to_api=recording_to_api
        )


@router.get("/recordings/{recording_id}", summary="Get a recording")
async def get_recording(recording_id: str, principal: PrincipalDep, platform: PlatformDep) -> dict[str, Any]:
    async with platform.db.session() as session:
        r = await get_owned(session, Recording, parse_id(recording_id), principal.customer_id, NOT_FOUND)
        return recording_to_api(r)


@router.delete("/recordings/{recording_id}", summary="Delete a recording and its file")
async def delete_recording(
    recording_id: str, principal: PrincipalDep, platform: PlatformDep
) -> dict[str, Any]:
    async with platform.db.session() as session:
        r = await get_owned(session, Recording, parse_id(recording_id), principal.customer_id, NOT_FOUND)
        if r.status == "recording":
            raise ApiError(409, "RECORDING_ALREADY_ACTIVE", "Stop the recording before deleting it.")
        soft_delete(r)
        await session.commit()
    if r.filename:
        await asyncio.to_thread(Path(r.filename).unlink, missing_ok=True)
    return recording_to_api(r)


async def _recording_file(platform: Platform, principal: Any, recording_id: str) -> FileResponse:
    async with platform.db.session() as session:
        r = await get_owned(session, Recording, parse_id(recording_id), principal.customer_id, NOT_FOUND)
    if r.status == "recording":
        raise ApiError(409, "RECORDING_ALREADY_ACTIVE", "The recording is still in progress.")
    path = Path(r.filename) if r.filename else None
    if path is None or not path.is_file():
        raise ApiError(404, NOT_FOUND, "The recording file is not available.")
    return FileResponse(path, media_type="audio/wav", filename=f"{r.id}.wav")


@router.get("/recordings/{recording_id}/file", summary="Download a recording (WAV)", response_model=None)
async def recording_file(recording_id: str, principal: PrincipalDep, platform: PlatformDep) -> FileResponse:
    return await _recording_file(platform, principal, recording_id)


@router.get(
    "/recordingfiles/{recording_id}", summary="Download a recording (VoIPBIN path)", response_model=None
)
async def recordingfile(recording_id: str, principal: PrincipalDep, platform: PlatformDep) -> FileResponse:
    return await _recording_file(platform, principal, recording_id)


class RecordingStart(BaseModel):
    format: Literal["wav"] = "wav"
    end_of_silence: int = Field(default=0, ge=0, le=3600)
    end_of_key: Literal["", "none", "any", "*", "#"] = ""
    duration: int = Field(default=0, ge=0, le=86_400)
    beep_start: bool = False
    on_end_flow_id: uuid.UUID | None = None


def _live(platform: Platform, call_id: uuid.UUID) -> Any:
    live = getattr(platform.calls, "live", {}).get(call_id)
    if live is None or not live.is_up:
        raise ApiError(409, "CALL_STATE_INVALID", "The call is not answered and live.")
    return live


@router.post("/calls/{call_id}/recording_start", summary="Start recording a live call")
async def call_recording_start(
    call_id: str, body: RecordingStart, principal: PrincipalDep, platform: PlatformDep
) -> dict[str, Any]:
    cid = parse_id(call_id)
    async with platform.db.session() as session:
        await get_owned(session, Call, cid, principal.customer_id, "CALL_NOT_FOUND")
    live = _live(platform, cid)
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
    async with platform.db.session() as session:
        return recording_to_api(await get_owned(session, Recording, rec_id, principal.customer_id, NOT_FOUND))


@router.post("/calls/{call_id}/recording_stop", summary="Stop recording a live call")
async def call_recording_stop(call_id: str, principal: PrincipalDep, platform: PlatformDep) -> dict[str, Any]:
    cid = parse_id(call_id)
    async with platform.db.session() as session:
        call = await get_owned(session, Call, cid, principal.customer_id, "CALL_NOT_FOUND")
        rec_id = call.recording_id
    live = _live(platform, cid)
    if not live.recording_active:
        raise ApiError(409, "RECORDING_NOT_ACTIVE", "The call is not being recorded.")
    await live.recording_stop()
    async with platform.db.session() as session:
        return recording_to_api(await get_owned(session, Recording, rec_id, principal.customer_id, NOT_FOUND))
