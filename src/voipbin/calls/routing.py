"""Where a destination is dialed: trunks for ``tel`` (``/routes`` + ``/providers``), the development
carrier (a phone that registered the E.164 number itself) when no route matches, ``sip`` targets
directly, and every registered contact for an ``extension``.

Pure lookups: nothing here sends SIP.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import or_, select

from voipbin.security import Encryptor
from voipbin.sip.registrar import Bindings
from voipbin.store.db import Database
from voipbin.store.tables import ZERO_UUID, Extension, Provider, Route


class NotRoutable(Exception):
    """No way to reach a destination; the message says what to configure."""


@dataclass
class DialTarget:
    request_uri: str
    to_uri: str
    transport: str = "udp"
    credentials: tuple[str, str] | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    codecs: tuple[str, ...] = ("PCMU", "PCMA")
    via: str = ""  # "trunk:<id>" | "devcarrier" | "sip" | "extension:<id>" for logs and metadata


def digits(number: str) -> str:
    return number.lstrip("+")


def route_matches(target: str, number: str) -> int:
    """Length of the matched prefix (0 for ``all``), or -1 when the route does not apply."""
    if target == "all":
        return 0
    prefix = digits(target)
    return len(prefix) if digits(number).startswith(prefix) else -1


def customer_domain(sip_domain: str, customer_id: uuid.UUID) -> str:
    return f"{customer_id}.{sip_domain}"


def devcarrier_aor_user(number: str) -> str:
    return number


async def trunk_targets(
    db: Database, encryptor: Encryptor, customer_id: uuid.UUID, number: str
) -> list[DialTarget]:
    """Trunks whose route matches, longest prefix first, then priority; customer routes before defaults."""
    async with db.session() as session:
        rows = (
            await session.execute(
                select(Route, Provider)
                .join(Provider, Provider.id == Route.provider_id)
                .where(
                    Route.tm_delete.is_(None),
                    Provider.tm_delete.is_(None),
                    or_(Route.customer_id == customer_id, Route.customer_id == ZERO_UUID),
                )
            )
        ).all()
    ranked: list[tuple[int, int, int, Provider]] = []
    for route, provider in rows:
        length = route_matches(route.target, number)
        if length >= 0:
            own = 0 if route.customer_id == customer_id else 1
            ranked.append((own, -length, route.priority, provider))
    ranked.sort(key=lambda r: r[:3])
    targets = []
    for *_, p in ranked:
        user = f"{p.tech_prefix}{number}{p.tech_postfix}"
        uri = f"sip:{user}@{p.hostname}"
        if p.transport == "tcp":
            uri += ";transport=tcp"
        password = encryptor.decrypt(p.auth_password_enc)
        targets.append(
            DialTarget(
                request_uri=uri,
                to_uri=f"sip:{user}@{p.hostname}",
                transport=p.transport,
                credentials=(p.auth_username, password) if p.auth_username else None,
                headers=[(str(k), str(v)) for k, v in (p.tech_headers or {}).items()],
                codecs=tuple(c for c in p.codecs.split(",") if c) or ("PCMU", "PCMA"),
                via=f"trunk:{p.id}",
            )
        )
    return targets


def contact_targets(bindings: Bindings, aor: str, via: str) -> list[DialTarget]:
    out = []
    for b in sorted(bindings.lookup(aor), key=lambda b: -b.q):
        transport = "tcp" if b.source.transport == "tcp" else "udp"
        out.append(DialTarget(request_uri=b.contact, to_uri=aor, transport=transport, via=via))
    return out


class Router:
    """Where a destination can be reached: trunks, development-carrier phones, extensions' devices."""

    def __init__(
        self,
        db: Database,
        encryptor: Encryptor,
        sip_domain: str,
        *,
        devcarrier: Bindings,
        extensions: Bindings,
    ) -> None:
        self.db = db
        self.encryptor = encryptor
        self.sip_domain = sip_domain
        self.devcarrier = devcarrier
        self.extensions = extensions

    async def resolve(self, customer_id: uuid.UUID, destination: dict[str, Any]) -> list[DialTarget]:
        """Every way to try ``destination``, in order. Raises NotRoutable with a helpful message."""
        kind = destination.get("type")
        target = str(destination.get("target", ""))
        if kind == "tel":
            trunks = await trunk_targets(self.db, self.encryptor, customer_id, target)
            if trunks:
                return trunks
            aor = f"sip:{devcarrier_aor_user(target)}@{self.sip_domain}"
            phones = contact_targets(self.devcarrier, aor, "devcarrier")
            if phones:
                return phones
            raise NotRoutable(
                f"No route to {target}: configure a SIP trunk (POST /v1.0/providers) and a route "
                f"(POST /v1.0/routes), or register a phone as {target} for development "
                f"(voipbin phone --number {target})."
            )
        if kind == "sip":
            uri = target if target.startswith(("sip:", "sips:")) else f"sip:{target}"
            return [DialTarget(request_uri=uri, to_uri=uri, via="sip")]
        if kind == "extension":
            name = str(destination.get("target_name") or target)
            async with self.db.session() as session:
                ext = (
                    await session.execute(
                        select(Extension).where(
                            Extension.customer_id == customer_id,
                            Extension.tm_delete.is_(None),
                            or_(Extension.extension == name, Extension.id == _maybe_uuid(name)),
                        )
                    )
                ).scalar_one_or_none()
            if ext is None:
                raise NotRoutable(f"Extension {name} does not exist.")
            aor = f"sip:{ext.extension}@{customer_domain(self.sip_domain, customer_id)}"
            phones = contact_targets(self.extensions, aor, f"extension:{ext.id}")
            if not phones:
                raise NotRoutable(f"Extension {ext.extension} has no registered device.")
            return phones
        raise NotRoutable(f"Destination type {kind!r} cannot be dialed.")


def _maybe_uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        return ZERO_UUID
