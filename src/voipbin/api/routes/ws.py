"""``GET /v1.0/ws``: VoIPBIN's WebSocket event stream.

Authenticated like REST (``?token=``, ``?accesskey=``, ``Authorization: Bearer``); a bad credential is
refused before the upgrade with the REST error envelope (401). The client sends
``{"type": "subscribe" | "unsubscribe", "topics": [...]}`` and gets ``{"type": "ack", ...}`` or
``{"type": "error", ...}`` back, then every event of its topics as ``{"id", "type", "data", "topic"}``
(see ``events/stream.py``). A client too slow for its buffer is closed with code 1013.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from voipbin.api.deps import DbDep, SecretsDep, StreamDep, current_principal
from voipbin.api.errors import ApiError, envelope
from voipbin.events.stream import CLOSE_TOO_SLOW, Connection, EventStream, TopicError

router = APIRouter(prefix="/v1.0", tags=["websocket"])
CLOSE_WAIT = 2.0  # seconds a close handshake may take before the connection is abandoned
CUSTOMER_TOPIC_PERMISSIONS = ("admin", "manager")  # customer-wide topics, as in VoIPBIN


@router.websocket("/ws")
async def event_stream(websocket: WebSocket, db: DbDep, secrets: SecretsDep, stream: StreamDep) -> None:
    try:
        principal = await current_principal(websocket, db, secrets)
    except ApiError as err:
        await websocket.send_denial_response(envelope(websocket, err))  # type: ignore[arg-type]
        return
    await websocket.accept()
    conn = stream.connect(principal.customer_id, principal.agent_id)
    customer_wide = principal.is_platform_admin or any(
        p in principal.permission for p in CUSTOMER_TOPIC_PERMISSIONS
    )
    sender = asyncio.create_task(_send_all(websocket, conn))
    receiver = asyncio.create_task(
        _receive_all(websocket, stream, conn, customer_wide, principal.is_platform_admin)
    )
    dropped = asyncio.create_task(conn.dropped.wait())
    try:
        await asyncio.wait({sender, receiver, dropped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stream.disconnect(conn)
        for t in (sender, receiver, dropped):
            t.cancel()
        await asyncio.gather(sender, receiver, dropped, return_exceptions=True)
    if conn.dropped.is_set():
        with contextlib.suppress(Exception):
            await asyncio.wait_for(websocket.close(CLOSE_TOO_SLOW, "too slow: event buffer full"), CLOSE_WAIT)


async def _send_all(websocket: WebSocket, conn: Connection) -> None:
    while True:
        await websocket.send_text(await conn.queue.get())


async def _receive_all(
    websocket: WebSocket, stream: EventStream, conn: Connection, customer_wide: bool, any_customer: bool
) -> None:
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            reply = (
                _handle(text, stream, conn, customer_wide, any_customer)
                if isinstance(text, str)
                else {"type": "error", "message": "messages must be JSON text frames"}
            )
            conn.send(json.dumps(reply, separators=(",", ":")))


def _handle(
    text: str, stream: EventStream, conn: Connection, customer_wide: bool, any_customer: bool
) -> dict[str, Any]:
    try:
        msg = json.loads(text)
    except ValueError:
        return {"type": "error", "message": "messages must be JSON objects"}
    kind = msg.get("type") if isinstance(msg, dict) else None
    topics = msg.get("topics") if isinstance(msg, dict) else None
    if (
        kind not in ("subscribe", "unsubscribe")
        or not isinstance(topics, list)
        or not all(isinstance(t, str) for t in topics)
    ):
        return {
            "type": "error",
            "message": 'expected {"type": "subscribe"|"unsubscribe", "topics": [<topic>...]}',
        }
    try:
        if kind == "unsubscribe":
            done = stream.unsubscribe(conn, topics)
        else:
            if not customer_wide and any(t.startswith("customer_id:") for t in topics):
                raise TopicError("customer topics need admin or manager permission")
            done = stream.subscribe(conn, topics, any_customer=any_customer)
    except TopicError as exc:
        return {"type": "error", "message": str(exc), "topics": topics}
    return {"type": "ack", "action": kind, "topics": done}
