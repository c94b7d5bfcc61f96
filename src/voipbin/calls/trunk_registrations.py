"""Keep a REGISTER binding at every trunk (``/providers`` with ``register: true``) that asks for one.

``sync()`` is called at start and after provider changes; each registration retries with backoff in
the background until it succeeds, and then refreshes itself (``voipbin.sip.Registration``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from dataclasses import dataclass

from sqlalchemy import select

from voipbin.security import Encryptor
from voipbin.sip.endpoint import SipEndpoint
from voipbin.sip.registration import Registration, RegistrationError
from voipbin.sip.uri import split_host_port
from voipbin.store.db import Database
from voipbin.store.tables import Provider

log = logging.getLogger(__name__)


@dataclass
class _Active:
    fingerprint: tuple[str, ...]
    registration: Registration
    task: asyncio.Task[None]


class TrunkRegistrations:
    def __init__(self, db: Database, encryptor: Encryptor, endpoint: SipEndpoint) -> None:
        self.db = db
        self.encryptor = encryptor
        self.endpoint = endpoint
        self._active: dict[uuid.UUID, _Active] = {}
        self._lock = asyncio.Lock()

    def status(self, provider_id: uuid.UUID) -> bool | None:
        active = self._active.get(provider_id)
        return None if active is None else active.registration.registered

    async def sync(self) -> None:
        async with self._lock:
            async with self.db.session() as session:
                providers = (
                    (await session.execute(select(Provider).where(Provider.tm_delete.is_(None))))
                    .scalars()
                    .all()
                )
            wanted: dict[uuid.UUID, tuple[tuple[str, ...], Provider]] = {}
            for p in providers:
                if p.register and p.auth_username:
                    password = self.encryptor.decrypt(p.auth_password_enc)
                    wanted[p.id] = ((p.hostname, p.transport, p.auth_username, password), p)
            for pid in list(self._active):
                if pid not in wanted or wanted[pid][0] != self._active[pid].fingerprint:
                    await self._stop(pid)
            for pid, (fingerprint, p) in wanted.items():
                if pid not in self._active:
                    self._start(pid, fingerprint, p)

    def _start(self, pid: uuid.UUID, fingerprint: tuple[str, ...], p: Provider) -> None:
        host, _port = split_host_port(p.hostname)
        registrar = f"sip:{p.hostname}" + (";transport=tcp" if p.transport == "tcp" else "")
        username, password = fingerprint[2], fingerprint[3]
        reg = Registration(
            self.endpoint, registrar, f"sip:{username}@{host}", username, password, transport=p.transport
        )
        task = asyncio.create_task(self._keep(reg, p.name or str(pid)))
        self._active[pid] = _Active(fingerprint, reg, task)

    async def _keep(self, reg: Registration, name: str) -> None:
        backoff = 1.0
        while True:
            try:
                await reg.start()
                log.info("registered to trunk %s", name)
                return  # Registration refreshes itself from here on
            except (RegistrationError, OSError, TimeoutError) as exc:
                log.warning("REGISTER to trunk %s failed (%s); retrying in %.0f s", name, exc, backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 60.0)

    async def _stop(self, pid: uuid.UUID) -> None:
        active = self._active.pop(pid)
        active.task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await active.task
        with contextlib.suppress(Exception):
            await asyncio.wait_for(active.registration.stop(), 5)

    async def close(self) -> None:
        for pid in list(self._active):
            await self._stop(pid)
