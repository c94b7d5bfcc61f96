"""The call manager: what the API uses to drive calls, and its SIP-backed implementation.

``SipCallManager`` owns this node's SIP endpoint and its live calls. It is assembled from one part per
job: ``registrations`` (REGISTER, extension auth), ``inbound`` (routing INVITEs), ``dialer`` (ring
targets, first answer wins, groupcalls), ``bridging`` (connect, extension calls out), ``recordings`` and
``lifecycle`` (live calls and how they end; ending a call stops its flow centrally). It implements the
``CallOps`` its live calls ask of it and the flow engine's ``LiveCalls`` lookup.

Until telephony is running (or when it is disabled), ``UnavailableCallManager`` ends every call at once
as ``failed`` with the reason recorded, so no call ever sits in ``dialing`` pretending to ring.
"""

from __future__ import annotations

import abc
import logging
import os
import uuid
from typing import Any

from voipbin.calls import routing
from voipbin.calls.bridging import Bridging
from voipbin.calls.control import LiveCall
from voipbin.calls.dialer import Dialer
from voipbin.calls.inbound import Inbound, media_families
from voipbin.calls.leg import TtsFactory
from voipbin.calls.lifecycle import Legs
from voipbin.calls.recordings import Recordings
from voipbin.calls.records import CallRecords
from voipbin.calls.registrations import Registrations
from voipbin.calls.state import Status
from voipbin.calls.trunk_registrations import TrunkRegistrations
from voipbin.config import Settings
from voipbin.flow.engine import FlowEngine
from voipbin.flow.interfaces import CallHungUp, RecordingRequest
from voipbin.media.callmedia import MediaFactory
from voipbin.media.mediasession import MediaSession
from voipbin.media.ports import PortAllocator
from voipbin.media.remote import MediaPool
from voipbin.security import Encryptor
from voipbin.sip.endpoint import IncomingInvite, IncomingRequest, SipEndpoint
from voipbin.store.db import Database

log = logging.getLogger(__name__)


def sip_ipv6_host(sip_host: str, setting: str) -> str | None:
    """The IPv6 address SIP listens on besides ``sip_host`` (``VOIPBIN_SIP_HOST6``), or None."""
    if setting.strip().lower() in ("", "off", "none", "no"):
        return None
    if setting.strip().lower() != "auto":
        return setting.strip().strip("[]")
    if 6 not in media_families():
        return None
    if sip_host in ("0.0.0.0", ""):
        return "::"
    return "::1" if sip_host.startswith("127.") else None  # a specific IPv4 address: IPv4 only


class CallManager(abc.ABC):
    @abc.abstractmethod
    async def start_outgoing(self, call_id: uuid.UUID) -> None:
        """Dial a stored call (status ``dialing``) and run its flow once answered."""

    async def start_groupcall(self, groupcall_id: uuid.UUID) -> None:  # noqa: B027 - optional
        """Ring a stored groupcall's destinations (first answer wins)."""

    @abc.abstractmethod
    async def hangup(self, call_id: uuid.UUID, reason: str = "normal") -> None:
        """Hang up a call locally; returns once the hangup has been started."""

    def live_call(self, call_id: uuid.UUID) -> LiveCall | None:
        """The call if it is live on this node."""
        return None

    def trunk_status(self, provider_id: uuid.UUID) -> bool | None:
        """Whether a trunk registration is up (None: not registering)."""
        return None

    async def sync_trunks(self) -> None:  # noqa: B027 - optional hook
        """Follow provider changes (trunk registrations)."""

    async def close(self) -> None:  # noqa: B027 - optional hook, most managers have nothing to release
        """Stop all calls and release resources."""


class UnavailableCallManager(CallManager):
    def __init__(self, records: CallRecords, why: str) -> None:
        self.records = records
        self.why = why

    async def start_outgoing(self, call_id: uuid.UUID) -> None:
        log.warning("call %s cannot be dialed: %s", call_id, self.why)
        await self.records.finish(call_id, reason="failed", by="local", detail=self.why)

    async def start_groupcall(self, groupcall_id: uuid.UUID) -> None:
        log.warning("groupcall %s cannot ring: %s", groupcall_id, self.why)
        await self.records.update_groupcall(groupcall_id, "groupcall_hangup", status="hangup")

    async def hangup(self, call_id: uuid.UUID, reason: str = "normal") -> None:
        await self.records.finish(call_id, reason=reason, by="local")


class SipCallManager(CallManager):
    def __init__(
        self,
        settings: Settings,
        db: Database,
        encryptor: Encryptor,
        records: CallRecords,
        recordings: Recordings,
        registrations: Registrations,
        flows: FlowEngine,
        tts: TtsFactory,
    ) -> None:
        s = settings
        self.records = records
        self.recordings = recordings
        self.registrations = registrations
        self.flows = flows
        self.endpoint = SipEndpoint(
            s.sip_host,
            s.sip_port,
            public_host=s.sip_public_host or None,
            host6=sip_ipv6_host(s.sip_host, s.sip_host6),
            public_host6=s.sip_public_host6 or None,
            ipv6_optional=s.sip_host6.strip().lower() == "auto",
            on_request=self._on_request,
        )
        self.sip_host = s.sip_host
        self.legs = Legs(records, recordings, flows, max_duration=s.max_call_duration)
        self.router = routing.Router(
            db,
            encryptor,
            s.sip_domain,
            devcarrier=registrations.devcarrier_bindings,
            extensions=registrations.extension_bindings,
        )
        # Media in worker processes (each its own GIL: media/worker.py), or on this process's media thread.
        self.media_pool: MediaPool | None = None
        media: MediaFactory
        if s.media_process:
            self.media_pool = MediaPool(
                s.media_workers or min(4, os.cpu_count() or 1),
                port_min=s.rtp_port_min, port_max=s.rtp_port_max, realtime=s.media_realtime,
                log_level=s.log_level, log_format=s.log_format,
            )  # fmt: skip
            media = self.media_pool.open_session
        else:
            media = MediaSession.factory(PortAllocator(s.rtp_port_min, s.rtp_port_max))
        self.dialer = Dialer(
            self.endpoint,
            media,
            self.router,
            records,
            self.legs,
            self,
            tts,
            sip_domain=s.sip_domain,
            dial_timeout=s.dial_timeout,
        )
        self.bridging = Bridging(records, self.legs, self.dialer)
        self.inbound = Inbound(
            records,
            registrations,
            self.dialer,
            self.bridging,
            self.legs,
            self.run_flow,
            public_host=lambda: self.endpoint.public_host,
        )
        self.trunks = TrunkRegistrations(db, encryptor, self.endpoint)
        self.unavailable = ""  # why calls cannot be made (SIP could not start), else empty

    def disable(self, why: str) -> None:
        """SIP could not start: every call fails at once with ``why`` instead of pretending to ring."""
        self.unavailable = why

    @property
    def public_host(self) -> str:
        return self.endpoint.public_host

    @property
    def live(self) -> dict[uuid.UUID, LiveCall]:
        return self.legs.live

    async def start(self) -> None:
        if self.media_pool is not None:
            await self.media_pool.start()
        await self.endpoint.start()
        await self.trunks.sync()
        six = f" and [{self.endpoint.host6}]:{self.endpoint.port}" if self.endpoint.ipv6 else ""
        log.info("SIP listening on %s:%s%s (udp+tcp)", self.sip_host, self.endpoint.port, six)

    async def close(self) -> None:
        await self.legs.close()
        await self.trunks.close()
        if not self.unavailable:
            await self.endpoint.stop()
        if self.media_pool is not None:
            await self.media_pool.close()

    # -- the API's side ------------------------------------------------------------------------------
    async def start_outgoing(self, call_id: uuid.UUID) -> None:
        if self.unavailable:
            log.warning("call %s cannot be dialed: %s", call_id, self.unavailable)
            await self.records.finish(call_id, reason="failed", by="local", detail=self.unavailable)
            return
        self.legs.spawn(self.dialer.dial(call_id, self.run_flow))

    async def start_groupcall(self, groupcall_id: uuid.UUID) -> None:
        if self.unavailable:
            await self.records.update_groupcall(groupcall_id, "groupcall_hangup", status="hangup")
            return
        self.legs.spawn(self.dialer.ring_group(groupcall_id, self.run_flow))

    async def hangup(self, call_id: uuid.UUID, reason: str = "normal") -> None:
        call = self.legs.get(call_id)
        if call is None:
            await self.records.finish(call_id, reason=reason, by="local")
            return
        await self.legs.hangup(call, reason)

    def live_call(self, call_id: uuid.UUID) -> LiveCall | None:
        return self.legs.get(call_id)

    def trunk_status(self, provider_id: uuid.UUID) -> bool | None:
        return self.trunks.status(provider_id)

    async def sync_trunks(self) -> None:
        await self.trunks.sync()

    # -- flows ---------------------------------------------------------------------------------------
    async def run_flow(self, call: LiveCall) -> None:
        call.leg.activeflow_id = await self.flows.start_call(call)
        if call.is_hungup:  # the call ended while its flow was being created
            await self.flows.stop(call.leg.activeflow_id, wait=False)

    # -- CallOps (what live calls ask of the manager) ------------------------------------------------
    async def answer(self, call: LiveCall) -> None:
        leg = call.leg
        if leg.sip is not None or leg.incoming is None:
            return  # outgoing calls are answered by the callee; answering twice is a no-op
        if leg.ended.is_set():
            raise CallHungUp(str(call.call_id))
        leg.answer_incoming(self.public_host, self.endpoint.sdp_host6)
        self.legs.answered(call)
        await self.records.set_status(call.call_id, Status.PROGRESSING)

    async def hangup_call(self, call: LiveCall, reason: str) -> None:
        await self.legs.hangup(call, reason)

    async def recording_start(self, call: LiveCall, request: RecordingRequest) -> uuid.UUID:
        return await self.recordings.start(call.leg, request)

    async def recording_stop(self, call: LiveCall) -> None:
        await self.recordings.stop(call.leg)

    async def connect(
        self, call: LiveCall, source: dict[str, Any], destinations: list[dict[str, Any]], anonymous: str
    ) -> tuple[bool, str]:
        return await self.bridging.connect(call, source, destinations, anonymous)

    # -- incoming requests ---------------------------------------------------------------------------
    async def _on_request(self, ctx: IncomingRequest) -> None:
        method = ctx.request.method
        if method == "REGISTER":
            await self.registrations.on_register(ctx)
        elif method == "INVITE" and isinstance(ctx, IncomingInvite):
            await self.inbound.on_invite(ctx)
        else:
            ctx.respond(405)
