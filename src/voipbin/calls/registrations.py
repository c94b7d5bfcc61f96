"""Registrars and who may use them: extensions and development-carrier phones.

- Extensions register at ``<customer_id>.<sip_domain>`` with digest auth (their password from the
  extensions table).
- The development carrier accepts registrations of E.164 numbers (by default from loopback only), so a
  local phone can stand in for the PSTN; a number owned by a customer cannot be taken this way.

Bindings are kept in memory for routing and written to the ``registrations`` table (this module owns it)
with their expiry, so after a restart a registered phone is reachable again without re-registering.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import uuid

from sqlalchemy import select

from voipbin.models.address import TEL_RE
from voipbin.security import Encryptor
from voipbin.sip.digest import AuthCheck, authenticate_request
from voipbin.sip.endpoint import IncomingRequest
from voipbin.sip.message import SipRequest
from voipbin.sip.registrar import Bindings, Registrar
from voipbin.store.db import Database
from voipbin.store.tables import Customer, Extension, Number

log = logging.getLogger(__name__)
CUSTOMER_DOMAIN = re.compile(r"^([0-9a-f-]{36})\.(.+)$")


def is_loopback(ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip).is_loopback
    except ValueError:
        return False


class Registrations:
    def __init__(self, db: Database, encryptor: Encryptor, *, sip_domain: str, devcarrier: str) -> None:
        self.db = db
        self.encryptor = encryptor
        self.sip_domain = sip_domain.lower()
        self.devcarrier_mode = devcarrier
        self.extension_bindings = Bindings()
        self.devcarrier_bindings = Bindings()
        self._extension_registrars: dict[str, Registrar] = {}
        self._devcarrier = Registrar(
            sip_domain, self._no_lookup, bindings=self.devcarrier_bindings, require_auth=False
        )

    @staticmethod
    async def _no_lookup(_username: str, _realm: str) -> str | None:
        return None

    def registrar_for(self, domain: str, customer_id: uuid.UUID) -> Registrar:
        reg = self._extension_registrars.get(domain)
        if reg is None:

            async def lookup(username: str, _realm: str) -> str | None:
                return await self._extension_password(customer_id, username)

            reg = Registrar(domain, lookup, bindings=self.extension_bindings)
            self._extension_registrars[domain] = reg
        return reg

    async def _extension_password(self, customer_id: uuid.UUID, username: str) -> str | None:
        async with self.db.session() as session:
            ext = (
                await session.execute(
                    select(Extension).where(
                        Extension.customer_id == customer_id,
                        Extension.extension == username,
                        Extension.tm_delete.is_(None),
                    )
                )
            ).scalar_one_or_none()
        return self.encryptor.decrypt(ext.password_enc) if ext else None

    async def customer_for_domain(self, host: str) -> uuid.UUID | None:
        """The customer whose SIP domain ``host`` is (``<customer_id>.<sip_domain>``), if it exists."""
        m = CUSTOMER_DOMAIN.match(host.lower())
        if not m or m.group(2) != self.sip_domain:
            return None
        try:
            customer_id = uuid.UUID(m.group(1))
        except ValueError:
            return None
        async with self.db.session() as session:
            customer = await session.get(Customer, customer_id)
        return customer_id if customer is not None and customer.tm_delete is None else None

    async def number_owner(self, number: str) -> Number | None:
        async with self.db.session() as session:
            return (
                await session.execute(
                    select(Number).where(
                        Number.number == number, Number.status == "active", Number.tm_delete.is_(None)
                    )
                )
            ).scalar_one_or_none()

    async def authenticate_extension(
        self, request: SipRequest, domain: str, customer_id: uuid.UUID
    ) -> AuthCheck:
        registrar = self.registrar_for(domain, customer_id)
        return await authenticate_request(registrar.auth, request, registrar.lookup, proxy=True)

    async def on_register(self, ctx: IncomingRequest) -> None:
        to = ctx.request.to.uri
        host = (to.host or "").lower()
        customer_id = await self.customer_for_domain(host)
        if customer_id is not None:
            await self.registrar_for(host, customer_id).handle(ctx)
            return
        user = to.user or ""
        if TEL_RE.match(user) and host == self.sip_domain:
            if self.devcarrier_mode == "off":
                ctx.respond(403, "Development carrier disabled")
                return
            if self.devcarrier_mode == "loopback" and not is_loopback(ctx.source.ip):
                ctx.respond(403, "Development carrier accepts loopback phones only")
                return
            if await self.number_owner(user) is not None:
                ctx.respond(403, "Number is owned by a customer")
                return
            await self._devcarrier.handle(ctx)
            return
        ctx.respond(404, "Unknown domain")
