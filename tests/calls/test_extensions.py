"""Extensions: a real softphone (baresip) registers with digest, is called as a groupcall, and calls out
through the platform; unauthenticated peers are refused."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from tests.calls.support import Telephony, dominant_frequency, eventually, read_wav
from tests.sip.baresip import Baresip, start_baresip
from tests.sip.conftest import SippLauncher, requires_sipp
from voipbin.sip import SipEndpoint
from voipbin.sip.registration import Registration, RegistrationError
from voipbin.store.tables import Call

needs_baresip = pytest.mark.skipif(shutil.which("baresip") is None, reason="baresip not installed")


@pytest.fixture
async def phones():  # type: ignore[no-untyped-def]
    started: list[Baresip] = []
    yield started
    for b in started:
        if b.proc.returncode is None:
            b.proc.kill()
        await asyncio.wait_for(b.proc.wait(), 5)


async def register_baresip(t: Telephony, tmp: Path, phones: list[Baresip], ext: str, pw: str) -> Baresip:
    r = await t.client.post("/v1.0/extensions", json={"extension": ext, "password": pw})
    assert r.status_code == 200, r.text
    domain = r.json()["domain_name"]
    account = (
        f'<sip:{ext}@{domain}>;auth_pass={pw};outbound="sip:127.0.0.1:{t.sip_port}";'
        "regint=60;answermode=auto;audio_codecs=PCMU"
    )
    phone = await start_baresip(tmp, account)
    phones.append(phone)
    aor = f"sip:{ext}@{domain}"
    bindings = t.platform.registrations.extension_bindings

    async def registered() -> bool:
        return bool(bindings.lookup(aor))

    try:
        await eventually(registered, 10)
    except AssertionError:
        raise AssertionError(phone.log.read_text(errors="replace")) from None
    return phone


@needs_baresip
async def test_extension_groupcall_reaches_baresip(telephony: Telephony, tmp_path: Path, phones) -> None:
    await register_baresip(telephony, tmp_path, phones, "3001", "ext-password-1")
    r = await telephony.client.post(
        "/v1.0/calls",
        json={
            "source": {"type": "tel", "target": "+15551234567"},
            "destinations": [{"type": "extension", "target_name": "3001"}],
            "actions": [
                {"type": "recording_start"},
                {"type": "sleep", "option": {"duration": 1500}},
                {"type": "recording_stop"},
                {"type": "hangup"},
            ],
        },
    )
    assert r.status_code == 200, r.text
    group = r.json()["groupcalls"][0]

    async def one_call() -> bool:
        g = (await telephony.client.get(f"/v1.0/groupcalls/{group['id']}")).json()
        return len(g["call_ids"]) == 1

    await eventually(one_call)
    g = (await telephony.client.get(f"/v1.0/groupcalls/{group['id']}")).json()
    call = await telephony.wait_hangup(g["call_ids"][0], within=20)
    assert call["hangup_reason"] == "normal" and call["tm_progressing"], call
    g = (await telephony.client.get(f"/v1.0/groupcalls/{group['id']}")).json()
    assert g["answer_call_id"] == call["id"]
    rec = (await telephony.client.get("/v1.0/recordings")).json()["result"][0]
    wav = tmp_path / "rec.wav"
    wav.write_bytes((await telephony.client.get(f"/v1.0/recordings/{rec['id']}/file")).content)
    pcm, rate = read_wav(wav)
    assert len(pcm) / rate > 1.0
    assert np.sqrt(np.mean(pcm.astype(np.float64) ** 2)) > 500
    assert abs(dominant_frequency(pcm, rate) - 440) < 15  # baresip's source is a 440 Hz tone


@needs_baresip
@requires_sipp
async def test_baresip_calls_a_number_through_a_trunk(
    telephony: Telephony, tmp_path: Path, phones, sipp: SippLauncher
) -> None:
    run = await sipp.start_server("-sn", "uas", "-m", "1")
    p = (await telephony.client.post("/v1.0/providers", json={"hostname": f"127.0.0.1:{run.port}"})).json()
    await telephony.client.post("/v1.0/routes", json={"provider_id": p["id"], "target": "all"})
    phone = await register_baresip(telephony, tmp_path, phones, "3002", "ext-password-2")
    domain = f"{telephony.admin.customer.id}.voipbin.local"
    resp = await phone.command("dial", f"sip:+15559876543@{domain}")
    assert resp.get("ok"), resp

    async def bridged() -> bool:
        async with telephony.platform.db.session() as s:
            rows = (await s.execute(select(Call))).scalars().all()
        return len(rows) == 2 and all(r.status == "progressing" for r in rows)

    try:
        await eventually(bridged, 10)
    except AssertionError:
        raise AssertionError(phone.log.read_text(errors="replace")) from None
    async with telephony.platform.db.session() as s:
        a_leg = (await s.execute(select(Call).where(Call.direction == "incoming"))).scalar_one()
        b_leg = (await s.execute(select(Call).where(Call.direction == "outgoing"))).scalar_one()
    assert b_leg.master_call_id == a_leg.id and b_leg.destination["target"] == "+15559876543"
    assert a_leg.source["target"] == "3002"
    await telephony.client.post(f"/v1.0/calls/{a_leg.id}/hangup")
    for leg in (a_leg, b_leg):
        call = await telephony.wait_hangup(str(leg.id))
        assert call["hangup_reason"] == "normal", call
    assert await run.wait() == 0, run.errors()


async def test_unauthenticated_peers_are_refused(telephony: Telephony) -> None:
    ext = (
        await telephony.client.post(
            "/v1.0/extensions", json={"extension": "3003", "password": "ext-password-3"}
        )
    ).json()
    domain = ext["domain_name"]
    ep = SipEndpoint("127.0.0.1", 0)
    await ep.start()
    server = f"sip:127.0.0.1:{telephony.sip_port}"
    try:
        # REGISTER with a wrong password, for an unknown domain, and for an owned number: refused.
        for aor, user, pw in (
            (f"sip:3003@{domain}", "3003", "wrong-password"),
            ("sip:3003@elsewhere.example", "3003", "ext-password-3"),
            ("sip:+15551234567@voipbin.local", "+15551234567", "x"),
        ):
            reg = Registration(ep, server, aor, user, pw, expires=60)
            with pytest.raises(RegistrationError):
                await asyncio.wait_for(reg.start(), 10)
        # The right password works.
        reg = Registration(ep, server, f"sip:3003@{domain}", "3003", "ext-password-3", expires=60)
        await asyncio.wait_for(reg.start(), 10)
        await reg.stop()
        # INVITE claiming to be the extension, without / with wrong credentials: 407 then 403.
        from voipbin.sip import build_sdp

        offer = build_sdp("127.0.0.1", 40000)
        res = await ep.invite(
            f"sip:+15559876543@127.0.0.1:{telephony.sip_port}",
            f"sip:3003@{domain}",
            f"sip:+15559876543@{domain}",
            offer,
            timeout=5,
        )
        assert res.status == 407
        res = await ep.invite(
            f"sip:+15559876543@127.0.0.1:{telephony.sip_port}",
            f"sip:3003@{domain}",
            f"sip:+15559876543@{domain}",
            offer,
            credentials=("3003", "nope"),
            timeout=5,
        )
        assert res.status == 403
        # INVITE from nobody to a number we do not own: not relayed.
        res = await ep.invite(
            f"sip:+15559876543@127.0.0.1:{telephony.sip_port}",
            "sip:someone@example.com",
            "sip:+15559876543@example.com",
            offer,
            timeout=5,
        )
        assert res.status == 404
    finally:
        await ep.stop()
    async with telephony.platform.db.session() as s:
        assert (await s.execute(select(Call))).first() is None


async def test_extension_calls_one_of_our_numbers(telephony: Telephony) -> None:
    """An authenticated extension dialling a number of ours runs that number's flow."""
    from voipbin.sip import build_sdp

    ext = (
        await telephony.client.post(
            "/v1.0/extensions", json={"extension": "3004", "password": "ext-password-4"}
        )
    ).json()
    flow = (
        await telephony.client.post(
            "/v1.0/flows",
            json={
                "actions": [
                    {"type": "answer"},
                    {"type": "sleep", "option": {"duration": 300}},
                    {"type": "hangup"},
                ]
            },
        )
    ).json()
    number = (await telephony.client.get("/v1.0/numbers")).json()["result"][0]
    await telephony.client.put(f"/v1.0/numbers/{number['id']}/flow_ids", json={"call_flow_id": flow["id"]})
    ep = SipEndpoint("127.0.0.1", 0)
    await ep.start()
    try:
        res = await ep.invite(
            f"sip:+15551234567@127.0.0.1:{telephony.sip_port}",
            f"sip:3004@{ext['domain_name']}",
            f"sip:+15551234567@{ext['domain_name']}",
            build_sdp("127.0.0.1", 40002),
            credentials=("3004", "ext-password-4"),
            timeout=10,
        )
        assert res.ok, (res.status, res.reason)
        assert await asyncio.wait_for(res.call.ended, 10)
    finally:
        await ep.stop()
    (call,) = (await telephony.client.get("/v1.0/calls")).json()["result"]
    call = await telephony.wait_hangup(call["id"])
    assert (
        call["source"] == {"type": "extension", "target": "+15551234567", "target_name": "3004"}
        or call["source"]["target_name"] == "3004"
    ), call["source"]
    assert call["direction"] == "incoming" and call["hangup_reason"] == "normal"


async def test_extension_calls_another_extension(telephony: Telephony) -> None:
    """Extension to extension: the callee's registered device rings, the legs are bridged, BYE ends both."""
    from voipbin.sip import answer_offer, build_sdp

    domain = ""
    for ext, pw in (("3005", "ext-password-5"), ("3006", "ext-password-6")):
        domain = (
            await telephony.client.post("/v1.0/extensions", json={"extension": ext, "password": pw})
        ).json()["domain_name"]
    answered = []

    def on_request(ctx) -> None:  # type: ignore[no-untyped-def]
        if ctx.request.method != "INVITE":
            ctx.respond(405)
            return
        body, _ = answer_offer(ctx.offer, "127.0.0.1", 40010)
        answered.append(ctx.answer(body))

    callee = SipEndpoint("127.0.0.1", 0, on_request=on_request)
    caller = SipEndpoint("127.0.0.1", 0)
    await callee.start()
    await caller.start()
    server = f"sip:127.0.0.1:{telephony.sip_port}"
    try:
        reg = Registration(callee, server, f"sip:3006@{domain}", "3006", "ext-password-6", expires=60)
        await asyncio.wait_for(reg.start(), 10)
        res = await caller.invite(
            f"sip:3006@127.0.0.1:{telephony.sip_port}",
            f"sip:3005@{domain}",
            f"sip:3006@{domain}",
            build_sdp("127.0.0.1", 40012),
            credentials=("3005", "ext-password-5"),
            timeout=10,
        )
        assert res.ok and answered, (res.status, res.reason)
        async with telephony.platform.db.session() as s:
            rows = (await s.execute(select(Call))).scalars().all()
        assert {r.direction for r in rows} == {"incoming", "outgoing"}
        assert all(r.destination["target_name"] == "3006" for r in rows)
        await res.call.bye()  # at once: the BYE races the platform finishing the answer
        assert await asyncio.wait_for(answered[0].ended, 10)
        for r in rows:
            assert (await telephony.wait_hangup(str(r.id)))["hangup_reason"] == "normal"
        await reg.stop()
    finally:
        await caller.stop()
        await callee.stop()
