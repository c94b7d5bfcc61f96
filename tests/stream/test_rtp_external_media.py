"""VoIPBIN's default external media: RTP/UDP (G.711 µ-law) to ``external_host``; a test media server on
loopback echoes it back, the SIP test phone hears its own tone; external_media_stop ends the stream."""

from __future__ import annotations

import asyncio
import itertools
import struct
import time
import uuid
from pathlib import Path
from typing import Any, cast

import pytest

from tests.calls.support import Telephony, dominant_frequency, write_sine
from voipbin.phone import TestPhone

pytestmark = pytest.mark.serial  # asserts real time: run with nothing beside it (conftest)

PHONE = "+15559876543"


class EchoMediaServer(asyncio.DatagramProtocol):
    """Records RTP packets and sends each payload back in its own RTP stream (PT 0) to the sender."""

    def __init__(self) -> None:
        self.packets: list[tuple[float, bytes, tuple[str, int]]] = []
        self.transport: asyncio.DatagramTransport | None = None
        self.seq = 1000

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.packets.append((time.monotonic(), data, addr))
        self.seq += 1
        header = struct.pack("!BBHII", 0x80, 0, self.seq & 0xFFFF, self.seq * 160, 0x1234)
        assert self.transport is not None
        self.transport.sendto(header + data[12:], addr)


async def test_rtp_to_external_host_and_back(telephony: Telephony, tmp_path: Path) -> None:
    loop = asyncio.get_running_loop()
    transport, server = await loop.create_datagram_endpoint(EchoMediaServer, local_addr=("127.0.0.1", 0))
    port = transport.get_extra_info("sockname")[1]
    tone = tmp_path / "tone.wav"
    write_sine(tone, seconds=2.0, freq=440.0)
    actions: list[dict[str, Any]] = [
        {"type": "external_media_start", "option": {"external_host": f"127.0.0.1:{port}"}},
        {"type": "sleep", "option": {"duration": 3500}},
        {"type": "external_media_stop"},
        {"type": "sleep", "option": {"duration": 1000}},
        {"type": "hangup"},
    ]
    phone = TestPhone(PHONE, server=("127.0.0.1", telephony.sip_port), record=tmp_path / "heard.wav")
    await phone.start()
    try:
        body = {
            "source": {"type": "tel", "target": "+15551234567"},
            "destinations": [{"type": "tel", "target": PHONE}],
            "actions": actions,
        }
        r = await telephony.client.post("/v1.0/calls", json=body)
        assert r.status_code == 200, r.text
        call_id = r.json()["id"]
        handle = await phone.wait_call(10)
        assert await asyncio.wait_for(handle.answered, 10)
        await asyncio.sleep(0.3)
        await handle.play_wav(tone)
        call = await telephony.wait_hangup(call_id, within=15)
        hung_up = time.monotonic()
        await asyncio.wait_for(asyncio.shield(handle.ended), 10)
        heard = handle.heard_pcm()
    finally:
        await phone.stop()
        transport.close()
    assert not call["metadata"].get("flow_error"), call["metadata"]
    af = await telephony.platform.flows.get(uuid.UUID(call["activeflow_id"]))
    assert af is not None
    variables = af.variables
    packets = server.packets
    assert len(packets) > 100, len(packets)  # ~3.5 s of 20 ms packets
    # Our stream: RTP v2, PCMU, 160-byte payloads, one SSRC, consecutive sequence and timestamps.
    headers = [struct.unpack("!BBHII", p[:12]) for _, p, _ in packets]
    assert all(h[0] == 0x80 and h[1] == 0 for h in headers)
    assert all(len(p) == 12 + 160 for _, p, _ in packets)
    assert len({h[4] for h in headers}) == 1
    assert all(
        (b[2] - a[2]) & 0xFFFF == 1 and (b[3] - a[3]) & 0xFFFFFFFF == 160
        for a, b in itertools.pairwise(headers)
    )
    assert {addr[0] for _, _, addr in packets} == {"127.0.0.1"}
    assert variables["voipbin.external_media.local_ip"]
    assert {addr[1] for _, _, addr in packets} == {int(variables["voipbin.external_media.local_port"])}
    # external_media_stop ended it: nothing in the last second of the call.
    assert hung_up - packets[-1][0] > 0.8, hung_up - packets[-1][0]
    # The phone heard its own tone, back through the external host.
    loud = heard[abs(heard) > 2000]
    assert len(loud) > 8000, len(loud)  # more than a second of it
    assert abs(dominant_frequency(heard, 8000) - 440) < 15
