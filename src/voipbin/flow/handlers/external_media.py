"""external_media_start / external_media_stop: the call's audio to the customer's own bot.

VoIPBIN's default (``encapsulation: rtp``, ``transport: udp``, ``connection_type: client``, ``format:
ulaw`` or ``alaw``): RTP from a local UDP port to ``external_host`` (``host:port``), and what that
address sends back is played to the caller (flow/streams/rtp_udp.py). As in VoIPBIN the action does not
block: the stream runs until ``external_media_stop`` or the end of the call. The flow variables
``voipbin.external_media.id``, ``.local_ip`` and ``.local_port`` tell where our side is.

``transport: websocket`` + ``encapsulation: twilio`` + a ``ws(s)://`` ``external_host``: a Twilio Media
Streams session (flow/streams/twilio.py). The flow waits while the stream is up, like Twilio's
``<Connect><Stream>``, and continues with the next action when the bot closes the WebSocket or
``external_media_stop`` ends it; a bot that cannot be reached fails the action.

``direction`` (VoIPBIN's option, default ``both``): ``in`` — the bot only hears the caller; ``out`` — the
caller only hears the bot; ``both``. The host is checked by the SSRF guard when the flow is saved and
again on the address dialled.
"""

from __future__ import annotations

import websockets

from voipbin.flow.handlers.base import CONTINUE, ActionContext, ActionFailed, Outcome
from voipbin.flow.handlers.registry import REGISTRY
from voipbin.flow.interfaces import CallAudio, CallControl, CallHungUp
from voipbin.flow.streams.rtp_udp import RtpExternalMedia
from voipbin.flow.streams.twilio import TwilioMediaStream, custom_parameters
from voipbin.models.action_options.media import ExternalMediaStartOption
from voipbin.security.outbound import WS_SCHEMES, OutboundBlocked, check_url, policy_for

SUPPORTED = (
    "encapsulation 'rtp' over transport 'udp' (connection_type 'client'), or encapsulation 'twilio' over "
    "transport 'websocket' with a ws:// or wss:// external_host"
)


async def _run_rtp(ctx: ActionContext, session: RtpExternalMedia) -> None:
    try:
        await session.run()
    except CallHungUp:
        pass
    finally:
        if ctx.services.media_streams.get(session.call.call_id) is session:
            del ctx.services.media_streams[session.call.call_id]


async def _start_rtp(ctx: ActionContext, call: CallAudio, opt: ExternalMediaStartOption) -> Outcome:
    assert isinstance(call, CallControl)
    connection = (opt.connection_type or "client").lower()
    if connection != "client":
        raise ActionFailed(
            f"external_media_start: connection_type {connection!r} is not supported (use client)"
        )
    listen, speak = _directions(opt)
    try:
        session = RtpExternalMedia(
            call,
            call,
            opt.external_host,
            policy_for(ctx.deps.settings.outbound_allow),
            format_=opt.format,
            listen=listen,
            speak=speak,
        )
        await session.open()
    except (ValueError, OSError) as exc:  # OutboundBlocked is a ValueError
        raise ActionFailed(f"external_media_start: {exc}") from None
    ctx.services.media_streams[call.call_id] = session
    ctx.services.spawn(_run_rtp(ctx, session), name=f"external media {session.id}")
    ctx.set_variables(
        {
            "voipbin.external_media.id": str(session.id),
            "voipbin.external_media.local_ip": session.local[0],
            "voipbin.external_media.local_port": str(session.local[1]),
        }
    )
    return CONTINUE


def _directions(opt: ExternalMediaStartOption) -> tuple[bool, bool]:
    """(the external side hears the caller, the caller hears the external side)."""
    direction = (opt.direction or "both").lower()
    return direction in ("both", "in"), direction in ("both", "out")


@REGISTRY.handler("external_media_start")
async def external_media_start(ctx: ActionContext) -> Outcome:
    opt = ctx.option
    assert isinstance(opt, ExternalMediaStartOption)
    call = ctx.require_call()
    transport = (opt.transport or "udp").lower()
    encapsulation = (opt.encapsulation or "rtp").lower()
    if not isinstance(call, CallAudio):
        raise ActionFailed("external_media_start: this call has no media path to stream")
    if call.call_id in ctx.services.media_streams:
        raise ActionFailed("external_media_start: this call already streams to an external host")
    if (transport, encapsulation) == ("udp", "rtp"):
        return await _start_rtp(ctx, call, opt)
    if (transport, encapsulation) != ("websocket", "twilio"):
        raise ActionFailed(
            f"external_media_start: transport {transport!r} with encapsulation {encapsulation!r} is not "
            f"supported; supported: {SUPPORTED}"
        )
    policy = policy_for(ctx.deps.settings.outbound_allow)
    try:
        check_url(policy, opt.external_host, WS_SCHEMES)
    except OutboundBlocked as exc:
        raise ActionFailed(f"external_media_start: {exc}") from None
    listen, speak = _directions(opt)
    stream = TwilioMediaStream(
        call,
        call,
        opt.external_host,
        policy,
        parameters=custom_parameters(opt.data),
        listen=listen,
        speak=speak,
    )
    ctx.services.media_streams[call.call_id] = stream
    try:
        await stream.run()
    except (OSError, TimeoutError, OutboundBlocked, websockets.WebSocketException) as exc:
        raise ActionFailed(f"external_media_start: streaming to {opt.external_host} failed: {exc}") from None
    finally:
        ctx.services.media_streams.pop(call.call_id, None)
    return CONTINUE


@REGISTRY.handler("external_media_stop")
async def external_media_stop(ctx: ActionContext) -> Outcome:
    """Ends the call's external media stream (RTP or Twilio), if one runs; a no-op otherwise."""
    call = ctx.require_call()
    stream = ctx.services.media_streams.get(call.call_id)
    if stream is not None:
        stream.stop()
    return CONTINUE
