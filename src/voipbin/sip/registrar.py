"""Registrar logic (RFC 3261 §10.3) with digest authentication, storage left to the caller.

:class:`Registrar` turns a REGISTER into a response and a list of binding changes; it asks the caller
for passwords through ``async lookup(username, realm) -> password | None`` and stores bindings in a
:class:`Bindings` store (the in-memory one here has expiry; the calls layer can use it directly or
mirror it into its database). Every binding remembers the :class:`Source` (ip, port, transport) the
REGISTER came from, so calls can reach phones behind NAT and trunks can be recognised.

Use from an endpoint handler::

    registrar = Registrar("voipbin.local", lookup)
    async def on_request(ctx):
        if ctx.request.method == "REGISTER":
            await registrar.handle(ctx)

Persistence (crash recovery): give :class:`Bindings` a :class:`BindingStore`. It is told, synchronously,
about every change (``save(binding)`` on register/refresh, ``delete(aor, contact)`` on unregister and
expiry) and schedules the database write itself. After a restart, :meth:`Bindings.load` takes the
stored bindings back; their expiry travels as wall-clock epoch seconds (``expires_epoch``) because the
monotonic clock does not survive a restart. :meth:`Binding.to_record` / :meth:`Binding.from_record`
give a flat, JSON-friendly form (contact, source ip/port/transport, expiry, ...)::

    class DbStore:
        def save(self, binding): spawn(upsert(binding.to_record()))
        def delete(self, aor, contact): spawn(delete_row(aor, contact))

    bindings = Bindings(store=DbStore())
    bindings.load(Binding.from_record(row) for row in await load_rows())
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from .digest import DigestAuthenticator, authenticate_request
from .errors import SipParseError
from .headers import parse_expires
from .ua_base import Source
from .uri import NameAddr

if TYPE_CHECKING:
    from .endpoint import IncomingRequest
    from .message import SipRequest

log = logging.getLogger(__name__)
Lookup = Callable[[str, str], Awaitable[str | None]]


@dataclass
class Binding:
    aor: str
    contact: str  # the Contact URI as registered
    expires_at: float  # on the Bindings' (monotonic) clock
    source: Source  # where the REGISTER came from: where requests for the phone go (NAT)
    call_id: str
    cseq: int
    q: float = 1.0
    user_agent: str | None = None
    username: str | None = None
    expires_epoch: float = 0.0  # the same instant as wall-clock epoch seconds (set by Bindings.put)

    def expires_in(self, now: float) -> int:
        return max(0, round(self.expires_at - now))

    def to_record(self) -> dict[str, Any]:
        """Flat, JSON-friendly form for a database row (expiry as wall-clock epoch seconds)."""
        return {
            "aor": self.aor,
            "contact": self.contact,
            "expires_epoch": self.expires_epoch,
            "source_ip": self.source.ip,
            "source_port": self.source.port,
            "transport": self.source.transport,
            "call_id": self.call_id,
            "cseq": self.cseq,
            "q": self.q,
            "user_agent": self.user_agent,
            "username": self.username,
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Binding:
        """Inverse of :meth:`to_record`; ``expires_at`` is filled in by :meth:`Bindings.load`."""
        return cls(
            aor=str(record["aor"]),
            contact=str(record["contact"]),
            expires_at=0.0,
            source=Source(str(record["source_ip"]), int(record["source_port"]), str(record["transport"])),
            call_id=str(record["call_id"]),
            cseq=int(record["cseq"]),
            q=float(record.get("q") or 1.0),
            user_agent=record.get("user_agent"),
            username=record.get("username"),
            expires_epoch=float(record["expires_epoch"]),
        )


class BindingStore(Protocol):
    """Persistence hook of :class:`Bindings`: told synchronously, schedules the write itself."""

    def save(self, binding: Binding) -> None:
        """``binding`` was added or refreshed (upsert by ``(aor, contact)``)."""

    def delete(self, aor: str, contact: str) -> None:
        """The binding of ``contact`` for ``aor`` is gone (unregistered or expired)."""


class Bindings:
    """In-memory AOR -> contacts store with expiry (monotonic clock), optionally mirrored to a store.

    ``clock`` orders expiry (monotonic: immune to wall-clock steps); ``wall_clock`` converts expiry to
    epoch seconds for the ``store`` and back in :meth:`load`.
    """

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        *,
        store: BindingStore | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._clock = clock
        self._wall = wall_clock
        self.store = store
        self._by_aor: dict[str, dict[str, Binding]] = {}

    def now(self) -> float:
        return self._clock()

    def _saved(self, binding: Binding) -> None:
        if self.store is not None:
            try:
                self.store.save(binding)
            except Exception:  # persistence must not break registration
                log.exception("binding store save failed for %s", binding.aor)

    def _deleted(self, aor: str, contact: str) -> None:
        if self.store is not None:
            try:
                self.store.delete(aor, contact)
            except Exception:
                log.exception("binding store delete failed for %s", aor)

    def _expire(self, aor: str, contacts: dict[str, Binding], now: float) -> int:
        expired = [k for k, b in contacts.items() if b.expires_at <= now]
        for key in expired:
            del contacts[key]
            self._deleted(aor, key)
        return len(expired)

    def lookup(self, aor: str) -> list[Binding]:
        """Live bindings of ``aor``, best (highest q, newest) first."""
        contacts = self._by_aor.get(aor)
        if not contacts:
            return []
        self._expire(aor, contacts, self._clock())
        return sorted(contacts.values(), key=lambda b: (-b.q, -b.expires_at))

    def get(self, aor: str, contact: str) -> Binding | None:
        b = self._by_aor.get(aor, {}).get(contact)
        return b if b is not None and b.expires_at > self._clock() else None

    def put(self, binding: Binding) -> None:
        binding.expires_epoch = self._wall() + (binding.expires_at - self._clock())
        self._by_aor.setdefault(binding.aor, {})[binding.contact] = binding
        self._saved(binding)

    def remove(self, aor: str, contact: str) -> None:
        if self._by_aor.get(aor, {}).pop(contact, None) is not None:
            self._deleted(aor, contact)

    def remove_all(self, aor: str) -> None:
        for contact in self._by_aor.pop(aor, {}):
            self._deleted(aor, contact)

    def purge(self) -> int:
        """Drop expired bindings everywhere; returns how many were dropped."""
        now = self._clock()
        dropped = 0
        for aor in list(self._by_aor):
            contacts = self._by_aor[aor]
            dropped += self._expire(aor, contacts, now)
            if not contacts:
                del self._by_aor[aor]
        return dropped

    def aors(self) -> list[str]:
        return [a for a in self._by_aor if self.lookup(a)]

    def all(self) -> list[Binding]:
        """Every live binding (e.g. to compare with the store)."""
        return [b for aor in list(self._by_aor) for b in self.lookup(aor)]

    def load(self, bindings: Iterable[Binding]) -> int:
        """Take back stored bindings after a restart (``expires_epoch`` = wall-clock expiry).

        Expired ones are skipped (and deleted from the store); the store is not told about the rest,
        it has them. Returns how many were loaded.
        """
        now, wall = self._clock(), self._wall()
        loaded = 0
        for b in bindings:
            remaining = b.expires_epoch - wall
            if remaining <= 0:
                self._deleted(b.aor, b.contact)
                continue
            b.expires_at = now + remaining
            self._by_aor.setdefault(b.aor, {})[b.contact] = b
            loaded += 1
        return loaded


@dataclass
class RegisterOutcome:
    status: int
    reason: str | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    aor: str | None = None
    username: str | None = None
    bindings: list[Binding] = field(default_factory=list)  # the AOR's bindings after the update


class Registrar:
    def __init__(
        self,
        realm: str,
        lookup: Lookup,
        *,
        bindings: Bindings | None = None,
        authenticator: DigestAuthenticator | None = None,
        min_expires: int = 60,
        max_expires: int = 3600,
        default_expires: int = 3600,
        require_auth: bool = True,
    ) -> None:
        self.realm = realm
        self.lookup = lookup
        self.bindings = bindings or Bindings()
        self.auth = authenticator or DigestAuthenticator(realm)
        self.min_expires = min_expires
        self.max_expires = max_expires
        self.default_expires = default_expires
        self.require_auth = require_auth

    async def handle(self, ctx: IncomingRequest) -> RegisterOutcome:
        """Process ``ctx.request`` and send the response on ``ctx``."""
        outcome = await self.process(ctx.request, ctx.source)
        ctx.respond(outcome.status, outcome.reason, headers=outcome.headers)
        return outcome

    async def process(self, request: SipRequest, source: Source) -> RegisterOutcome:
        try:
            return await self._process(request, source)
        except SipParseError as exc:
            return RegisterOutcome(400, f"Bad Request ({str(exc)[:40]})")

    async def _process(self, request: SipRequest, source: Source) -> RegisterOutcome:
        if request.method != "REGISTER":
            return RegisterOutcome(405, headers=[("Allow", "REGISTER")])
        to = request.to
        aor = to.uri.aor()
        username: str | None = None
        if self.require_auth:
            check = await authenticate_request(self.auth, request, self.lookup)
            if not check.ok:
                return RegisterOutcome(check.status, check.reason, headers=check.headers or [])
            if to.uri.user is not None and check.username != to.uri.user:
                return RegisterOutcome(403, "Forbidden (user does not own this AOR)")
            username = check.username
        call_id = request.call_id
        cseq = request.cseq.number
        header_expires = parse_expires(request.headers.get("Expires"))
        contacts = request.contacts
        now = self.bindings.now()
        if any(c.wildcard for c in contacts):
            if len(contacts) != 1 or header_expires != 0:
                return RegisterOutcome(400, "Bad Request (wildcard Contact needs Expires: 0)")
            self.bindings.remove_all(aor)
            return RegisterOutcome(200, aor=aor, username=username)
        updates: list[tuple[NameAddr, int]] = []
        for c in contacts:
            exp_param = c.params.get("expires")
            expires = parse_expires(exp_param) if exp_param is not None else header_expires
            if expires is None:
                expires = self.default_expires
            if 0 < expires < self.min_expires:
                return RegisterOutcome(423, headers=[("Min-Expires", str(self.min_expires))])
            updates.append((c, min(expires, self.max_expires)))
        for c, expires in updates:
            key = str(c.uri)
            existing = self.bindings.get(aor, key)
            if existing is not None and existing.call_id == call_id and cseq <= existing.cseq:
                return RegisterOutcome(500, "Out of order REGISTER")
            if expires == 0:
                self.bindings.remove(aor, key)
                continue
            q = 1.0
            try:
                q = float(c.params.get("q") or 1.0)
            except ValueError:
                pass
            self.bindings.put(
                Binding(
                    aor,
                    key,
                    now + expires,
                    source,
                    call_id,
                    cseq,
                    q,
                    request.headers.get("User-Agent"),
                    username,
                )
            )
        current = self.bindings.lookup(aor)
        headers = [("Contact", f"<{b.contact}>;expires={b.expires_in(now)}") for b in current]
        headers.append(("Date", time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime())))
        return RegisterOutcome(200, headers=headers, aor=aor, username=username, bindings=current)
