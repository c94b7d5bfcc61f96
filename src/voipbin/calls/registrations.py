"""Registrars and who may use them: extensions and development-carrier phones.

- Extensions register at ``<customer_id>.<sip_domain>`` with digest auth (their password from the
  extensions table).
- The development carrier accepts registrations of E.164 numbers (by default from loopback only), so a
  local phone can stand in for the PSTN; a number owned by a customer cannot be taken this way.

Bindings are kept in memory for routing and written to the ``registrations`` table (this module owns it)
with their expiry, so after a restart a registered phone is reachable again without re-registering
(:meth:`Registrations.start` reloads them; expired ones are dropped).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import re
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, select

from voipbin.models.address import TEL_RE
from voipbin.security import Encryptor
from voipbin.sip.digest import AuthCheck, authenticate_request
from voipbin.sip.endpoint import IncomingRequest
from voipbin.sip.message import SipRequest
from voipbin.sip.registrar import Binding, Bindings, Registrar
from voipbin.store.cache import RowCache
from voipbin.store.db import Database
from voipbin.store.tables import Customer, Extension, Number, Registration

log = logging.getLogger(__name__)
CUSTOMER_DOMAIN = re.compile(r"^([0-9a-f-]{36})\.(.+)$")


def is_loopback(ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip).is_loopback
    except ValueError:
        return False


class BindingRows:
    """The ``registrations`` rows of one registrar: the ``BindingStore`` of its :class:`Bindings`.

    ``Bindings`` tells it synchronously; the writes go through one queue, so they reach the table in
    the order the registrations changed."""

    def __init__(self, db: Database, registrar: str, node_id: str) -> None:
        self.db = db
        self.registrar = registrar
        self.node_id = node_id
        self._queue: asyncio.Queue[tuple[str, str, dict[str, Any] | None]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def save(self, binding: Binding) -> None:
        self._queue.put_nowait((binding.aor, binding.contact, binding.to_record()))

    def delete(self, aor: str, contact: str) -> None:
        self._queue.put_nowait((aor, contact, None))

    async def load(self) -> list[Binding]:
        async with self.db.session() as session:
            rows = (
                (await session.execute(select(Registration).where(Registration.registrar == self.registrar)))
                .scalars()
                .all()
            )
        return [Binding.from_record(r.binding) for r in rows]

    def start(self) -> None:
        self._task = asyncio.create_task(self._write_all(), name=f"registrations {self.registrar}")

    async def _write_all(self) -> None:
        while True:
            op = await self._queue.get()
            try:
                await self._write(*op)
            except Exception:  # a lost write costs a re-registration, never the registrar
                log.exception("registration %s %s could not be stored", op[0], op[1])
            finally:
                self._queue.task_done()

    async def _write(self, aor: str, contact: str, record: dict[str, Any] | None) -> None:
        async with self.db.session() as session:
            if record is None:
                await session.execute(
                    delete(Registration).where(
                        Registration.registrar == self.registrar,
                        Registration.aor == aor,
                        Registration.contact == contact,
                    )
                )
            else:
                await session.merge(
                    Registration(
                        registrar=self.registrar,
                        aor=aor,
                        contact=contact,
                        binding=record,
                        tm_expire=datetime.fromtimestamp(float(record["expires_epoch"]), UTC),
                        node_id=self.node_id,
                    )
                )
            await session.commit()

    async def flush(self) -> None:
        """Until every change so far is stored."""
        if self._task is not None and not self._task.done():
            await self._queue.join()

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(5):
                await self.flush()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


class Registrations:
    def __init__(
        self, db: Database, encryptor: Encryptor, *, sip_domain: str, devcarrier: str, node_id: str
    ) -> None:
        self.db = db
        self.encryptor = encryptor
        self.sip_domain = sip_domain.lower()
        self.devcarrier_mode = devcarrier
        self._rows = {
            "extensions": BindingRows(db, "extensions", node_id),
            "devcarrier": BindingRows(db, "devcarrier", node_id),
        }
        self.extension_bindings = Bindings(store=self._rows["extensions"])
        self.devcarrier_bindings = Bindings(store=self._rows["devcarrier"])
        self._numbers: RowCache[str, Number | None] = RowCache(Number)
        self._extension_registrars: dict[str, Registrar] = {}
        self._devcarrier = Registrar(
            sip_domain, self._no_lookup, bindings=self.devcarrier_bindings, require_auth=False
        )

    async def start(self) -> int:
        """Reload the stored registrations (a restarted node reaches its phones at once); returns how
        many are live."""
        loaded = 0
        for name, bindings in (
            ("extensions", self.extension_bindings),
            ("devcarrier", self.devcarrier_bindings),
        ):
            rows = self._rows[name]
            rows.start()
            loaded += bindings.load(await rows.load())
        if loaded:
            log.info("reloaded %d stored registrations", loaded)
        return loaded

    async def flush(self) -> None:
        for rows in self._rows.values():
            await rows.flush()

    async def close(self) -> None:
        for rows in self._rows.values():
            await rows.close()
        self._numbers.close()

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
        """The active number (looked up on every call: cached until the numbers table changes)."""
        return await self._numbers.get(number, self._load_number)

    async def _load_number(self, number: str) -> Number | None:
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
