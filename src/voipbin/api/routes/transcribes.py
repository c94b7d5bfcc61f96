"""``/v1.0/transcribes`` (live transcription of calls) and ``/v1.0/transcripts`` (their utterances)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from voipbin.api.deps import (
    CallManagerDep,
    CallRecordsDep,
    DbDep,
    PageDep,
    PrincipalDep,
    TranscribesDep,
    parse_id,
)
from voipbin.api.errors import ApiError, check_owned
from voipbin.api.repo import get_owned, list_page
from voipbin.calls.control import LiveCall
from voipbin.calls.manager import CallManager
from voipbin.store.db import Database
from voipbin.store.tables import Flow, Transcribe, Transcript
from voipbin.transcribe.serialize import transcribe_to_api, transcript_to_api
from voipbin.transcribe.service import TranscribeError, TranscribeService, normalize_language

router = APIRouter(prefix="/v1.0", tags=["transcribes"])
NOT_FOUND = "TRANSCRIBE_NOT_FOUND"


class TranscribeCreate(BaseModel):
    reference_type: Literal["call", "recording", "confbridge"]
    reference_id: uuid.UUID
    language: str = Field(min_length=2, max_length=32)
    direction: Literal["in", "out", "both", ""] = "both"
    provider: Literal["gcp", "aws", ""] = ""
    on_end_flow_id: uuid.UUID | None = None


def live_call(calls: CallManager, call_id: uuid.UUID) -> LiveCall:
    """The live call (with its media) or 409: transcription needs audio flowing."""
    live = calls.live_call(call_id)
    if live is None or live.is_hungup:
        raise ApiError(409, "CALL_ALREADY_HANGUP", "The call is not live.")
    if not live.is_up:
        raise ApiError(409, "CALL_STATE_INVALID", "The call is not answered yet.")
    return live


async def check_flow(db: Database, flow_id: uuid.UUID | None, customer_id: uuid.UUID) -> None:
    if flow_id is not None and flow_id != uuid.UUID(int=0):
        async with db.session() as session:
            await get_owned(session, Flow, flow_id, customer_id, "FLOW_NOT_FOUND")


@router.get("/transcribes", summary="List transcribes")
async def list_transcribes(
    principal: PrincipalDep,
    db: DbDep,
    page: PageDep,
    reference_type: Annotated[str | None, Query()] = None,
    reference_id: Annotated[str | None, Query()] = None,
) -> dict[str, Any]:
    where = []
    if bool(reference_type) != bool(reference_id):
        raise ApiError(
            400, "INVALID_REQUEST_PARAMETER", "Give both reference_type and reference_id, or neither."
        )
    if reference_type and reference_id:
        where = [
            Transcribe.reference_type == reference_type,
            Transcribe.reference_id == parse_id(reference_id, "reference_id"),
        ]
    async with db.session() as session:
        return await list_page(
            session, Transcribe, page, *where, customer_id=principal.customer_id, to_api=transcribe_to_api
        )


@router.get("/transcribes/{transcribe_id}", summary="Get a transcribe")
async def get_transcribe(transcribe_id: str, principal: PrincipalDep, db: DbDep) -> dict[str, Any]:
    async with db.session() as session:
        t = await get_owned(session, Transcribe, parse_id(transcribe_id), principal.customer_id, NOT_FOUND)
        return transcribe_to_api(t)


@router.post("/transcribes", summary="Start transcribing a live call")
async def create_transcribe(
    body: TranscribeCreate,
    principal: PrincipalDep,
    db: DbDep,
    records: CallRecordsDep,
    calls: CallManagerDep,
    service: TranscribesDep,
) -> dict[str, Any]:
    if body.reference_type != "call":
        raise ApiError(
            400, "INVALID_ARGUMENT", f"Transcribing a {body.reference_type} is not supported yet; use call.",
            details=[{"field": "reference_type"}],
        )  # fmt: skip
    check_owned(await records.get(body.reference_id), principal.customer_id, "CALL_NOT_FOUND")
    await check_flow(db, body.on_end_flow_id, principal.customer_id)
    live = live_call(calls, body.reference_id)
    language = normalize_language(body.language)
    if service.for_call(principal.customer_id, body.reference_id, language) is not None:
        raise ApiError(409, "STATE_INVALID", "The call is already being transcribed in this language.")
    try:
        row = await service.start_call(
            principal.customer_id,
            body.reference_id,
            live.media,
            language=language,
            direction=body.direction or "both",
            hangup=live.wait_hangup,
            on_end_flow_id=body.on_end_flow_id,
            provider=body.provider,
        )
    except TranscribeError as exc:
        raise ApiError(400, "INVALID_ARGUMENT", str(exc), details=[{"field": "language"}]) from None
    return transcribe_to_api(row)


async def _stop(db: Database, service: TranscribeService, principal: Any, transcribe_id: str) -> uuid.UUID:
    tid = parse_id(transcribe_id)
    async with db.session() as session:
        await get_owned(session, Transcribe, tid, principal.customer_id, NOT_FOUND)
    await service.stop(tid)
    return tid


@router.post("/transcribes/{transcribe_id}/stop", summary="Stop a transcribe (idempotent)")
async def stop_transcribe(
    transcribe_id: str, principal: PrincipalDep, db: DbDep, service: TranscribesDep
) -> dict[str, Any]:
    tid = await _stop(db, service, principal, transcribe_id)
    async with db.session() as session:
        return transcribe_to_api(await get_owned(session, Transcribe, tid, principal.customer_id, NOT_FOUND))


@router.delete("/transcribes/{transcribe_id}", summary="Delete a transcribe (stops it first)")
async def delete_transcribe(
    transcribe_id: str, principal: PrincipalDep, db: DbDep, service: TranscribesDep
) -> dict[str, Any]:
    tid = await _stop(db, service, principal, transcribe_id)
    t = await service.soft_delete(tid)  # ownership checked by _stop
    assert t is not None
    return transcribe_to_api(t)


@router.get("/transcripts", summary="List a transcribe's transcripts")
async def list_transcripts(
    principal: PrincipalDep,
    db: DbDep,
    page: PageDep,
    transcribe_id: Annotated[str | None, Query()] = None,
) -> dict[str, Any]:
    if not transcribe_id:
        raise ApiError(
            400,
            "MISSING_REQUEST_PARAMETER",
            "transcribe_id is required.",
            details=[{"field": "transcribe_id"}],
        )
    tid = parse_id(transcribe_id, "transcribe_id")
    async with db.session() as session:
        await get_owned(session, Transcribe, tid, principal.customer_id, NOT_FOUND)
        return await list_page(
            session,
            Transcript,
            page,
            Transcript.transcribe_id == tid,
            customer_id=principal.customer_id,
            to_api=transcript_to_api,
        )
