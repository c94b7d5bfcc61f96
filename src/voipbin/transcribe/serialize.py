"""Rows -> VoIPBIN JSON shapes for transcribes, transcripts and AI summaries (fact sheet §4.9, §5)."""

from __future__ import annotations

from typing import Any

from voipbin.serialize import timestamps, ts, uid
from voipbin.store.tables import Summary, Transcribe, Transcript


def offset_to_tm_transcript(offset_ms: int) -> str:
    """VoIPBIN encodes the offset from the transcribe's start as a time on 0001-01-01."""
    ms = max(0, int(offset_ms))
    seconds, millis = divmod(ms, 1000)
    minutes, sec = divmod(seconds, 60)
    hours, minute = divmod(minutes, 60)
    days, hour = divmod(hours, 24)
    return f"0001-01-{1 + min(days, 30):02d}T{hour:02d}:{minute:02d}:{sec:02d}.{millis * 1000:06d}Z"


def transcribe_to_api(t: Transcribe) -> dict[str, Any]:
    return {
        "id": uid(t.id),
        "customer_id": uid(t.customer_id),
        "activeflow_id": uid(t.activeflow_id),
        "on_end_flow_id": uid(t.on_end_flow_id),
        "reference_type": t.reference_type,
        "reference_id": uid(t.reference_id),
        "status": t.status,
        "language": t.language,
        "direction": t.direction,
        "provider": t.provider,
        **timestamps(t),
    }


def transcript_to_api(t: Transcript) -> dict[str, Any]:
    return {
        "id": uid(t.id),
        "customer_id": uid(t.customer_id),
        "transcribe_id": uid(t.transcribe_id),
        "direction": t.direction,
        "message": t.message,
        "tm_transcript": offset_to_tm_transcript(t.offset_ms),
        "tm_create": ts(t.tm_create),
    }


def summary_to_api(s: Summary) -> dict[str, Any]:
    return {
        "id": uid(s.id),
        "customer_id": uid(s.customer_id),
        "activeflow_id": uid(s.activeflow_id),
        "on_end_flow_id": uid(s.on_end_flow_id),
        "reference_type": s.reference_type,
        "reference_id": uid(s.reference_id),
        "status": s.status,
        "language": s.language,
        "content": s.content,
        **timestamps(s),
    }
