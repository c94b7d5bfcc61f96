"""The caller's side of the pipeline: inbound audio -> VAD (turn-taking) and STT, as events.

Each 20 ms frame from the call goes to the VAD segmenter (inline: ~0.2 ms of Silero per 32 ms and
webrtcvad-gated in silence) and to the STT stream. VAD gives speech start/stop at once, which is
what barge-in and turn-taking need; STT gives the words, usually a little later. Both are posted to
one queue the session reads. Speech-stop events carry the wall-clock time the caller actually went
quiet (the VAD needs ``stop_secs`` of silence to say so), which is where latency is measured from.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from voipbin.flow.interfaces import CallAudio, CallHungUp
from voipbin.speech.stt import STT, SttEventType
from voipbin.speech.vad import VadConfig, VadSegmenter


@dataclass(frozen=True)
class SpeechStarted:
    at: float  # loop time the caller's voice began (detected start_secs later)


@dataclass(frozen=True)
class SpeechStopped:
    at: float  # loop time the caller went quiet


@dataclass(frozen=True)
class Transcript:
    text: str


@dataclass(frozen=True)
class InputEnded:
    error: BaseException | None = None  # None / CallHungUp: the call ended; else a failure


InputEvent = SpeechStarted | SpeechStopped | Transcript | InputEnded


class Listener:
    def __init__(self, audio: CallAudio, stt: STT, vad: VadConfig, out: asyncio.Queue[object]) -> None:
        self.audio = audio
        self.stt = stt
        self.vad = VadSegmenter(8000, vad)
        self.out = out

    async def listen(self) -> None:
        """Feed VAD and STT until the call ends (then post :class:`InputEnded`)."""
        loop = asyncio.get_running_loop()
        try:
            async for pcm in self.audio.audio_in():
                for ev in self.vad.feed(pcm):
                    # The segmenter is behind "now" by the audio it has seen after the event.
                    at = loop.time() - (self.vad.time - ev.time)
                    self.out.put_nowait(SpeechStarted(at) if ev.kind == "start" else SpeechStopped(at))
                await self.stt.feed(pcm)
            self.out.put_nowait(InputEnded())
        except CallHungUp as exc:
            self.out.put_nowait(InputEnded(exc))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.out.put_nowait(InputEnded(exc))

    async def transcripts(self) -> None:
        """Forward STT finals (interim results are not used for turns)."""
        try:
            async for ev in self.stt:
                if ev.type == SttEventType.FINAL and ev.text.strip():
                    self.out.put_nowait(Transcript(ev.text.strip()))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.out.put_nowait(InputEnded(exc))
