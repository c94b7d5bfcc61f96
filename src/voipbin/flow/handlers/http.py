"""HTTP actions: webhook_send and fetch (httpx, one shared client per engine).

webhook_send sends the raw ``data`` string, signed like VoIPBIN's webhooks when the customer has a
webhook secret (``X-VoIPBIN-Signature: sha256=<hex HMAC-SHA256(secret, body)>``). Delivery problems are
logged, never fatal to the flow. fetch POSTs ``{"activeflow_id","reference_id"}`` and runs the returned
action list next; a failed fetch ends the activeflow (there is nothing sensible to run instead).
"""

from __future__ import annotations

import json
import logging
import uuid

import httpx

from voipbin.flow.handlers.base import CONTINUE, ActionContext, ActionFailed, FlowDeps, Outcome, Push
from voipbin.flow.handlers.registry import REGISTRY
from voipbin.models.action_options.control import FetchOption, WebhookSendOption
from voipbin.models.actions import ActionValidationError, validate_actions
from voipbin.security import sign_body
from voipbin.store.tables import Customer

log = logging.getLogger(__name__)
MAX_FETCH_BYTES = 1024 * 1024


async def customer_webhook_secret(deps: FlowDeps, customer_id: uuid.UUID) -> str:
    async with deps.db.session() as session:
        customer = await session.get(Customer, customer_id)
    if customer is None or not customer.webhook_secret_enc:
        return ""
    try:
        return deps.encryptor.decrypt(customer.webhook_secret_enc)
    except ValueError:
        log.error("customer %s webhook secret cannot be decrypted; sending unsigned", customer_id)
        return ""


async def _send_webhook(
    http: httpx.AsyncClient,
    activeflow_id: uuid.UUID,
    method: str,
    uri: str,
    body: bytes,
    headers: dict[str, str],
) -> None:
    try:
        response = await http.request(method, uri, content=body, headers=headers)
    except httpx.HTTPError as exc:
        log.warning("activeflow %s webhook_send %s %s failed: %r", activeflow_id, method, uri, exc)
        return
    if response.status_code >= 400:
        log.warning(
            "activeflow %s webhook_send %s %s answered HTTP %d",
            activeflow_id,
            method,
            uri,
            response.status_code,
        )


@REGISTRY.handler("webhook_send", needs_call=False)
async def webhook_send(ctx: ActionContext) -> Outcome:
    opt = ctx.option
    assert isinstance(opt, WebhookSendOption)
    body = opt.data.encode()
    headers = {"Content-Type": opt.data_type or "application/json"}
    secret = await customer_webhook_secret(ctx.deps, ctx.customer_id)
    if secret:
        headers["X-VoIPBIN-Signature"] = sign_body(secret, body)
    send = _send_webhook(ctx.services.http, ctx.activeflow_id, opt.method or "POST", opt.uri, body, headers)
    if opt.sync:
        await send
    else:
        ctx.services.spawn(send, name=f"webhook_send {ctx.activeflow_id}")
    return CONTINUE


@REGISTRY.handler("fetch", needs_call=False)
async def fetch(ctx: ActionContext) -> Outcome:
    opt = ctx.option
    assert isinstance(opt, FetchOption)
    payload = {"activeflow_id": str(ctx.activeflow_id), "reference_id": str(ctx.reference_id)}
    method = opt.event_method or "POST"
    try:
        async with ctx.services.http.stream(method, opt.event_url, json=payload) as response:
            if response.status_code != 200:
                raise ActionFailed(f"fetch: {method} {opt.event_url} answered HTTP {response.status_code}")
            raw = b""
            async for chunk in response.aiter_bytes():
                raw += chunk
                if len(raw) > MAX_FETCH_BYTES:
                    raise ActionFailed(f"fetch: the response is larger than {MAX_FETCH_BYTES} bytes")
    except httpx.HTTPError as exc:
        raise ActionFailed(f"fetch: {method} {opt.event_url} failed: {exc!r}") from None
    try:
        data = json.loads(raw)
    except ValueError:
        raise ActionFailed("fetch: the response is not JSON (expected a list of actions)") from None
    try:
        actions = validate_actions(data, "fetch response")
    except ActionValidationError as exc:
        raise ActionFailed(f"fetch: {exc.message}") from None
    return Push(actions)
