"""Moves a call's audio to and from an external transport (RTP over UDP, the media_stream WebSocket).

The caller's 20 ms PCM frames go out through ``send`` as they arrive; what the transport hands to
:meth:`AudioPump.feed` is played to the caller, continuously, through the call's ``CallAudio`` port.
Bounded both ways: a transport that sends faster than real time loses its oldest audio, never memory.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

from voipbin.flow.interfaces import CallAudio, CallControl, CallHungUp

MAX_QUEUED_FRAMES = 250  # 5 s of audio fed ahead of playout


class AudioPump:
    def __init__(
        self, call: CallControl, audio: CallAudio, *, listen: bool = True, speak: bool = True
    ) -> None:
        self.call = call
        self.audio = audio
        self.listen = listen  # the external side hears the caller
        self.speak = speak  # the caller hears the external side
        self.dropped = 0
        self._queue: asyncio.Queue[bytes] = asyncio.Queue(MAX_QUEUED_FRAMES)

    def feed(self, pcm: bytes) -> None:
        """Audio (8 kHz PCM16) from the external side, to be played to the caller."""
        if not self.speak or not pcm:
            return
        if self._queue.full():
            self._queue.get_nowait()
            self.dropped += 1
        self._queue.put_nowait(pcm)

    async def run(self, send: Callable[[bytes], Awaitable[None]]) -> None:
        """Pump until cancelled; raises ``CallHungUp`` when the call ends (or what ``send`` raises)."""
        tasks = [asyncio.create_task(self._uplink(send)), asyncio.create_task(self._playout())]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()
            raise CallHungUp(str(self.call.call_id))
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if self.speak:
                with contextlib.suppress(CallHungUp):
                    self.audio.flush_playout()

    async def _uplink(self, send: Callable[[bytes], Awaitable[None]]) -> None:
        if not self.listen:
            await self.call.wait_hangup()
            return
        async for frame in self.audio.audio_in():  # raises CallHungUp when the call ends
            await send(frame)

    async def _frames(self) -> AsyncIterator[bytes]:
        while True:
            yield await self._queue.get()

    async def _playout(self) -> None:
        if not self.speak:
            await self.call.wait_hangup()
            return
        while True:  # play_stream returns only if something flushed the playout; then carry on
            await self.audio.play_stream(self._frames())
