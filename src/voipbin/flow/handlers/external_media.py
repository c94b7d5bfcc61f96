"""external_media_start / external_media_stop: the call's audio to the customer's own bot.

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
from voipbin.flow.interfaces import CallAudio
from voipbin.flow.streams.twilio import TwilioMediaStream, custom_parameters
from voipbin.models.action_options.media import ExternalMediaStartOption
from voipbin.security.outbound import WS_SCHEMES, OutboundBlocked, check_url, policy_for

SUPPORTED = "transport 'websocket' with encapsulation 'twilio' and a ws:// or wss:// external_host"


@REGISTRY.handler("external_media_start")
async def external_media_start(ctx: ActionContext) -> Outcome:
    opt = ctx.option
    assert isinstance(opt, ExternalMediaStartOption)
    call = ctx.require_call()
    transport = (opt.transport or "udp").lower()
    encapsulation = (opt.encapsulation or "rtp").lower()
    if transport != "websocket" or encapsulation != "twilio":
        raise ActionFailed(
            f"external_media_start: transport {transport!r} with encapsulation {encapsulation!r} is not "
            f"supported yet; supported: {SUPPORTED}"
        )
    if not isinstance(call, CallAudio):
        raise ActionFailed("external_media_start: this call has no media path to stream")
    if call.call_id in ctx.services.media_streams:
        raise ActionFailed("external_media_start: this call already streams to an external host")
    policy = policy_for(ctx.deps.settings.outbound_allow)
    try:
        check_url(policy, opt.external_host, WS_SCHEMES)
    except OutboundBlocked as exc:
        raise ActionFailed(f"external_media_start: {exc}") from None
    direction = (opt.direction or "both").lower()
    stream = TwilioMediaStream(
        call,
        call,
        opt.external_host,
        policy,
        parameters=custom_parameters(opt.data),
        listen=direction in ("both", "in"),
        speak=direction in ("both", "out"),
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
    """Ends the call's external media stream, if one runs (a no-op otherwise, as in VoIPBIN)."""
    call = ctx.require_call()
    stream = ctx.services.media_streams.get(call.call_id)
    if stream is not None:
        stream.stop()
    return CONTINUE
