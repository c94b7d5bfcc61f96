"""Outgoing calls through a configured SIP trunk (SIPp as the carrier), with digest auth."""

from __future__ import annotations

import pytest

from tests.calls.support import Telephony, eventually, write_sine
from tests.sip.conftest import SippLauncher, requires_sipp

pytestmark = requires_sipp

SOURCE = {"type": "tel", "target": "+15551234567"}


async def add_trunk(t: Telephony, port: int, username: str = "alice", password: str = "secret") -> None:
    r = await t.client.post(
        "/v1.0/providers",
        json={
            "hostname": f"127.0.0.1:{port}",
            "name": "sipp",
            "auth_username": username,
            "auth_password": password,
        },
    )
    assert r.status_code == 200, r.text
    r = await t.client.post("/v1.0/routes", json={"provider_id": r.json()["id"], "target": "+1"})
    assert r.status_code == 200, r.text


async def test_trunk_call_with_digest_plays_and_hangs_up(telephony: Telephony, sipp: SippLauncher) -> None:
    write_sine(telephony.media_dir / "tone.wav", 0.5)
    run = await sipp.start_server("-m", "1", scenario="uas_auth.xml")
    await add_trunk(telephony, run.port)
    r = await telephony.client.post(
        "/v1.0/calls",
        json={
            "source": SOURCE,
            "destinations": [{"type": "tel", "target": "+15559876543"}],
            "actions": [
                {"type": "answer"},
                {"type": "play", "option": {"stream_urls": [str(telephony.media_dir / "tone.wav")]}},
                {"type": "hangup"},
            ],
        },
    )
    assert r.status_code == 200, r.text
    call = await telephony.wait_hangup(r.json()["id"])
    assert call["hangup_reason"] == "normal" and call["hangup_by"] == "local", call
    assert call["tm_progressing"] and call["metadata"]["route"].startswith("trunk:")
    assert await run.wait() == 0, run.errors()  # SIPp verified our digest answer and got our BYE
    ledger = (await telephony.client.get("/v1.0/billings")).json()["result"]
    charge = next(b for b in ledger if b["reference_id"] == call["id"])
    assert charge["cost_type"] == "call_pstn_outgoing" and charge["billable_units"] == 1
    assert charge["amount_credit"] == -telephony.platform.settings.call_rate_per_minute


async def test_trunk_wrong_password_fails(telephony: Telephony, sipp: SippLauncher) -> None:
    run = await sipp.start_server("-m", "1", scenario="uas_auth.xml")
    await add_trunk(telephony, run.port, password="wrong")
    r = await telephony.client.post(
        "/v1.0/calls",
        json={
            "source": SOURCE,
            "destinations": [{"type": "tel", "target": "+15559876543"}],
            "actions": [{"type": "answer"}],
        },
    )
    call = await telephony.wait_hangup(r.json()["id"])
    assert call["hangup_reason"] == "failed" and "403" in call["metadata"]["hangup_detail"], call


async def test_busy(telephony: Telephony, sipp: SippLauncher) -> None:
    run = await sipp.start_server("-m", "1", scenario="uas_busy.xml")
    await add_trunk(telephony, run.port)
    r = await telephony.client.post(
        "/v1.0/calls",
        json={"source": SOURCE, "destinations": [{"type": "tel", "target": "+15559876543"}], "actions": []},
    )
    call = await telephony.wait_hangup(r.json()["id"])
    assert call["hangup_reason"] == "busy" and call["hangup_by"] == "remote", call


async def test_ringing_then_api_hangup_cancels(telephony: Telephony, sipp: SippLauncher) -> None:
    run = await sipp.start_server("-m", "1", scenario="uas_ring_cancel.xml")
    await add_trunk(telephony, run.port)
    r = await telephony.client.post(
        "/v1.0/calls",
        json={"source": SOURCE, "destinations": [{"type": "tel", "target": "+15559876543"}], "actions": []},
    )
    cid = r.json()["id"]
    await telephony.wait_call(cid, lambda c: c["status"] == "ringing")
    r = await telephony.client.post(f"/v1.0/calls/{cid}/hangup")
    assert r.json()["status"] in ("canceling", "hangup")
    call = await telephony.wait_hangup(cid)
    assert call["hangup_reason"] == "cancel" and call["hangup_by"] == "local", call
    assert await run.wait() == 0, run.errors()


@pytest.mark.parametrize("telephony", [{"dial_timeout": 1.5}], indirect=True)
async def test_no_answer_times_out_as_dialout(telephony: Telephony, sipp: SippLauncher) -> None:
    run = await sipp.start_server("-m", "1", scenario="uas_ring_cancel.xml")
    await add_trunk(telephony, run.port)
    r = await telephony.client.post(
        "/v1.0/calls",
        json={"source": SOURCE, "destinations": [{"type": "tel", "target": "+15559876543"}], "actions": []},
    )
    call = await telephony.wait_hangup(r.json()["id"])
    assert call["hangup_reason"] == "dialout", call


@pytest.mark.parametrize("scenario", ["uas_answer_then_bye.xml"])
async def test_remote_bye(telephony: Telephony, sipp: SippLauncher, scenario: str) -> None:
    run = await sipp.start_server("-m", "1", scenario=scenario)
    await add_trunk(telephony, run.port)
    r = await telephony.client.post(
        "/v1.0/calls",
        json={
            "source": SOURCE,
            "destinations": [{"type": "tel", "target": "+15559876543"}],
            "actions": [{"type": "sleep", "option": {"duration": 20000}}],
        },
    )
    call = await telephony.wait_hangup(r.json()["id"])
    assert call["hangup_reason"] == "normal" and call["hangup_by"] == "remote", call


async def test_unroutable_number_says_what_to_configure(telephony: Telephony) -> None:
    r = await telephony.client.post(
        "/v1.0/calls",
        json={"source": SOURCE, "destinations": [{"type": "tel", "target": "+15559876543"}], "actions": []},
    )
    call = await telephony.wait_hangup(r.json()["id"])
    assert call["hangup_reason"] == "failed"
    assert "/v1.0/providers" in call["metadata"]["hangup_detail"]
    assert "voipbin phone --number +15559876543" in call["metadata"]["hangup_detail"]


@pytest.mark.parametrize("telephony", [{"max_call_duration": 1.0}], indirect=True)
async def test_max_duration_hangs_up_with_timeout(telephony: Telephony, sipp: SippLauncher) -> None:
    run = await sipp.start_server("-sn", "uas", "-m", "1")
    await add_trunk(telephony, run.port)
    r = await telephony.client.post(
        "/v1.0/calls",
        json={
            "source": SOURCE,
            "destinations": [{"type": "tel", "target": "+15559876543"}],
            "actions": [{"type": "sleep", "option": {"duration": 20000}}],
        },
    )
    call = await telephony.wait_hangup(r.json()["id"], within=10)
    assert (call["hangup_reason"], call["hangup_by"]) == ("timeout", "local"), call["metadata"]


async def test_trunk_registration(telephony: Telephony) -> None:
    from voipbin.sip import Registrar, SipEndpoint

    async def lookup(user: str, realm: str) -> str | None:
        return "secret" if user == "alice" else None

    registrar = Registrar("carrier.test", lookup)

    async def on_request(ctx) -> None:  # type: ignore[no-untyped-def]
        if ctx.request.method == "REGISTER":
            await registrar.handle(ctx)
        else:
            ctx.respond(405)

    carrier = SipEndpoint("127.0.0.1", 0, on_request=on_request)
    await carrier.start()
    try:
        r = await telephony.client.post(
            "/v1.0/providers",
            json={
                "hostname": f"127.0.0.1:{carrier.port}",
                "auth_username": "alice",
                "auth_password": "secret",
                "register": True,
            },
        )
        assert r.status_code == 200, r.text

        async def bound() -> bool:
            return bool(registrar.bindings.lookup("sip:alice@127.0.0.1"))

        await eventually(bound, 10)
        await telephony.client.delete(f"/v1.0/providers/{r.json()['id']}")

        async def unbound() -> bool:
            return not registrar.bindings.lookup("sip:alice@127.0.0.1")

        await eventually(unbound, 10)
    finally:
        await carrier.stop()


async def test_sip_destination_is_dialed_directly(telephony: Telephony, sipp: SippLauncher) -> None:
    run = await sipp.start_server("-sn", "uas", "-m", "1")
    r = await telephony.client.post(
        "/v1.0/calls",
        json={
            "source": SOURCE,
            "destinations": [{"type": "sip", "target": f"service@127.0.0.1:{run.port}"}],
            "actions": [{"type": "sleep", "option": {"duration": 300}}, {"type": "hangup"}],
        },
    )
    assert r.status_code == 200, r.text
    call = await telephony.wait_hangup(r.json()["id"])
    assert call["hangup_reason"] == "normal" and call["metadata"]["route"] == "sip", call
    assert await run.wait() == 0, run.errors()
    # Extension and SIP calls are free; nothing was charged.
    assert not [
        b
        for b in (await telephony.client.get("/v1.0/billings")).json()["result"]
        if b["reference_id"] == call["id"]
    ]


async def test_recording_start_and_stop_through_the_api(telephony: Telephony, sipp: SippLauncher) -> None:
    run = await sipp.start_server("-sn", "uas", "-m", "1")
    await add_trunk(telephony, run.port)
    r = await telephony.client.post(
        "/v1.0/calls",
        json={
            "source": SOURCE,
            "destinations": [{"type": "tel", "target": "+15559876543"}],
            "actions": [{"type": "sleep", "option": {"duration": 20000}}],
        },
    )
    cid = r.json()["id"]
    await telephony.wait_call(cid, lambda c: c["status"] == "progressing")
    r = await telephony.client.post(f"/v1.0/calls/{cid}/recording_stop")
    assert r.status_code == 409 and r.json()["error"]["reason"] == "RECORDING_NOT_ACTIVE"
    r = await telephony.client.post(f"/v1.0/calls/{cid}/recording_start", json={"format": "wav"})
    assert r.status_code == 200, r.text
    rec = r.json()
    assert rec["status"] == "recording" and rec["reference_id"] == cid
    r = await telephony.client.get(f"/v1.0/recordings/{rec['id']}/file")
    assert r.status_code == 409  # still being written
    import asyncio

    await asyncio.sleep(1.0)
    r = await telephony.client.post(f"/v1.0/calls/{cid}/recording_stop")
    assert r.status_code == 200 and r.json()["status"] == "ended" and r.json()["tm_end"]
    r = await telephony.client.get(f"/v1.0/recordings/{rec['id']}/file")
    assert r.status_code == 200 and r.content[:4] == b"RIFF" and len(r.content) > 8000  # ~1 s at 8 kHz
    assert (await telephony.call(cid))["recording_id"] == rec["id"]
    await telephony.client.post(f"/v1.0/calls/{cid}/hangup")
    await telephony.wait_hangup(cid)
    r = await telephony.client.post(f"/v1.0/calls/{cid}/recording_start", json={})
    assert r.status_code == 409 and r.json()["error"]["reason"] == "CALL_STATE_INVALID"
    assert (await telephony.client.delete(f"/v1.0/recordings/{rec['id']}")).status_code == 200
    assert (await telephony.client.get(f"/v1.0/recordings/{rec['id']}")).status_code == 404
