"""Digest vectors (RFC 2617 §3.5, RFC 7616 §3.9.1) and the server-side authenticator."""

from __future__ import annotations

from voipbin.sip import (
    AuthResult,
    DigestAuthenticator,
    DigestChallenge,
    DigestCredentials,
    build_authorization,
)
from voipbin.sip.digest import compute_ha1, compute_response


def test_rfc2617_example() -> None:
    ha1 = compute_ha1("Mufasa", "testrealm@host.com", "Circle Of Life")
    resp = compute_response(
        ha1=ha1,
        method="GET",
        uri="/dir/index.html",
        nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
        qop="auth",
        nc="00000001",
        cnonce="0a4f113b",
    )
    assert resp == "6629fae49393a05397450978507c4ef1"


def test_rfc7616_md5_and_sha256_examples() -> None:
    challenge = (
        'Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm={alg}, '
        'nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", '
        'opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"'
    )
    expected = {
        "MD5": "8ca523f5e9506fed4657c9700eebdbec",
        "SHA-256": "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
    }
    for alg, want in expected.items():
        header = build_authorization(
            challenge.format(alg=alg),
            method="GET",
            uri="/dir/index.html",
            username="Mufasa",
            password="Circle of Life",
            cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
        )
        cred = DigestCredentials.parse(header)
        assert cred.response == want
        assert cred.qop == "auth" and cred.nc == "00000001"
        assert cred.opaque == "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"


def test_server_challenge_verify_and_expiry() -> None:
    now = [1000.0]
    for alg in ("MD5", "SHA-256"):
        auth = DigestAuthenticator("voipbin.local", nonce_ttl=60, algorithm=alg, clock=lambda: now[0])
        ch = DigestChallenge.parse(auth.challenge())
        assert ch.algorithm == alg and ch.qop == ["auth"]
        header = build_authorization(
            ch, method="REGISTER", uri="sip:voipbin.local", username="1001", password="pw"
        )
        cred = DigestCredentials.parse(header)
        assert auth.verify(cred, "REGISTER", password="pw") is AuthResult.OK
        assert (
            auth.verify(cred, "REGISTER", ha1=compute_ha1("1001", "voipbin.local", "pw", alg))
            is AuthResult.OK
        )
        assert auth.verify(cred, "REGISTER", password="wrong") is AuthResult.INVALID
        assert auth.verify(cred, "INVITE", password="pw") is AuthResult.INVALID  # method is signed
        now[0] += 120
        assert auth.verify(cred, "REGISTER", password="pw") is AuthResult.STALE
        now[0] -= 120


def test_forged_nonce_is_rechallenged() -> None:
    a = DigestAuthenticator("r")
    b = DigestAuthenticator("r")  # different secret
    ch = DigestChallenge.parse(b.challenge())
    cred = DigestCredentials.parse(
        build_authorization(ch, method="REGISTER", uri="sip:r", username="u", password="p")
    )
    assert a.verify(cred, "REGISTER", password="p") is AuthResult.MISSING
    assert a.nonce_status("not-base64!!") is AuthResult.INVALID


async def test_authenticate_request_proxy_flow() -> None:
    from voipbin.sip import authenticate_request, make_response, parse_message

    auth = DigestAuthenticator("pbx")

    async def lookup(user: str, realm: str) -> str | None:
        return {"1001": "pw"}.get(user)

    raw = (
        "INVITE sip:2000@pbx SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.5;branch=z9hG4bK1\r\n"
        "From: <sip:1001@pbx>;tag=a\r\nTo: <sip:2000@pbx>\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\n"
        "Contact: <sip:1001@10.0.0.5>\r\n{auth}Content-Length: 0\r\n\r\n"
    )
    req = parse_message(raw.format(auth="").encode())
    first = await authenticate_request(auth, req, lookup, proxy=True)
    assert not first.ok and first.status == 407
    resp = make_response(req, 407, headers=first.headers or [])
    challenge = resp.headers.get("Proxy-Authenticate")
    assert challenge is not None
    for password, want in (("pw", 200), ("bad", 403)):
        value = build_authorization(
            challenge, method="INVITE", uri="sip:2000@pbx", username="1001", password=password
        )
        req2 = parse_message(raw.format(auth=f"Proxy-Authorization: {value}\r\n").encode())
        check = await authenticate_request(auth, req2, lookup, proxy=True)
        assert check.status == want and check.ok == (want == 200)
        assert check.username == "1001"
