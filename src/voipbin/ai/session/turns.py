"""Turn-taking: when has the caller finished a turn, and when do they interrupt? (sans-I/O)

Fed the caller's voice activity (VAD start/end), transcripts (STT finals) and whether the assistant
is answering; returns decisions. A turn is committed when there is transcribed text, the caller is
silent, and the assistant is not answering; text that arrives while it answers waits for the answer
to end (``ai``), unless the caller's voice interrupted it first (``ai_talk`` barge-in).
"""

from __future__ import annotations

from voipbin.speech.turn_detector import TurnConfig
from voipbin.speech.vad import VadConfig


def turn_config(*, smart_turn: bool, vad: VadConfig) -> TurnConfig:
    """The turn detector for an AI's ``smart_turn_enabled`` and ``vad_config``.

    With Smart Turn the audio model, the words and the adaptive wait decide (VoIPBIN forces
    ``stop_secs`` to 0.2 then; here the detector's own waits replace it). Without it, ``stop_secs``
    of silence ends a turn unless the words say it is unfinished (then up to the longest wait).
    """
    if smart_turn:
        return TurnConfig()
    return TurnConfig(use_audio_model=False, adaptive=False, stop_secs=max(0.1, vad.stop_secs))


class TurnTaker:
    def __init__(self, *, barge_in: bool) -> None:
        self.barge_in = barge_in
        self.user_speaking = False
        self.bot_active = False
        self._pending: list[str] = []

    def speech_started(self) -> bool:
        """Caller's voice began; True if the assistant must stop talking now (barge-in)."""
        self.user_speaking = True
        return self.barge_in and self.bot_active

    def speech_stopped(self) -> str | None:
        self.user_speaking = False
        return self._commit()

    def transcript(self, text: str) -> str | None:
        if text.strip():
            self._pending.append(text.strip())
        return self._commit()

    def bot_started(self) -> None:
        self.bot_active = True

    def bot_stopped(self) -> str | None:
        self.bot_active = False
        return self._commit()

    @property
    def pending(self) -> str:
        return " ".join(self._pending)

    def _commit(self) -> str | None:
        if self._pending and not self.user_speaking and not self.bot_active:
            text, self._pending = " ".join(self._pending), []
            return text
        return None
