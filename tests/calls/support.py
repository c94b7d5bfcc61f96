"""A whole platform with telephony on loopback: real SQLite, the real app, SIP on a free port."""

from __future__ import annotations

import asyncio
import math
import re
import time
import uuid
import wave
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from sqlalchemy import select

from tests.api.support import client_for
from tests.sip.conftest import free_port
from voipbin.app import create_app
from voipbin.config import Settings
from voipbin.node import Node, build_node, start_node, stop_node
from voipbin.store.tables import Call
from voipbin.tenants import NewCustomer, bootstrap, create_customer


@dataclass
class Telephony:
    platform: Node
    app: Any
    admin: NewCustomer
    client: httpx.AsyncClient
    sip_port: int
    media_dir: Path

    async def call(self, call_id: str) -> dict[str, Any]:
        r = await self.client.get(f"/v1.0/calls/{call_id}")
        assert r.status_code == 200, r.text
        return r.json()

    async def wait_call(
        self, call_id: str, predicate: Callable[[dict[str, Any]], bool], within: float = 15.0
    ) -> dict[str, Any]:
        deadline = time.monotonic() + within
        while True:
            call = await self.call(call_id)
            if predicate(call):
                return call
            if time.monotonic() > deadline:
                raise AssertionError(f"call never reached the expected state: {call}")
            await asyncio.sleep(0.05)

    async def wait_hangup(self, call_id: str, within: float = 15.0) -> dict[str, Any]:
        return await self.wait_call(call_id, lambda c: c["status"] == "hangup", within)

    async def other_tenant(self) -> NewCustomer:
        """A second customer, for tenancy checks (its ids answer 404 to the admin and vice versa)."""
        async with self.platform.db.session() as session:
            other = await create_customer(
                session,
                passwords=self.platform.passwords,
                initial_balance=0,
                name="other",
                username="other",
                password="other-pass-1",
            )
            await session.commit()
        return other


def write_sine(path: Path, seconds: float = 1.0, freq: float = 440.0, rate: int = 8000, amp: float = 0.5):
    n = int(seconds * rate)
    t = np.arange(n) / rate
    pcm = (amp * 32767 * np.sin(2 * math.pi * freq * t)).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path), "rb") as w:
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
        if w.getnchannels() > 1:
            data = data.reshape(-1, w.getnchannels())[:, 0]
        return data.astype(np.int32), w.getframerate()


def dominant_frequency(pcm: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(pcm.astype(np.float64)))
    return float(np.argmax(spectrum[1:]) + 1) * rate / len(pcm)


@pytest.fixture
async def telephony(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Telephony]:
    """``@pytest.mark.parametrize("telephony", [{setting: value}], indirect=True)`` overrides settings."""
    sip_port = free_port()
    base = 20000 + (sip_port % 50) * 200  # below Linux's ephemeral range (32768+): no clash with free ports
    media = tmp_path / "media"
    media.mkdir()
    settings = Settings(
        data_dir=tmp_path / "var",
        admin_password="admin-password-1",
        sip_host="127.0.0.1",
        sip_port=sip_port,
        rtp_port_min=base,
        rtp_port_max=base + 199,
        dial_timeout=8,
        flow_media_dirs=str(media),
        telephony=True,
    )
    settings = settings.model_copy(update=getattr(request, "param", {}))
    platform = build_node(settings)
    await platform.db.migrate()
    admin = await bootstrap(platform.db, platform.settings)
    assert admin is not None
    await start_node(platform)
    app = create_app(settings, platform)
    client = client_for(app, admin.accesskey)
    try:
        yield Telephony(platform, app, admin, client, sip_port, media)
    finally:
        await client.aclose()
        await stop_node(platform)


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


_UNITS = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
_TENS = {
    w: 10 * (i + 2)
    for i, w in enumerate(["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"])
}


def transcript_words(text: str) -> list[str]:
    """A transcript's words, normalised the way a recogniser may write the same speech: lower case, no
    punctuation, "9-5" as two words and number words as digits ("forty two" and "42" are one word)."""
    raw = re.sub(r"[-\u2013\u2014/]", " ", text.lower())
    words = [w for w in (t.strip(".,!?;:'\"") for t in raw.split()) if w]
    out: list[str] = []
    for w in words:
        if w in _UNITS:
            n = _UNITS.index(w)
            if out and 0 < n < 10 and out[-1].isdigit() and int(out[-1]) in _TENS.values():
                out[-1] = str(int(out[-1]) + n)  # "forty" "two" -> "42"
                continue
            w = str(n)
        elif w in _TENS:
            w = str(_TENS[w])
        out.append(w)
    return out


def heard_fraction(heard: str, expected: str) -> float:
    """Share of the expected words found in a transcript: a word-error bound for checks that go through
    G.711 and a small offline recogniser (which may hear "monday" as "1 day", or "from 9 to 5" as
    "9-5")."""
    words = transcript_words(expected)
    said = set(transcript_words(heard))
    return sum(1 for w in words if w in said) / max(1, len(words))


async def route_number(t: Telephony, actions: list) -> None:
    flow = (await t.client.post("/v1.0/flows", json={"name": "in", "actions": actions})).json()
    number = (await t.client.get("/v1.0/numbers")).json()["result"][0]
    r = await t.client.put(f"/v1.0/numbers/{number['id']}/flow_ids", json={"call_flow_id": flow["id"]})
    assert r.status_code == 200, r.text


async def incoming_call(t: Telephony) -> dict:
    async with t.platform.db.session() as s:
        row = (await s.execute(select(Call).where(Call.direction == "incoming"))).scalars().first()
    assert row is not None, "no incoming call was created"
    return await t.call(str(row.id))


async def flow_variables(t: Telephony, activeflow_id: str) -> dict[str, str]:
    """As the API sees them: the live state while the activeflow still runs, else the stored row."""
    af = await t.platform.flows.get(uuid.UUID(activeflow_id))
    assert af is not None
    return af.variables
