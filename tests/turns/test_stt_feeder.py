"""SttFeeder: the listener never waits for the STT; what queues during a slow send goes out together."""

from __future__ import annotations

import asyncio

import pytest

from voipbin.ai.session.listener import SttFeeder


class SlowStt:
    """Records each send; every send takes ``delay`` (a provider socket under load)."""

    def __init__(self, delay: float, fail_on: int | None = None) -> None:
        self.delay = delay
        self.fail_on = fail_on
        self.sends: list[bytes] = []

    async def feed(self, pcm: bytes) -> None:
        if self.fail_on is not None and len(self.sends) == self.fail_on:
            raise ConnectionError("stt socket closed")
        self.sends.append(pcm)
        await asyncio.sleep(self.delay)


async def test_frames_queued_during_a_slow_send_go_out_together_in_order() -> None:
    stt = SlowStt(delay=0.05)
    feeder = SttFeeder(stt)  # type: ignore[arg-type]
    frames = [bytes([i]) * 320 for i in range(20)]
    for frame in frames:
        feeder.feed(frame)  # never awaits: the listener stays on its audio
        await asyncio.sleep(0.005)
    await feeder.drain()
    assert b"".join(stt.sends) == b"".join(frames)  # every byte, in order
    assert 1 < len(stt.sends) < len(frames)  # coalesced while a send was in flight


async def test_a_failed_send_fails_the_next_feed_and_the_drain() -> None:
    stt = SlowStt(delay=0.0, fail_on=1)
    feeder = SttFeeder(stt)  # type: ignore[arg-type]
    feeder.feed(b"\x00" * 320)
    await asyncio.sleep(0.01)
    feeder.feed(b"\x01" * 320)
    await asyncio.sleep(0.01)
    with pytest.raises(ConnectionError):
        feeder.feed(b"\x02" * 320)
    with pytest.raises(ConnectionError):
        await feeder.drain()
