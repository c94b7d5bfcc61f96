"""HTTP Digest authentication for SIP (RFC 2617, RFC 7616 SHA-256, RFC 8760), client and server.

Client: :func:`build_authorization` answers a 401/407 challenge; :class:`DigestClient` runs the
retry policy for one request series (answer each realm once, again only when ``stale=true``).
Server: :class:`DigestAuthenticator` issues challenges with stateless nonces (timestamp + HMAC, so any
node sharing the secret can validate them and they expire) and verifies credentials given either the
plain password or a stored HA1.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import struct
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from .errors import SipParseError
from .headers import format_auth_params, parse_auth_params

_HASHES: dict[str, Callable[[bytes], str]] = {
    "MD5": lambda b: hashlib.md5(b, usedforsecurity=False).hexdigest(),
    "SHA-256": lambda b: hashlib.sha256(b).hexdigest(),
}


def _hash(algorithm: str, text: str) -> str:
    base = algorithm.upper().removesuffix("-SESS")
    fn = _HASHES.get(base)
    if fn is None:
        raise SipParseError(f"unsupported digest algorithm {algorithm!r}")
    return fn(text.encode("utf-8"))


def compute_ha1(username: str, realm: str, password: str, algorithm: str = "MD5") -> str:
    return _hash(algorithm, f"{username}:{realm}:{password}")


def compute_response(
    *,
    ha1: str,
    method: str,
    uri: str,
    nonce: str,
    algorithm: str = "MD5",
    qop: str | None = None,
    nc: str = "00000001",
    cnonce: str = "",
    body: bytes = b"",
) -> str:
    """The ``response`` value of RFC 2617 §3.2.2.1 (ha1 already includes -sess handling)."""
    if qop == "auth-int":
        ha2 = _hash(algorithm, f"{method}:{uri}:{_hash(algorithm, body.decode('latin-1'))}")
    else:
        ha2 = _hash(algorithm, f"{method}:{uri}")
    if qop:
        return _hash(algorithm, f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")
    return _hash(algorithm, f"{ha1}:{nonce}:{ha2}")


@dataclass
class DigestChallenge:
    realm: str
    nonce: str
    algorithm: str = "MD5"
    qop: list[str] | None = None
    opaque: str | None = None
    stale: bool = False

    @classmethod
    def parse(cls, header_value: str) -> DigestChallenge:
        scheme, p = parse_auth_params(header_value)
        if scheme != "digest" or "nonce" not in p or "realm" not in p:
            raise SipParseError("not a digest challenge")
        qop = [q.strip() for q in p["qop"].split(",") if q.strip()] if "qop" in p else None
        return cls(
            p["realm"],
            p["nonce"],
            p.get("algorithm", "MD5"),
            qop,
            p.get("opaque"),
            p.get("stale", "").lower() == "true",
        )


def build_authorization(
    challenge: DigestChallenge | str,
    *,
    method: str,
    uri: str,
    username: str,
    password: str,
    nc: int = 1,
    cnonce: str | None = None,
    body: bytes = b"",
) -> str:
    """Value for Authorization / Proxy-Authorization answering ``challenge``."""
    ch = DigestChallenge.parse(challenge) if isinstance(challenge, str) else challenge
    algorithm = ch.algorithm
    qop: str | None = None
    if ch.qop:
        if "auth" in ch.qop:
            qop = "auth"
        elif "auth-int" in ch.qop:
            qop = "auth-int"
        else:
            raise SipParseError(f"unsupported qop {ch.qop!r}")
    cnonce = cnonce or secrets.token_hex(8)
    ha1 = compute_ha1(username, ch.realm, password, algorithm)
    if algorithm.upper().endswith("-SESS"):
        ha1 = _hash(algorithm, f"{ha1}:{ch.nonce}:{cnonce}")
    ncs = f"{nc:08x}"
    response = compute_response(
        ha1=ha1, method=method, uri=uri, nonce=ch.nonce, algorithm=algorithm, qop=qop, nc=ncs, cnonce=cnonce,
        body=body,
    )  # fmt: skip
    params = {"username": username, "realm": ch.realm, "nonce": ch.nonce, "uri": uri, "response": response}
    params["algorithm"] = algorithm
    if ch.opaque is not None:
        params["opaque"] = ch.opaque
    if qop:
        params.update({"qop": qop, "nc": ncs, "cnonce": cnonce})
    return format_auth_params("Digest", params, unquoted=frozenset({"algorithm", "qop", "nc"}))


class DigestClient:
    """Client side of one request series (an INVITE and its retries): answers 401/407 challenges.

    :meth:`answer` returns True when the request should be sent again with :attr:`headers`. A realm
    is answered once: a second challenge for it means the credentials were refused, unless the
    server says ``stale=true`` (our nonce expired, the password was fine). So a bad password ends with
    the 401/407 instead of looping; ``max_rounds`` bounds everything else (several realms, stale).
    """

    def __init__(self, username: str, password: str, *, max_rounds: int = 3) -> None:
        self.username = username
        self.password = password
        self.max_rounds = max_rounds
        self.rounds = 0
        self._answers: dict[tuple[str, str], str] = {}  # (header, realm) -> Authorization value

    @property
    def headers(self) -> list[tuple[str, str]]:
        return [(name, value) for (name, _realm), value in self._answers.items()]

    def answer(self, request: Any, response: Any) -> bool:
        """``request`` (SipRequest) got ``response`` (401/407): prepare the retry's credentials."""
        if self.rounds >= self.max_rounds:
            return False
        proxy = response.status == 407
        challenge_header = "Proxy-Authenticate" if proxy else "WWW-Authenticate"
        out = "Proxy-Authorization" if proxy else "Authorization"
        progressed = False
        for value in response.headers.get_all(challenge_header):
            try:
                challenge = DigestChallenge.parse(value)
                key = (out, challenge.realm)
                if key in self._answers and not challenge.stale:
                    continue  # we already answered this realm: the credentials were refused
                self._answers[key] = build_authorization(
                    challenge,
                    method=request.method,
                    uri=str(request.uri),
                    username=self.username,
                    password=self.password,
                    body=request.body,
                )
            except SipParseError:
                continue  # not a digest challenge we can answer
            progressed = True
        if progressed:
            self.rounds += 1
        return progressed


class AuthResult(Enum):
    OK = "ok"
    MISSING = "missing"  # no usable credentials for this realm -> challenge
    STALE = "stale"  # nonce expired but the password was right -> challenge with stale=true
    INVALID = "invalid"  # wrong password / forged nonce -> 403 (or re-challenge)


@dataclass
class DigestCredentials:
    """Parsed Authorization header."""

    username: str
    realm: str
    nonce: str
    uri: str
    response: str
    algorithm: str = "MD5"
    qop: str | None = None
    nc: str = ""
    cnonce: str = ""
    opaque: str | None = None

    @classmethod
    def parse(cls, header_value: str) -> DigestCredentials:
        scheme, p = parse_auth_params(header_value)
        if scheme != "digest":
            raise SipParseError("not digest credentials")
        try:
            return cls(
                p["username"],
                p["realm"],
                p["nonce"],
                p["uri"],
                p["response"],
                p.get("algorithm", "MD5"),
                p.get("qop"),
                p.get("nc", ""),
                p.get("cnonce", ""),
                p.get("opaque"),
            )
        except KeyError as exc:
            raise SipParseError(f"digest credentials missing {exc.args[0]}") from None


class DigestAuthenticator:
    """Server side: challenge, then verify. Nonces are ``base64(ts || hmac(secret, ts || realm))``."""

    def __init__(
        self,
        realm: str,
        *,
        secret: bytes | None = None,
        nonce_ttl: float = 300.0,
        algorithm: str = "MD5",
        clock: Callable[[], float] = time.time,
    ) -> None:
        if algorithm.upper().removesuffix("-SESS") not in _HASHES:
            raise ValueError(f"unsupported algorithm {algorithm}")
        self.realm = realm
        self.algorithm = algorithm
        self.nonce_ttl = nonce_ttl
        self._secret = secret or secrets.token_bytes(32)
        self._clock = clock

    def make_nonce(self) -> str:
        ts = struct.pack(">d", self._clock())
        mac = hmac.new(self._secret, ts + self.realm.encode(), hashlib.sha256).digest()[:16]
        return base64.urlsafe_b64encode(ts + mac).decode().rstrip("=")

    def nonce_status(self, nonce: str) -> AuthResult:
        try:
            raw = base64.urlsafe_b64decode(nonce + "=" * (-len(nonce) % 4))
        except (ValueError, TypeError):
            return AuthResult.INVALID
        if len(raw) != 24:
            return AuthResult.INVALID
        ts, mac = raw[:8], raw[8:]
        expected = hmac.new(self._secret, ts + self.realm.encode(), hashlib.sha256).digest()[:16]
        if not hmac.compare_digest(mac, expected):
            return AuthResult.INVALID
        age = self._clock() - struct.unpack(">d", ts)[0]
        if age < -5 or age > self.nonce_ttl:
            return AuthResult.STALE
        return AuthResult.OK

    def challenge(self, *, stale: bool = False) -> str:
        params = {"realm": self.realm, "nonce": self.make_nonce(), "algorithm": self.algorithm, "qop": "auth"}
        if stale:
            params["stale"] = "true"
        return format_auth_params("Digest", params, unquoted=frozenset({"algorithm", "stale"}))

    def credentials_for_realm(self, header_values: list[str]) -> DigestCredentials | None:
        """Pick the Authorization header for our realm (a request may carry several)."""
        for value in header_values:
            try:
                cred = DigestCredentials.parse(value)
            except SipParseError:
                continue
            if cred.realm == self.realm:
                return cred
        return None

    def verify(
        self,
        cred: DigestCredentials,
        method: str,
        *,
        password: str | None = None,
        ha1: str | None = None,
        body: bytes = b"",
    ) -> AuthResult:
        if cred.realm != self.realm:
            return AuthResult.MISSING
        if cred.algorithm.upper() != self.algorithm.upper():
            return AuthResult.MISSING
        if password is None and ha1 is None:
            return AuthResult.INVALID
        status = self.nonce_status(cred.nonce)
        if status is AuthResult.INVALID:
            return AuthResult.MISSING  # not our nonce (other node/secret or forged): just re-challenge
        if ha1 is None:
            ha1 = compute_ha1(cred.username, self.realm, password or "", self.algorithm)
        if self.algorithm.upper().endswith("-SESS"):
            ha1 = _hash(self.algorithm, f"{ha1}:{cred.nonce}:{cred.cnonce}")
        if cred.qop not in (None, "auth", "auth-int"):
            return AuthResult.INVALID
        expected = compute_response(
            ha1=ha1,
            method=method,
            uri=cred.uri,
            nonce=cred.nonce,
            algorithm=self.algorithm,
            qop=cred.qop,
            nc=cred.nc,
            cnonce=cred.cnonce,
            body=body,
        )
        if not hmac.compare_digest(expected, cred.response.lower()):
            return AuthResult.INVALID
        return AuthResult.STALE if status is AuthResult.STALE else AuthResult.OK


@dataclass
class AuthCheck:
    """Outcome of :func:`authenticate_request`: ``ok`` or the response to send (401/407/403)."""

    ok: bool
    username: str | None = None
    status: int = 200
    reason: str | None = None
    headers: list[tuple[str, str]] | None = None


async def authenticate_request(
    auth: DigestAuthenticator,
    request: Any,  # SipRequest (kept loose to avoid an import cycle)
    lookup: Callable[[str, str], Awaitable[str | None]],
    *,
    proxy: bool = False,
) -> AuthCheck:
    """Challenge-or-verify a request (REGISTER, INVITE from an extension, ...).

    ``lookup(username, realm)`` returns the password or None. ``proxy=True`` uses 407 and
    Proxy-Authenticate/Proxy-Authorization (what phones expect for INVITE).
    """
    status = 407 if proxy else 401
    challenge_name = "Proxy-Authenticate" if proxy else "WWW-Authenticate"
    cred = auth.credentials_for_realm(
        request.headers.get_all("Proxy-Authorization" if proxy else "Authorization")
    )
    if cred is None:
        return AuthCheck(False, None, status, None, [(challenge_name, auth.challenge())])
    password = await lookup(cred.username, auth.realm)
    if password is None:
        return AuthCheck(False, cred.username, 403, "Forbidden (unknown user)")
    result = auth.verify(cred, request.method, password=password, body=request.body)
    if result is AuthResult.OK:
        return AuthCheck(True, cred.username)
    if result is AuthResult.INVALID:
        return AuthCheck(False, cred.username, 403, "Forbidden (bad credentials)")
    stale = result is AuthResult.STALE
    return AuthCheck(False, None, status, None, [(challenge_name, auth.challenge(stale=stale))])
