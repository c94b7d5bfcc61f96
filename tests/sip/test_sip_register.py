"""Registrar (digest, bindings, expiry) against SIPp, and our REGISTER client against our registrar."""

from __future__ import annotations

import asyncio

import pytest

from voipbin.sip import (
    Bindings,
    DigestAuthenticator,
    Registrar,
    Registration,
    RegistrationError,
    SipEndpoint,
    SipRequest,
    Source,
    parse_message,
)
from voipbin.sip.digest import DigestChallenge, build_authorization

from .conftest import SippLauncher, requires_sipp

USERS = {"alice": "secret", "1001": "pw1001"}


async def lookup(username: str, realm: str) -> str | None:
    assert realm == "voipbin.test"
    return USERS.get(username)


def make_registrar(clock=None) -> Registrar:
    bindings = Bindings(clock) if clock else Bindings()
    auth = DigestAuthenticator("voipbin.test", clock=clock) if clock else None
    return Registrar("voipbin.test", lookup, bindings=bindings, authenticator=auth, min_expires=10)


async def registrar_endpoint(registrar: Registrar) -> SipEndpoint:
    async def on_request(ctx) -> None:
        if ctx.request.method == "REGISTER":
            await registrar.handle(ctx)
        else:
            ctx.respond(405)

    ep = SipEndpoint("127.0.0.1", 0, on_request=on_request)
    await ep.start()
    return ep


@requires_sipp
@pytest.mark.timeout(60)
async def test_sipp_register_with_digest(sipp: SippLauncher) -> None:
    registrar = make_registrar()
    ep = await registrar_endpoint(registrar)
    try:
        run = await sipp.start(
            "-m", "1", "-s", "alice", "-au", "alice", "-ap", "secret", f"127.0.0.1:{ep.port}",
            scenario="uac_register.xml",
        )  # fmt: skip
        assert await run.wait() == 0, run.errors() + run.messages()[-2000:]
        bindings = registrar.bindings.lookup("sip:alice@127.0.0.1")
        assert len(bindings) == 1
        b = bindings[0]
        assert b.contact == f"sip:alice@127.0.0.1:{run.port}"
        assert b.source == Source("127.0.0.1", run.port, "udp")
        assert 295 <= b.expires_in(registrar.bindings.now()) <= 300
        assert b.username == "alice" and b.user_agent == "SIPp"
    finally:
        await ep.stop()


@requires_sipp
@pytest.mark.timeout(60)
async def test_sipp_register_wrong_password_forbidden(sipp: SippLauncher) -> None:
    registrar = make_registrar()
    ep = await registrar_endpoint(registrar)
    try:
        run = await sipp.start(
            "-m", "1", "-s", "alice", "-au", "alice", "-ap", "nope", f"127.0.0.1:{ep.port}",
            scenario="uac_register_forbidden.xml",
        )  # fmt: skip
        assert await run.wait() == 0, run.errors() + run.messages()[-2000:]
        assert registrar.bindings.lookup("sip:alice@127.0.0.1") == []
    finally:
        await ep.stop()


def register_request(
    user: str, contacts: list[str], *, expires: str | None = None, cseq: int = 1, auth: str | None = None
) -> SipRequest:
    lines = [
        "REGISTER sip:voipbin.test SIP/2.0",
        "Via: SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bKr" + str(cseq),
        f"From: <sip:{user}@voipbin.test>;tag=f1",
        f"To: <sip:{user}@voipbin.test>",
        "Call-ID: reg-1",
        f"CSeq: {cseq} REGISTER",
    ]
    lines += [f"Contact: {c}" for c in contacts]
    if expires is not None:
        lines.append(f"Expires: {expires}")
    if auth:
        lines.append(f"Authorization: {auth}")
    msg = parse_message(("\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n").encode())
    assert isinstance(msg, SipRequest)
    return msg


async def authed(registrar: Registrar, user: str, password: str, **kw) -> object:
    src = Source("10.0.0.5", 5060, "udp")
    first = await registrar.process(register_request(user, kw.get("contacts", ["<sip:x@10.0.0.5>"])), src)
    assert first.status == 401
    challenge = DigestChallenge.parse(dict(first.headers)["WWW-Authenticate"])
    auth = build_authorization(
        challenge, method="REGISTER", uri="sip:voipbin.test", username=user, password=password
    )
    return await registrar.process(register_request(user, auth=auth, **kw), src)


async def test_registrar_multiple_contacts_expiry_and_wildcard() -> None:
    now = [1000.0]
    registrar = make_registrar(lambda: now[0])
    out = await authed(
        registrar,
        "1001",
        "pw1001",
        contacts=["<sip:1001@10.0.0.5:5060>;expires=60", "<sip:1001@10.0.0.6:5060>;q=0.5"],
        expires="120",
        cseq=2,
    )
    assert out.status == 200
    aor = "sip:1001@voipbin.test"
    got = {b.contact: b.expires_in(now[0]) for b in registrar.bindings.lookup(aor)}
    assert got == {"sip:1001@10.0.0.5:5060": 60, "sip:1001@10.0.0.6:5060": 120}
    contact_headers = [v for n, v in out.headers if n == "Contact"]
    assert len(contact_headers) == 2
    now[0] += 61
    assert [b.contact for b in registrar.bindings.lookup(aor)] == ["sip:1001@10.0.0.6:5060"]
    # too-short interval
    short = await authed(registrar, "1001", "pw1001", contacts=["<sip:1001@10.0.0.7>"], expires="5", cseq=3)
    assert short.status == 423
    # '*' removes everything
    star = await authed(registrar, "1001", "pw1001", contacts=["*"], expires="0", cseq=4)
    assert star.status == 200 and registrar.bindings.lookup(aor) == []
    bad_star = await authed(registrar, "1001", "pw1001", contacts=["*"], expires="30", cseq=5)
    assert bad_star.status == 400


async def test_registrar_rejects_other_users_aor_and_stale_nonce() -> None:
    now = [1000.0]
    registrar = make_registrar(lambda: now[0])
    # alice authenticates fine but tries to register 1001's AOR
    src = Source("10.0.0.5", 5060, "udp")
    first = await registrar.process(register_request("1001", ["<sip:x@10.0.0.5>"]), src)
    ch = DigestChallenge.parse(dict(first.headers)["WWW-Authenticate"])
    auth = build_authorization(
        ch, method="REGISTER", uri="sip:voipbin.test", username="alice", password="secret"
    )
    out = await registrar.process(register_request("1001", ["<sip:x@10.0.0.5>"], auth=auth), src)
    assert out.status == 403
    # the nonce goes stale: re-challenge with stale=true, not 403
    auth = build_authorization(
        ch, method="REGISTER", uri="sip:voipbin.test", username="1001", password="pw1001"
    )
    now[0] += 3600
    out = await registrar.process(register_request("1001", ["<sip:x@10.0.0.5>"], auth=auth), src)
    assert out.status == 401 and "stale=true" in dict(out.headers)["WWW-Authenticate"]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_registration_client_register_refresh_unregister(transport: str) -> None:
    registrar = make_registrar()
    server = await registrar_endpoint(registrar)
    client = SipEndpoint("127.0.0.1", 0)
    await client.start()
    states: list[bool] = []
    try:
        reg = Registration(
            client,
            f"sip:127.0.0.1:{server.port}",
            "sip:1001@127.0.0.1",
            "1001",
            "pw1001",
            expires=12,
            transport=transport,
            on_state=lambda ok, resp: states.append(ok),
        )
        reg.refresh_delay = lambda: 0.5  # type: ignore[method-assign]  # refresh quickly in the test
        resp = await reg.start()
        assert resp.status == 200 and reg.registered and reg.granted == 12
        bindings = registrar.bindings.lookup("sip:1001@127.0.0.1")
        suffix = ";transport=tcp" if transport == "tcp" else ""
        assert [b.contact for b in bindings] == [f"sip:1001@127.0.0.1:{client.port}{suffix}"]
        assert bindings[0].source.transport == transport
        first_cseq = bindings[0].cseq
        for _ in range(40):
            if reg.refreshes >= 2:
                break
            await asyncio.sleep(0.1)
        assert reg.refreshes >= 2
        refreshed = registrar.bindings.lookup("sip:1001@127.0.0.1")[0]
        assert refreshed.cseq > first_cseq and refreshed.call_id == bindings[0].call_id
        await reg.stop()
        assert registrar.bindings.lookup("sip:1001@127.0.0.1") == []
        assert states[0] is True and states[-1] is False
        # wrong password -> RegistrationError with the 403
        bad = Registration(
            client, f"sip:127.0.0.1:{server.port}", "sip:1001@127.0.0.1", "1001", "x", expires=60
        )
        with pytest.raises(RegistrationError) as info:
            await bad.start()
        assert info.value.response.status == 403
    finally:
        await client.stop()
        await server.stop()


def test_default_refresh_delay_is_before_expiry() -> None:
    class FakeEp:
        public_host = "127.0.0.1"

    reg = Registration(FakeEp(), "sip:r", "sip:a@r", "a", "p", expires=3600)  # type: ignore[arg-type]
    reg.granted = 3600
    assert reg.refresh_delay() == 1800
    reg.granted = 8
    assert reg.refresh_delay() == 3
