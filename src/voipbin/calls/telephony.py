"""``SipCallManager``: the call manager backed by our SIP endpoint and RTP media.

- Outgoing calls: resolve the destination (``routing``), INVITE with an SDP offer, map the outcome to
  VoIPBIN's statuses and hangup reasons, and on answer run the call's flow on a ``LiveCall``.
- Incoming calls: an INVITE to an owned number runs the number's ``call_flow_id``; an authenticated
  INVITE from a customer's extension is routed to a number, an extension or a ``sip:`` target and
  bridged; anything else is refused (403/404) — never an open relay.
- Registrars: extensions register at ``<customer_id>.<sip_domain>`` with digest auth; the development
  carrier accepts registrations of E.164 numbers (by default from loopback only) so a local phone
  can stand in for the PSTN.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import re
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import select

from voipbin.calls import routing
from voipbin.calls.live import LiveCall
from voipbin.calls.manager import CallManager
from voipbin.calls.service import finish_call, groupcall_to_api, publish_call, set_status
from voipbin.calls.state import HangupReason, Status, local_hangup_status
from voipbin.calls.trunk_registrations import TrunkRegistrations
from voipbin.media.mediasession import MediaSession
from voipbin.media.ports import PortAllocator
from voipbin.models.address import TEL_RE
from voipbin.platform import Platform
from voipbin.sip.digest import authenticate_request
from voipbin.sip.endpoint import IncomingInvite, IncomingRequest, SipEndpoint
from voipbin.sip.registrar import Bindings, Registrar
from voipbin.sip.sdp import build_sdp
from voipbin.store.tables import Call, Customer, Extension, Groupcall, Number, Recording
from voipbin.store.types import utcnow

log = logging.getLogger(__name__)
CUSTOMER_DOMAIN = re.compile(r"^([0-9a-f-]{36})\.(.+)$")
OnAnswer = Callable[[LiveCall], Awaitable[None]]
# Failure of the outgoing leg of a bridged call, told to the calling phone.
SIP_FOR_REASON = {"busy": 486, "noanswer": 480, "dialout": 408, "cancel": 487, "failed": 503}


def _is_loopback(ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip).is_loopback
    except ValueError:
        return False


class SipCallManager(CallManager):
    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        s = platform.settings
        self.endpoint = SipEndpoint(
            s.sip_host, s.sip_port, public_host=s.sip_public_host or None, on_request=self._on_request
        )
        self.ports = PortAllocator(s.rtp_port_min, s.rtp_port_max)
        self.extension_bindings = Bindings()
        self.devcarrier_bindings = Bindings()
        self._extension_registrars: dict[str, Registrar] = {}
        self._devcarrier = Registrar(
            s.sip_domain, self._no_lookup, bindings=self.devcarrier_bindings, require_auth=False
        )
        self.trunks = TrunkRegistrations(platform, self.endpoint)
        self.live: dict[uuid.UUID, LiveCall] = {}
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def public_host(self) -> str:
        return self.endpoint.public_host

    @property
    def media_host(self) -> str:
        # RTP listens on every interface: phones may send from an address other than the one in our SDP
        # (baresip uses its primary interface even towards 127.0.0.1).
        return "0.0.0.0"

    async def start(self) -> None:
        await self.endpoint.start()
        await self.trunks.sync()
        log.info("SIP listening on %s:%s (udp+tcp)", self.platform.settings.sip_host, self.endpoint.port)

    async def close(self) -> None:
        for live in list(self.live.values()):
            with contextlib.suppress(Exception):
                await self.hangup_live(live, "normal")
        await self.trunks.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.endpoint.stop()

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(_log_failure)
        return task

    # -- outgoing ----------------------------------------------------------------------------------
    async def start_outgoing(self, call_id: uuid.UUID) -> None:
        self._spawn(self._dial(call_id))

    async def _dial(
        self,
        call_id: uuid.UUID,
        on_answer: OnAnswer | None = None,
        targets: list[routing.DialTarget] | None = None,
    ) -> LiveCall | None:
        """Dial a stored outgoing call; on answer run its flow (or ``on_answer``, e.g. to bridge)."""
        async with self.platform.db.session() as session:
            row = await session.get(Call, call_id)
        if row is None or row.status != Status.DIALING:
            return None
        try:
            targets = targets or await routing.resolve(
                self.platform,
                row.customer_id,
                row.destination,
                devcarrier=self.devcarrier_bindings,
                extensions=self.extension_bindings,
            )
        except routing.NotRoutable as exc:
            await finish_call(self.platform, call_id, reason=HangupReason.FAILED, by="local", detail=str(exc))
            return None
        media = await MediaSession.create(allocator=self.ports, host=self.media_host)
        live = LiveCall(self, call_id, row.customer_id, media)
        self.live[call_id] = live
        try:
            await self._ring(live, row, targets, on_answer or self.run_flow)
        except Exception:
            log.exception("call %s failed while dialing", call_id)
            await live.finish(HangupReason.FAILED, "local", "internal error while dialing")
        finally:
            if live.ended.is_set():
                self.live.pop(call_id, None)
        return live

    async def _ring(
        self, live: LiveCall, row: Call, targets: list[routing.DialTarget], on_answer: OnAnswer
    ) -> None:
        s = self.platform.settings
        source = row.source or {}
        user = str(source.get("target") or "anonymous")
        if (row.metadata_ or {}).get("anonymous") == "yes":
            user = "anonymous"
        from_uri = f"sip:{user}@{s.sip_domain}"
        last_status, last_reason = 0, ""
        for target in targets:
            offer = build_sdp(self.public_host, live.media.local_port, codecs=target.codecs)

            def provisional(resp: Any, _live: LiveCall = live) -> None:
                if resp.status in (180, 183):
                    self._spawn(set_status(self.platform, _live.call_id, Status.RINGING))

            live.pending = self.endpoint.invite(
                target.request_uri,
                from_uri,
                target.to_uri,
                offer,
                credentials=target.credentials,
                headers=target.headers,
                transport=target.transport,
                on_provisional=provisional,
                timeout=s.dial_timeout,
            )
            result = await live.pending
            live.pending = None
            if result.ok and result.call is not None:
                await self._answered(live, result.call, target, on_answer)
                return
            last_status, last_reason = result.status, result.reason
            if live.local_hangup_requested or result.status in (486, 600, 603, 487):
                break
        await live.finish(
            self._failure_reason(live, last_status), None, f"{last_status} {last_reason}".strip()
        )

    def _failure_reason(self, live: LiveCall, status: int) -> str:
        if live.local_hangup_requested:
            return HangupReason.CANCEL
        if status in (486, 600):
            return HangupReason.BUSY
        if status in (480, 603, 404):
            return HangupReason.NOANSWER
        if status in (408, 487):
            # Our dial timeout cancels the INVITE (487) or nothing answered (408): VoIPBIN's "dialout".
            return HangupReason.DIALOUT
        return HangupReason.FAILED

    async def _answered(
        self, live: LiveCall, sip_call: Any, target: routing.DialTarget, on_answer: OnAnswer
    ) -> None:
        live.sip = sip_call
        m = sip_call.media
        if m is None:
            await sip_call.bye()
            await live.finish(HangupReason.FAILED, "local", "no usable SDP answer")
            return
        live.media.negotiate(m.remote_addr, m.remote_port, m.payload_type, m.dtmf_payload_type, m.ptime)
        live.media.start()
        self.watch_dialog(live)
        if live.local_hangup_requested:
            await self.hangup_live(live, "normal")
            return
        async with self.platform.db.session() as session:
            row = await session.get(Call, live.call_id)
            metadata = {**((row.metadata_ if row else None) or {}), "route": target.via}
        await set_status(self.platform, live.call_id, Status.PROGRESSING, metadata_=metadata)
        self.limit_duration(live)
        await on_answer(live)

    async def connect_legs(
        self, live: LiveCall, source: dict[str, Any], destinations: list[dict[str, Any]], anonymous: str = ""
    ) -> tuple[bool, str]:
        """The ``connect`` action: ring every destination (first answer wins), bridge it with ``live`` and
        wait until that leg ends. Returns (answered, hangup reason of the connected or last failed leg)."""
        rows = [
            Call(
                customer_id=live.customer_id, type="flow", source=source, destination=dest,
                status=Status.DIALING, direction="outgoing", master_call_id=live.call_id, variables={},
                metadata_={"anonymous": anonymous or "auto"}, chained_call_ids=[], recording_ids=[],
                action={},
            )
            for dest in destinations
        ]  # fmt: skip
        async with self.platform.db.session() as session:
            session.add_all(rows)
            await session.flush()
            master = await session.get(Call, live.call_id)
            if master is not None:
                master.chained_call_ids = [*(master.chained_call_ids or []), *(str(r.id) for r in rows)]
                master.tm_update = utcnow()
            await session.commit()
        for row in rows:
            publish_call(self.platform, row, "call_created")
            publish_call(self.platform, row, "call_dialing")

        async def bridge(leg: LiveCall) -> None:
            live.media.bridge(leg.media)

        leg = await self._first_answer(rows, bridge, abort=live.ended.is_set)
        if leg is None:
            async with self.platform.db.session() as session:
                last = await session.get(Call, rows[-1].id)
            return False, (last.hangup_reason if last else "") or HangupReason.FAILED
        try:
            await leg.ended.wait()
        finally:
            live.media.unbridge()
            if not leg.ended.is_set():  # the master call ended (or the flow was stopped) first
                await self.hangup_live(leg, "normal")
        return True, leg.hangup_reason

    def limit_duration(self, live: LiveCall) -> None:
        """Hang up an answered call after VOIPBIN_MAX_CALL_DURATION seconds with reason ``timeout``."""

        async def limit() -> None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(live.ended.wait(), self.platform.settings.max_call_duration)
                return
            log.info("call %s reached the maximum duration", live.call_id)
            await self.hangup_live(live, HangupReason.TIMEOUT)

        self._spawn(limit())

    # -- groupcalls (ring every registered device of an extension; the first answer wins) ----------
    async def start_groupcall(self, groupcall_id: uuid.UUID) -> None:
        self._spawn(self._ring_group(groupcall_id))

    async def _ring_group(self, groupcall_id: uuid.UUID) -> None:
        async with self.platform.db.session() as session:
            group = await session.get(Groupcall, groupcall_id)
        if group is None:
            return
        targets: list[tuple[dict[str, Any], routing.DialTarget]] = []
        problems = []
        for dest in group.destinations or []:
            try:
                found = await routing.resolve(
                    self.platform,
                    group.customer_id,
                    dest,
                    devcarrier=self.devcarrier_bindings,
                    extensions=self.extension_bindings,
                )
                targets += [(dest, t) for t in found]
            except routing.NotRoutable as exc:
                problems.append(str(exc))
        rows = [
            Call(
                customer_id=group.customer_id,
                flow_id=group.flow_id,
                type="flow",
                source=group.source,
                destination=dest,
                status=Status.DIALING,
                direction="outgoing",
                groupcall_id=group.id,
                variables={},
                metadata_={},
                chained_call_ids=[],
                recording_ids=[],
                action={},
            )
            for dest, _ in targets
        ]
        async with self.platform.db.session() as session:
            group = await session.get(Groupcall, groupcall_id)
            assert group is not None
            session.add_all(rows)
            await session.flush()
            group.call_ids = [str(r.id) for r in rows]
            if not rows:
                group.status = "hangup"
            group.tm_update = utcnow()
            await session.commit()
        for row in rows:
            publish_call(self.platform, row, "call_created")
            publish_call(self.platform, row, "call_dialing")
        if not rows:
            log.warning("groupcall %s reached nobody: %s", groupcall_id, "; ".join(problems))
            self._publish_group(group, "groupcall_hangup")
            return
        self._publish_group(group, "groupcall_progressing")

        async def answered(live: LiveCall) -> None:
            async with self.platform.db.session() as session:
                g = await session.get(Groupcall, groupcall_id)
                if g is not None:
                    g.answer_call_id = live.call_id
                    g.tm_update = utcnow()
                    await session.commit()
            await self.run_flow(live)

        winner = await self._first_answer(rows, answered, [[t] for _, t in targets])
        if winner is None:
            async with self.platform.db.session() as session:
                g = await session.get(Groupcall, groupcall_id)
                if g is not None:
                    g.status = "hangup"
                    g.tm_update = utcnow()
                    await session.commit()
            if g is not None:
                self._publish_group(g, "groupcall_hangup")

    async def _first_answer(
        self,
        rows: list[Call],
        on_win: OnAnswer,
        targets: list[list[routing.DialTarget]] | None = None,
        abort: Callable[[], bool] = lambda: False,
    ) -> LiveCall | None:
        """Dial every row at once; the first leg to answer wins and goes to ``on_win``, the others (and
        any later answer, or every answer once ``abort()`` is true) are hung up. Returns the winner."""
        winner: list[LiveCall] = []

        async def answered(leg: LiveCall) -> None:
            if winner or abort():
                await self.hangup_live(leg, "normal")
                return
            winner.append(leg)
            for other in rows:
                other_live = self.live.get(other.id)
                if other.id != leg.call_id and other_live is not None:
                    await self.hangup_live(other_live, "normal")
            await on_win(leg)

        await asyncio.gather(
            *(self._dial(row.id, on_answer=answered, targets=targets[i] if targets else None)
              for i, row in enumerate(rows))
        )  # fmt: skip
        return winner[0] if winner else None

    def _publish_group(self, group: Groupcall, event: str) -> None:
        self.platform.events.publish(group.customer_id, event, groupcall_to_api(group))

    # -- flows -------------------------------------------------------------------------------------
    async def run_flow(self, live: LiveCall) -> None:
        from voipbin.flow.engine import start_call_flow

        live.activeflow_id = await start_call_flow(self.platform, live)

    # -- dialog events -----------------------------------------------------------------------------
    def watch_dialog(self, live: LiveCall) -> None:
        sip_call = live.sip
        if sip_call is None:
            return

        def on_info(req: Any) -> None:
            body = (req.body or b"").decode(errors="replace")
            for line in body.splitlines():
                key, _, value = line.partition("=")
                if key.strip().lower() == "signal" and value.strip():
                    live.push_digit(value.strip()[:1])

        sip_call.on_info = on_info
        self._spawn(self._await_bye(live))

    async def _await_bye(self, live: LiveCall) -> None:
        assert live.sip is not None
        await live.sip.ended
        if not live.ended.is_set() and not live.local_hangup_requested:
            # The far end hung up (or the dialog died): a normal remote hangup.
            await self._end(live, HangupReason.NORMAL, None)

    async def _end(self, live: LiveCall, reason: str, by: str | None) -> None:
        other = live.bridged_with
        await live.finish(reason, by)
        self.live.pop(live.call_id, None)
        if other is not None and not other.ended.is_set():
            await self.hangup_live(other, reason)

    async def hangup(self, call_id: uuid.UUID, reason: str = "normal") -> None:
        live = self.live.get(call_id)
        if live is None:
            await finish_call(self.platform, call_id, reason=reason, by="local")
            return
        await self.hangup_live(live, reason)

    async def hangup_live(self, live: LiveCall, reason: str = "normal") -> None:
        """Local hangup: CANCEL while ringing, BYE once answered, reject an unanswered incoming call."""
        if live.ended.is_set():
            return
        live.local_hangup_requested = True
        async with self.platform.db.session() as session:
            row = await session.get(Call, live.call_id)
            current = row.status if row else Status.HANGUP
            direction = row.direction if row else "outgoing"
        await set_status(self.platform, live.call_id, local_hangup_status(current, direction))
        if live.pending is not None:
            live.pending.cancel()  # _ring finishes the call with reason cancel
            return
        if live.sip is not None and live.sip.is_active:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(live.sip.bye(), 5)
        elif live.incoming is not None and not live.incoming.final_sent:
            live.incoming.reject(603 if reason == "normal" else 480)
        await self._end(live, reason if live.sip is not None else HangupReason.CANCEL, "local")

    async def finish_recording(self, recording_id: uuid.UUID) -> None:
        async with self.platform.db.session() as session:
            rec = await session.get(Recording, recording_id)
            if rec is None:
                return
            rec.status = "ended"
            rec.tm_end = utcnow()
            rec.tm_update = rec.tm_end
            await session.commit()
        self.platform.events.publish(rec.customer_id, "recording_finished", {"id": str(rec.id)})

    # -- incoming requests -------------------------------------------------------------------------
    async def _on_request(self, ctx: IncomingRequest) -> None:
        method = ctx.request.method
        if method == "REGISTER":
            await self._on_register(ctx)
        elif method == "INVITE" and isinstance(ctx, IncomingInvite):
            await self._on_invite(ctx)
        else:
            ctx.respond(405)

    @staticmethod
    async def _no_lookup(_username: str, _realm: str) -> str | None:
        return None

    def _registrar_for(self, domain: str, customer_id: uuid.UUID) -> Registrar:
        reg = self._extension_registrars.get(domain)
        if reg is None:

            async def lookup(username: str, _realm: str) -> str | None:
                return await self._extension_password(customer_id, username)

            reg = Registrar(domain, lookup, bindings=self.extension_bindings)
            self._extension_registrars[domain] = reg
        return reg

    async def _extension_password(self, customer_id: uuid.UUID, username: str) -> str | None:
        async with self.platform.db.session() as session:
            ext = (
                await session.execute(
                    select(Extension).where(
                        Extension.customer_id == customer_id,
                        Extension.extension == username,
                        Extension.tm_delete.is_(None),
                    )
                )
            ).scalar_one_or_none()
        return self.platform.encryptor.decrypt(ext.password_enc) if ext else None

    async def _customer_for_domain(self, host: str) -> uuid.UUID | None:
        m = CUSTOMER_DOMAIN.match(host.lower())
        if not m or m.group(2) != self.platform.settings.sip_domain.lower():
            return None
        try:
            customer_id = uuid.UUID(m.group(1))
        except ValueError:
            return None
        async with self.platform.db.session() as session:
            customer = await session.get(Customer, customer_id)
        return customer_id if customer is not None and customer.tm_delete is None else None

    async def _on_register(self, ctx: IncomingRequest) -> None:
        to = ctx.request.to.uri
        host = (to.host or "").lower()
        customer_id = await self._customer_for_domain(host)
        if customer_id is not None:
            await self._registrar_for(host, customer_id).handle(ctx)
            return
        user = to.user or ""
        if TEL_RE.match(user) and host == self.platform.settings.sip_domain.lower():
            if self.platform.settings.devcarrier == "off":
                ctx.respond(403, "Development carrier disabled")
                return
            if self.platform.settings.devcarrier == "loopback" and not _is_loopback(ctx.source.ip):
                ctx.respond(403, "Development carrier accepts loopback phones only")
                return
            if await self._number_owner(user) is not None:
                ctx.respond(403, "Number is owned by a customer")
                return
            await self._devcarrier.handle(ctx)
            return
        ctx.respond(404, "Unknown domain")

    async def _number_owner(self, number: str) -> Number | None:
        async with self.platform.db.session() as session:
            return (
                await session.execute(
                    select(Number).where(
                        Number.number == number, Number.status == "active", Number.tm_delete.is_(None)
                    )
                )
            ).scalar_one_or_none()

    async def _on_invite(self, ctx: IncomingInvite) -> None:
        caller_host = (ctx.request.from_.uri.host or "").lower()
        customer_id = await self._customer_for_domain(caller_host)
        if customer_id is not None:
            await self._incoming_from_extension(ctx, caller_host, customer_id)
            return
        user = ctx.request.uri.user or ""
        number = await self._number_owner(user) if TEL_RE.match(user) else None
        if number is not None:
            await self._incoming_to_number(ctx, number)
            return
        # Not one of our numbers and not an authenticated extension: never relay.
        ctx.reject(404, "Not Found")

    async def _incoming_from_extension(
        self, ctx: IncomingInvite, domain: str, customer_id: uuid.UUID
    ) -> None:
        """A registered extension places a call: authenticate, then route and bridge (or run a flow)."""
        registrar = self._registrar_for(domain, customer_id)
        check = await authenticate_request(registrar.auth, ctx.request, registrar.lookup, proxy=True)
        if not check.ok:
            ctx.reject(check.status, check.reason, headers=check.headers or [])
            return
        caller = ctx.request.from_.uri
        if (caller.user or "") != check.username:
            ctx.reject(403, "Forbidden (From does not match the authenticated extension)")
            return
        target = ctx.request.uri
        user = target.user or ""
        if TEL_RE.match(user):
            number = await self._number_owner(user)
            if number is not None:
                await self._incoming_to_number(
                    ctx,
                    number,
                    source={
                        "type": "extension",
                        "target": check.username or "",
                        "target_name": check.username,
                    },
                )
                return
            destination = {"type": "tel", "target": user}
        elif (target.host or "").lower() in (domain, self.platform.settings.sip_domain.lower()) or _is_ours(
            target.host or "", self.public_host
        ):
            destination = {"type": "extension", "target": user, "target_name": user}
        else:
            destination = {"type": "sip", "target": f"{user}@{target.host}" if user else str(target.host)}
        source = {"type": "extension", "target": check.username or "", "target_name": check.username or ""}
        await self._bridge_out(ctx, customer_id, source, destination)

    async def _bridge_out(
        self, ctx: IncomingInvite, customer_id: uuid.UUID, source: dict[str, Any], destination: dict[str, Any]
    ) -> None:
        """Incoming leg A (ringing) + outgoing leg B to ``destination``; answer A, bridge when B answers."""
        a_row = Call(
            customer_id=customer_id,
            type="sip-service",
            source=source,
            destination=destination,
            status=Status.RINGING,
            direction="incoming",
            variables={},
            metadata_={},
            chained_call_ids=[],
            recording_ids=[],
            action={},
            tm_ringing=utcnow(),
        )
        async with self.platform.db.session() as session:
            session.add(a_row)
            await session.flush()
            b_row = Call(
                customer_id=customer_id,
                type="sip-service",
                source=source,
                destination=destination,
                status=Status.DIALING,
                direction="outgoing",
                master_call_id=a_row.id,
                variables={},
                metadata_={},
                chained_call_ids=[],
                recording_ids=[],
                action={},
            )
            session.add(b_row)
            await session.flush()
            a_row.chained_call_ids = [str(b_row.id)]
            await session.commit()
        for row, events in (
            (a_row, ("call_created", "call_ringing")),
            (b_row, ("call_created", "call_dialing")),
        ):
            for event in events:
                publish_call(self.platform, row, event)
        media = await MediaSession.create(allocator=self.ports, host=self.media_host)
        a_leg = LiveCall(self, a_row.id, customer_id, media, incoming=ctx)
        self.live[a_row.id] = a_leg
        ctx.ringing()

        async def bridge(b_leg: LiveCall) -> None:
            # Paired before A is answered: a BYE that races the answer must take B down too.
            a_leg.bridged_with, b_leg.bridged_with = b_leg, a_leg
            if not a_leg.ended.is_set():
                await a_leg.answer()
            if a_leg.ended.is_set():
                await self.hangup_live(b_leg, "normal")
                return
            a_leg.media.bridge(b_leg.media)

        async def watch_a_cancel() -> None:
            await ctx.cancelled.wait()
            if a_leg.sip is None and not a_leg.ended.is_set():
                await self._end(a_leg, HangupReason.CANCEL, "remote")
                b_leg = self.live.get(b_row.id)
                if b_leg is not None:
                    await self.hangup_live(b_leg, "normal")

        self._spawn(watch_a_cancel())
        await self._dial(b_row.id, on_answer=bridge)
        if a_leg.sip is None and not a_leg.ended.is_set():
            # B never answered: answer A's INVITE with the matching SIP failure.
            async with self.platform.db.session() as session:
                b = await session.get(Call, b_row.id)
            reason = (b.hangup_reason if b else "") or HangupReason.FAILED
            ctx.reject(SIP_FOR_REASON.get(reason, 480))
            await self._end(a_leg, reason, "remote")

    async def _incoming_to_number(
        self, ctx: IncomingInvite, number: Number, source: dict[str, Any] | None = None
    ) -> None:
        """Run the number's ``call_flow_id``; ``source`` is given for calls from our own extensions."""
        if number.call_flow_id == uuid.UUID(int=0):
            ctx.reject(480, "No flow for this number")
            return
        source = source or _caller_address(ctx.request.from_.uri)
        row = Call(
            customer_id=number.customer_id,
            flow_id=number.call_flow_id,
            type="flow",
            source=source,
            destination={"type": "tel", "target": number.number},
            status=Status.RINGING,
            direction="incoming",
            variables={},
            metadata_={"sip_call_id": ctx.request.call_id},
            chained_call_ids=[],
            recording_ids=[],
            action={},
            tm_ringing=utcnow(),
        )
        async with self.platform.db.session() as session:
            session.add(row)
            await session.commit()
        publish_call(self.platform, row, "call_created")
        publish_call(self.platform, row, "call_ringing")
        media = await MediaSession.create(allocator=self.ports, host=self.media_host)
        live = LiveCall(self, row.id, row.customer_id, media, incoming=ctx)
        self.live[row.id] = live
        ctx.ringing()
        self._spawn(self._watch_cancel(live, ctx))
        await self.run_flow(live)

    async def _watch_cancel(self, live: LiveCall, ctx: IncomingInvite) -> None:
        await ctx.cancelled.wait()
        if live.sip is None and not live.ended.is_set():
            await self._end(live, HangupReason.CANCEL, "remote")


def _caller_address(caller: Any) -> dict[str, Any]:
    """VoIPBIN address of an incoming call's From URI: ``tel`` for an E.164 user, else ``sip``."""
    if TEL_RE.match(caller.user or ""):
        return {"type": "tel", "target": caller.user or ""}
    return {"type": "sip", "target": f"{caller.user}@{caller.host}" if caller.user else str(caller.host)}


def _is_ours(host: str, public_host: str) -> bool:
    return host in (public_host, "127.0.0.1", "localhost")


def _log_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("telephony task failed", exc_info=task.exception())
