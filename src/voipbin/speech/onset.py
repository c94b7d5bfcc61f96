"""Fast voice onset on each 20 ms frame, for barge-in: webrtcvad + loudness, 40 ms of voice.

Silero (32 ms frames) behind ``vad_config.start_secs`` (0.2 s) is right for turn-taking but too
slow to stop our audio when the caller cuts in. This detector says "voice" after ``onset_frames``
consecutive frames that webrtcvad calls speech and that are louder than a floor; the session then
*pauses* its audio at once and lets the slower evidence (words, how long the voice lasts) confirm
or undo the interruption.

The floor is raised while the AI is audible (``floor``: a level in dBFS, from the playback's own
level): the caller's line may echo our own speech back, attenuated. Sans-I/O: feed frames, read
events.
"""

from __future__ import annotations

from dataclasses import dataclass

from voipbin.speech.audio import dbfs
from voipbin.speech.vad import WebRtcGate

FRAME_SECS = 0.02


def volume_of(level: float) -> float:
    """:func:`voipbin.speech.audio.volume` of a level already measured in dBFS."""
    return min(1.0, max(0.0, (level + 70.0) / 50.0))


@dataclass(frozen=True)
class OnsetEvent:
    kind: str  # "onset" (voice began) | "quiet" (voice ended)
    time: float  # stream seconds: the first voiced frame / the first quiet frame
    voiced_secs: float = 0.0  # for "quiet": voiced frames heard since the onset


class OnsetDetector:
    def __init__(
        self,
        sample_rate: int = 8000,
        *,
        min_volume: float = 0.6,
        onset_frames: int = 2,
        quiet_frames: int = 15,
        mode: int = 2,
    ) -> None:
        self.gate = WebRtcGate(sample_rate, mode)
        self.min_volume = min_volume
        self.onset_frames = onset_frames
        self.quiet_frames = quiet_frames
        self.voice = False  # inside a voiced run (after its onset, before its quiet)
        self.voiced_secs = 0.0  # voiced frames since the onset
        self._time = 0.0
        self._run = 0
        self._quiet = 0
        self._run_start = 0.0
        self._quiet_start = 0.0

    @property
    def time(self) -> float:
        return self._time

    def voiced(self, frame: bytes, floor: float = -100.0) -> bool:
        """Whether this frame counts as the caller's voice (``min_volume`` and ``floor`` dBFS)."""
        level = dbfs(frame)  # once: ``volume`` is the same level on a 0..1 scale
        if volume_of(level) < self.min_volume or (floor > -100.0 and level < floor):
            return False
        return self.gate.is_speech(frame)

    def feed(self, frame: bytes, floor: float = -100.0) -> OnsetEvent | None:
        """One 20 ms frame; ``floor``: the level (dBFS) the caller's voice must reach now (echo guard)."""
        t = self._time
        self._time += FRAME_SECS
        speech = self.voiced(frame, floor)
        if not self.voice:
            if speech:
                if self._run == 0:
                    self._run_start = t
                self._run += 1
                if self._run >= self.onset_frames:
                    self.voice, self._quiet = True, 0
                    self.voiced_secs = self._run * FRAME_SECS
                    return OnsetEvent("onset", self._run_start)
            else:
                self._run = 0
            return None
        if speech:
            self.voiced_secs += FRAME_SECS
            self._quiet = 0
            return None
        if self._quiet == 0:
            self._quiet_start = t
        self._quiet += 1
        if self._quiet >= self.quiet_frames:
            self.voice, self._run = False, 0
            return OnsetEvent("quiet", self._quiet_start, self.voiced_secs)
        return None
