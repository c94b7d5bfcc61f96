"""/v1.0/transcribes, /v1.0/transcripts and /v1.0/aisummaries (SQLite and PostgreSQL)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.api.support import Api
from tests.calls.support import eventually
from tests.transcribe.support import CALLER, FakeLiveCall, FakeMedia, speech
from voipbin.store.tables import Call


async def live_call(api: Api, monkeypatch: pytest.MonkeyPatch) -> FakeLiveCall:
    """A stored call of the admin customer that the call manager reports live, with media."""
    row = Call(
        customer_id=api.admin.created.customer.id,
        source={"type": "tel", "target": "+15551234567"},
        destination={"type": "tel", "target": "+15559876543"},
        status="progressing",
        direction="outgoing",
        variables={},
        chained_call_ids=[],
        recording_ids=[],
        action={},
    )
    async with api.platform.db.session() as session:
        session.add(row)
        await session.commit()
    live = FakeLiveCall(row.id, FakeMedia())
    monkeypatch.setattr(api.platform.calls, "live_call", {row.id: live}.get)
    return live


def error(r: Any, status: int, reason: str) -> None:
    assert r.status_code == status, r.text
    assert r.json()["error"]["reason"] == reason, r.text


async def test_transcribe_a_live_call_then_summarize_it(tapi: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    caller = await speech(CALLER)
    admin, other = tapi.admin.client, tapi.other.client
    call = await live_call(tapi, monkeypatch)
    body = {
        "reference_type": "call",
        "reference_id": str(call.call_id),
        "language": "en-US",
        "direction": "in",
    }
    r = await admin.post("/v1.0/transcribes", json=body)
    assert r.status_code == 200, r.text
    t = r.json()
    assert t["status"] == "progressing" and t["reference_type"] == "call" and t["direction"] == "in"
    assert t["reference_id"] == str(call.call_id) and t["language"] == "en-US"
    error(await admin.post("/v1.0/transcribes", json=body), 409, "STATE_INVALID")  # one per call+language
    call.media.say("in", caller, silence_after=0.8)
    call.media.start()
    await call.media.drained()
    r = await admin.post(f"/v1.0/transcribes/{t['id']}/stop")
    assert r.status_code == 200 and r.json()["status"] == "done", r.text
    assert (await admin.post(f"/v1.0/transcribes/{t['id']}/stop")).json()["status"] == "done"  # idempotent

    r = await admin.get("/v1.0/transcripts", params={"transcribe_id": t["id"]})
    assert r.status_code == 200, r.text
    (tr,) = r.json()["result"]
    assert set(tr) == {
        "id",
        "customer_id",
        "transcribe_id",
        "direction",
        "message",
        "tm_transcript",
        "tm_create",
    }
    assert tr["direction"] == "in" and "billing" in tr["message"].lower()
    assert tr["tm_transcript"].startswith("0001-01-01T00:00:0") and r.json()["next_page_token"]

    listed = (
        await admin.get(
            "/v1.0/transcribes", params={"reference_type": "call", "reference_id": str(call.call_id)}
        )
    ).json()
    assert [x["id"] for x in listed["result"]] == [t["id"]]
    assert (
        await admin.get(
            "/v1.0/transcribes", params={"reference_type": "call", "reference_id": str(uuid.uuid4())}
        )
    ).json() == {"result": []}
    error(
        await admin.get("/v1.0/transcribes", params={"reference_type": "call"}),
        400,
        "INVALID_REQUEST_PARAMETER",
    )

    r = await admin.post("/v1.0/aisummaries", json={"reference_type": "transcribe", "reference_id": t["id"]})
    assert r.status_code == 200, r.text
    s = r.json()
    assert s["status"] == "done" and s["reference_type"] == "transcribe" and s["language"] == "en-US"
    assert "billing" in s["content"].lower(), s
    again = await admin.post(
        "/v1.0/aisummaries",
        json={"reference_type": "transcribe", "reference_id": t["id"], "language": "en-US"},
    )
    assert again.json()["id"] == s["id"]  # idempotent per (customer, reference, language)
    assert (await admin.get(f"/v1.0/aisummaries/{s['id']}")).json()["content"] == s["content"]
    assert [x["id"] for x in (await admin.get("/v1.0/aisummaries")).json()["result"]] == [s["id"]]

    # tenancy: the other customer sees none of it
    error(await other.get(f"/v1.0/transcribes/{t['id']}"), 404, "TRANSCRIBE_NOT_FOUND")
    error(await other.post(f"/v1.0/transcribes/{t['id']}/stop"), 404, "TRANSCRIBE_NOT_FOUND")
    error(
        await other.get("/v1.0/transcripts", params={"transcribe_id": t["id"]}), 404, "TRANSCRIBE_NOT_FOUND"
    )
    error(await other.get(f"/v1.0/aisummaries/{s['id']}"), 404, "SUMMARY_NOT_FOUND")
    error(await other.delete(f"/v1.0/aisummaries/{s['id']}"), 404, "SUMMARY_NOT_FOUND")
    error(
        await other.post("/v1.0/aisummaries", json={"reference_type": "transcribe", "reference_id": t["id"]}),
        404,
        "TRANSCRIBE_NOT_FOUND",
    )
    error(await other.post("/v1.0/transcribes", json=body), 404, "CALL_NOT_FOUND")
    assert (await other.get("/v1.0/transcribes")).json() == {"result": []}

    # delete
    r = await admin.delete(f"/v1.0/aisummaries/{s['id']}")
    assert r.status_code == 200 and r.json()["tm_delete"], r.text
    error(await admin.get(f"/v1.0/aisummaries/{s['id']}"), 404, "SUMMARY_NOT_FOUND")
    r = await admin.delete(f"/v1.0/transcribes/{t['id']}")
    assert r.status_code == 200 and r.json()["tm_delete"], r.text
    error(await admin.get(f"/v1.0/transcribes/{t['id']}"), 404, "TRANSCRIBE_NOT_FOUND")
    await call.hangup()


async def test_real_time_summary_of_a_call_by_api(tapi: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    caller = await speech(CALLER)
    admin = tapi.admin.client
    call = await live_call(tapi, monkeypatch)
    call.media.start()
    r = await admin.post(
        "/v1.0/aisummaries", json={"reference_type": "call", "reference_id": str(call.call_id)}
    )
    assert r.status_code == 200, r.text
    s = r.json()
    assert s["status"] == "progressing" and s["reference_type"] == "call" and s["content"] == ""
    # it started its own transcribe of the call (both directions)
    (t,) = (await admin.get("/v1.0/transcribes")).json()["result"]
    assert (
        t["reference_id"] == str(call.call_id) and t["direction"] == "both" and t["status"] == "progressing"
    )
    call.media.say("in", caller)
    await call.media.drained()
    await call.hangup()  # the last utterance is still in the VAD: hangup must not lose it

    async def summary_done() -> bool:
        return (await admin.get(f"/v1.0/aisummaries/{s['id']}")).json()["status"] == "done"

    await eventually(summary_done, within=60)
    done = (await admin.get(f"/v1.0/aisummaries/{s['id']}")).json()
    assert "billing" in done["content"].lower(), done
    assert (await admin.get(f"/v1.0/transcribes/{t['id']}")).json()["status"] == "done"


async def test_request_errors(tapi: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    admin = tapi.admin.client
    error(await admin.get("/v1.0/transcripts"), 400, "MISSING_REQUEST_PARAMETER")
    error(await admin.get("/v1.0/transcripts", params={"transcribe_id": "nope"}), 400, "INVALID_ID")
    error(await admin.get(f"/v1.0/transcribes/{uuid.uuid4()}"), 404, "TRANSCRIBE_NOT_FOUND")
    error(await admin.get(f"/v1.0/aisummaries/{uuid.uuid4()}"), 404, "SUMMARY_NOT_FOUND")
    error(await admin.post("/v1.0/transcribes", json={"reference_type": "call"}), 400, "INVALID_ARGUMENT")
    call = await live_call(tapi, monkeypatch)
    # Quechua: not one of offline Whisper's 99 languages (since issue 10 it serves fr-FR, es-ES...).
    body = {"reference_type": "call", "reference_id": str(call.call_id), "language": "qu-PE"}
    error(await admin.post("/v1.0/transcribes", json=body), 400, "INVALID_ARGUMENT")
    await call.hangup()
    body["language"] = "en-US"
    error(await admin.post("/v1.0/transcribes", json=body), 409, "CALL_ALREADY_HANGUP")
    r = await admin.post(
        "/v1.0/aisummaries", json={"reference_type": "recording", "reference_id": str(uuid.uuid4())}
    )
    error(r, 400, "INVALID_ARGUMENT")
    assert (await admin.get("/v1.0/transcribes")).json() == {"result": []}
