"""REGISTER client (RFC 3261 §10.2): register, refresh before expiry, unregister.

    reg = Registration(endpoint, "sip:pbx.example.com", "sip:1001@pbx.example.com", "1001", "pw", expires=300)
    await reg.start()      # raises RegistrationError if the registrar refuses
    ...
    await reg.stop()       # Expires: 0

One Call-ID for the life of the registration and increasing CSeq, as the RFC asks, so the registrar
can order our refreshes. Refresh happens at half the granted interval (at least 5 s before expiry);
a failed refresh is retried with backoff and reported through ``on_state``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from .errors import SipError, SipParseError
from .message import SipResponse, new_call_id, new_tag
from .uri import SipUri

if TYPE_CHECKING:
    from .endpoint import SipEndpoint

log = logging.getLogger(__name__)


class RegistrationError(SipError):
    def __init__(self, response: SipResponse) -> None:
        super().__init__(f"REGISTER failed: {response.status} {response.reason}")
        self.response = response


class Registration:
    def __init__(
        self,
        endpoint: SipEndpoint,
        registrar_uri: str,
        aor: str,
        username: str,
        password: str,
        expires: int = 3600,
        *,
        transport: str = "udp",
        contact_user: str | None = None,
        on_state: Callable[[bool, SipResponse | None], None] | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.registrar_uri = registrar_uri
        self.aor = aor
        self.credentials = (username, password)
        self.expires = expires
        self.transport = transport
        self.contact_user = contact_user or username
        self.on_state = on_state
        self.call_id = new_call_id(endpoint.public_host)
        self.from_tag = new_tag()
        self.cseq = 0
        self.registered = False
        self.granted: int | None = None
        self.expires_at: float | None = None
        self.refreshes = 0
        self._task: asyncio.Task[None] | None = None

    @property
    def contact(self) -> str:
        with contextlib.suppress(SipParseError):  # the registrar's address family picks our Contact
            return self.endpoint._contact(
                self.transport, self.contact_user, towards=SipUri.parse(self.registrar_uri).host
            )
        return self.endpoint._contact(self.transport, self.contact_user)

    async def _register(self, expires: int) -> SipResponse:
        self.cseq += 1
        resp = await self.endpoint.request(
            "REGISTER",
            self.registrar_uri,
            from_uri=f"<{self.aor}>",
            to_uri=f"<{self.aor}>",
            credentials=self.credentials,
            headers=[("Contact", self.contact), ("Expires", str(expires))],
            transport=self.transport,
            call_id=self.call_id,
            cseq=self.cseq,
            from_tag=self.from_tag,
        )
        with contextlib.suppress(SipParseError):
            self.cseq = max(self.cseq, resp.cseq.number)
        return resp

    def _granted_expires(self, resp: SipResponse, asked: int) -> int:
        ours = self.contact.strip("<>").split(">")[0]
        try:
            for c in resp.contacts:
                exp = c.params.get("expires")
                if str(c.uri) == ours and exp and exp.isdigit():
                    return int(exp)
            value = resp.headers.get("Expires")
            if value and value.strip().isdigit():
                return int(value)
        except SipParseError:
            pass
        return asked

    async def start(self) -> SipResponse:
        resp = await self._register(self.expires)
        if resp.status != 200:
            self._set(False, resp)
            raise RegistrationError(resp)
        self._accepted(resp)
        self._task = asyncio.get_running_loop().create_task(self._refresh_loop())
        return resp

    def _accepted(self, resp: SipResponse) -> None:
        self.granted = self._granted_expires(resp, self.expires)
        self.expires_at = time.monotonic() + self.granted
        self._set(True, resp)

    def _set(self, registered: bool, resp: SipResponse | None) -> None:
        self.registered = registered
        if self.on_state is not None:
            try:
                self.on_state(registered, resp)
            except Exception:
                log.exception("on_state callback failed")

    def refresh_delay(self) -> float:
        granted = self.granted or self.expires
        return max(1.0, min(granted / 2, granted - 5))

    async def _refresh_loop(self) -> None:
        delay = self.refresh_delay()
        backoff = 1.0
        while True:
            await asyncio.sleep(delay)
            try:
                resp = await self._register(self.expires)
            except Exception:
                log.exception("REGISTER refresh failed")
                resp = None
            if resp is not None and resp.status == 200:
                self.refreshes += 1
                self._accepted(resp)
                delay = self.refresh_delay()
                backoff = 1.0
            else:
                if self.expires_at is not None and time.monotonic() >= self.expires_at:
                    self._set(False, resp)
                delay = backoff
                backoff = min(backoff * 2, 60.0)

    async def stop(self) -> SipResponse | None:
        """Cancel refreshes and unregister (Expires: 0)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if not self.registered:
            return None
        resp = await self._register(0)
        self._set(False, resp)
        return resp
