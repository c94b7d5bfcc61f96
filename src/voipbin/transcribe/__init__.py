"""Live transcription of calls (transcribes -> transcripts) and AI summaries of them.

* :mod:`voipbin.transcribe.live` — ``LiveTranscriber``: media taps -> streaming STT -> finals.
* :mod:`voipbin.transcribe.service` — ``get_transcribes(platform)``: rows, events, lifetimes.
* :mod:`voipbin.transcribe.summary` — ``get_summaries(platform)``: LLM summaries (sync / real time).
* :mod:`voipbin.transcribe.serialize` — VoIPBIN JSON shapes.
"""

from voipbin.transcribe.service import TranscribeError, get_transcribes
from voipbin.transcribe.summary import SummaryError, get_summaries

__all__ = ["SummaryError", "TranscribeError", "get_summaries", "get_transcribes"]
