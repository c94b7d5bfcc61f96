"""``GET /v1.0/calls/{id}/media_stream``: a WebSocket client gets the caller's audio and sends audio back
(the SIP test phone hears its own tone), authenticated and tenant-scoped like REST."""

from __future__ import annotations

import asyncio
import struct
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import uvicorn
import websockets

from tests.calls.support import Telephony, dominant_frequency, write_sine
from tests.conftest import free_port
from voipbin.flow.streams.framing import AS_AUDIO, AS_HANGUP, AS_UUID, audiosocket_frame, parse_audiosocket
from voipbin.phone import TestPhone

PHONE = "+15559876543"


@asynccontextmanager
async def served(telephony: Telephony) -> AsyncIterator[str]:
    """The platform's app on a real loopback port (WebSockets need a real server)."""
    port = free_port()
    config = uvicorn.Config(telephony.app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)  # lifespan off: the fixture already started the node
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(10):
        while not server.started:  # noqa: ASYNC110  (uvicorn exposes only a flag)
            await asyncio.sleep(0.01)
    try:
        yield f"ws://127.0.0.1:{port}/v1.0"
    finally:
        server.should_exit = True
        await task


async def answered_call(telephony: Telephony, phone: TestPhone) -> tuple[str, object]:
    body = {
        "source": {"type": "tel", "target": "+15551234567"},
        "destinations": [{"type": "tel", "target": PHONE}],
        "actions": [{"type": "sleep", "option": {"duration": 20000}}, {"type": "hangup"}],
    }
    r = await telephony.client.post("/v1.0/calls", json=body)
    assert r.status_code == 200, r.text
    handle = await phone.wait_call(10)
    assert await asyncio.wait_for(handle.answered, 10)
    await telephony.wait_call(r.json()["id"], lambda c: c["status"] == "progressing")
    return r.json()["id"], handle


async def handshake_status(url: str) -> tuple[int, dict]:
    with pytest.raises(websockets.InvalidStatus) as caught:
        async with websockets.connect(url):
            pass
    response = caught.value.response
    import json

    return response.status_code, json.loads(response.body or b"{}")


@pytest.mark.parametrize("encapsulation", ["rtp", "audiosocket", "none"])
async def test_media_stream_echo(telephony: Telephony, tmp_path: Path, encapsulation: str) -> None:
    tone = tmp_path / "tone.wav"
    write_sine(tone, seconds=1.5, freq=440.0)
    key = telephony.admin.accesskey
    phone = TestPhone(PHONE, server=("127.0.0.1", telephony.sip_port), record=tmp_path / "heard.wav")
    await phone.start()
    try:
        async with served(telephony) as base:
            call_id, handle = await answered_call(telephony, phone)
            url = f"{base}/calls/{call_id}/media_stream?encapsulation={encapsulation}&accesskey={key}"
            frames = 0
            async with websockets.connect(url) as ws:
                if encapsulation == "audiosocket":
                    first = parse_audiosocket(await ws.recv())
                    assert first == [(AS_UUID, uuid.UUID(call_id).bytes)]
                play = asyncio.create_task(handle.play_wav(tone))  # type: ignore[attr-defined]
                while frames < 125:  # 2.5 s, echoed as received
                    data = await ws.recv()
                    assert isinstance(data, bytes)
                    if encapsulation == "rtp":
                        assert len(data) == 172 and data[0] == 0x80 and data[1] & 0x7F == 0
                        seq = struct.unpack("!H", data[2:4])[0]
                        await ws.send(struct.pack("!BBHII", 0x80, 0, seq, frames * 160, 42) + data[12:])
                    elif encapsulation == "audiosocket":
                        ((kind, pcm),) = parse_audiosocket(data)
                        assert kind == AS_AUDIO and len(pcm) == 320
                        await ws.send(audiosocket_frame(AS_AUDIO, pcm))
                    else:
                        assert len(data) == 160
                        await ws.send(data)
                    frames += 1
                await play
                if encapsulation == "audiosocket":
                    await ws.send(audiosocket_frame(AS_HANGUP))
                    await asyncio.wait_for(ws.wait_closed(), 5)
            await asyncio.sleep(0.3)
            call = await telephony.call(call_id)
            assert call["status"] == "progressing"  # closing the stream leaves the call up
            assert await handle.hangup() == "local"  # type: ignore[attr-defined]
        await asyncio.wait_for(asyncio.shield(handle.ended), 10)  # type: ignore[attr-defined]
        heard = handle.heard_pcm()  # type: ignore[attr-defined]
    finally:
        await phone.stop()
    assert len(heard[abs(heard) > 2000]) > 6000
    assert abs(dominant_frequency(heard, 8000) - 440) < 15


async def test_media_stream_is_authenticated_and_tenant_scoped(telephony: Telephony) -> None:
    other = await telephony.other_tenant()
    phone = TestPhone(PHONE, server=("127.0.0.1", telephony.sip_port))
    await phone.start()
    try:
        async with served(telephony) as base:
            call_id, handle = await answered_call(telephony, phone)
            path = f"{base}/calls/{call_id}/media_stream"
            status, body = await handshake_status(path)
            assert status == 401 and body["error"]["reason"] == "AUTHENTICATION_REQUIRED"
            status, body = await handshake_status(f"{path}?accesskey=vb_{'x' * 32}")
            assert status == 401
            status, body = await handshake_status(f"{path}?accesskey={other.accesskey}")
            assert status == 404 and body["error"]["reason"] == "CALL_NOT_FOUND"  # another tenant's call
            key = telephony.admin.accesskey
            status, body = await handshake_status(f"{path}?accesskey={key}&encapsulation=mp3")
            assert status == 400 and body["error"]["details"] == [{"field": "encapsulation"}]
            status, body = await handshake_status(f"{base}/calls/{uuid.uuid4()}/media_stream?accesskey={key}")
            assert status == 404
            status, body = await handshake_status(f"{base}/calls/nope/media_stream?accesskey={key}")
            assert status == 400 and body["error"]["reason"] == "INVALID_ID"
            # The call ends: the stream closes.
            async with websockets.connect(f"{path}?accesskey={key}") as ws:
                await ws.recv()
                await handle.hangup()  # type: ignore[attr-defined]
                async with asyncio.timeout(5):
                    with pytest.raises(websockets.ConnectionClosedOK):
                        while True:
                            await ws.recv()
    finally:
        await phone.stop()
