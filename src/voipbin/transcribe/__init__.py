"""Live transcription of calls (transcribes -> transcripts) and AI summaries of them.

* :mod:`voipbin.transcribe.live` — ``LiveTranscriber``: media taps -> streaming STT -> finals.
* :mod:`voipbin.transcribe.service` — ``TranscribeService``: rows, events, lifetimes.
* :mod:`voipbin.transcribe.actions` — ``transcribe_start`` / ``transcribe_stop`` handlers.
* :mod:`voipbin.transcribe.summary` — ``SummaryService``: LLM summaries (sync / real time).
* :mod:`voipbin.transcribe.summary_actions` — the ``ai_summary`` handler.
* :mod:`voipbin.transcribe.serialize` — VoIPBIN JSON shapes.
"""

from voipbin.transcribe.service import TranscribeError, TranscribeService
from voipbin.transcribe.summary import SummaryError, SummaryService

__all__ = ["SummaryError", "SummaryService", "TranscribeError", "TranscribeService"]
