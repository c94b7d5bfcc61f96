"""``/v1.0/aisummaries``: AI summaries of transcribes (synchronous) and live calls (finalised at hangup)."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from voipbin.api.deps import (
    CallManagerDep,
    CallRecordsDep,
    DbDep,
    PageDep,
    PrincipalDep,
    SummariesDep,
    parse_id,
)
from voipbin.api.errors import ApiError, check_owned
from voipbin.api.repo import get_owned, list_page
from voipbin.api.routes.transcribes import check_flow, live_call
from voipbin.store.tables import Summary
from voipbin.transcribe.serialize import summary_to_api
from voipbin.transcribe.summary import SummaryError

router = APIRouter(prefix="/v1.0", tags=["aisummaries"])
NOT_FOUND = "SUMMARY_NOT_FOUND"


class SummaryCreate(BaseModel):
    reference_type: Literal["call", "conference", "transcribe", "recording"]
    reference_id: uuid.UUID
    language: str = Field(default="", max_length=32)
    on_end_flow_id: uuid.UUID | None = None
    real_time: bool = False  # seed extension: refresh the content while the call lasts


@router.get("/aisummaries", summary="List AI summaries")
async def list_summaries(principal: PrincipalDep, db: DbDep, page: PageDep) -> dict[str, Any]:
    async with db.session() as session:
        return await list_page(
            session, Summary, page, customer_id=principal.customer_id, to_api=summary_to_api
        )


@router.get("/aisummaries/{summary_id}", summary="Get an AI summary")
async def get_summary(summary_id: str, principal: PrincipalDep, db: DbDep) -> dict[str, Any]:
    async with db.session() as session:
        return summary_to_api(
            await get_owned(session, Summary, parse_id(summary_id), principal.customer_id, NOT_FOUND)
        )


@router.post("/aisummaries", summary="Summarize a transcribe or a live call")
async def create_summary(
    body: SummaryCreate,
    principal: PrincipalDep,
    db: DbDep,
    records: CallRecordsDep,
    calls: CallManagerDep,
    summaries: SummariesDep,
) -> dict[str, Any]:
    await check_flow(db, body.on_end_flow_id, principal.customer_id)
    try:
        if body.reference_type == "transcribe":
            row = await summaries.summarize_transcribe(
                principal.customer_id,
                body.reference_id,
                language=body.language,
                on_end_flow_id=body.on_end_flow_id,
            )
        elif body.reference_type == "call":
            check_owned(await records.get(body.reference_id), principal.customer_id, "CALL_NOT_FOUND")
            found = await summaries.existing(
                principal.customer_id, body.reference_id, body.language or "en-US"
            )
            if found is not None:
                return summary_to_api(found)
            live = live_call(calls, body.reference_id)
            row = await summaries.start_call(
                principal.customer_id,
                body.reference_id,
                live.media,
                live.wait_hangup,
                language=body.language,
                real_time=body.real_time,
                on_end_flow_id=body.on_end_flow_id,
            )
        else:
            raise ApiError(
                400, "INVALID_ARGUMENT", f"Summaries of a {body.reference_type} are not supported yet.",
                details=[{"field": "reference_type"}],
            )  # fmt: skip
    except SummaryError as exc:
        raise ApiError(exc.http_status, exc.reason, str(exc)) from None
    return summary_to_api(row)


@router.delete("/aisummaries/{summary_id}", summary="Delete an AI summary")
async def delete_summary(
    summary_id: str, principal: PrincipalDep, db: DbDep, summaries: SummariesDep
) -> dict[str, Any]:
    sid = parse_id(summary_id)
    async with db.session() as session:
        await get_owned(session, Summary, sid, principal.customer_id, NOT_FOUND)
    row = await summaries.soft_delete(sid)
    assert row is not None
    return summary_to_api(row)
