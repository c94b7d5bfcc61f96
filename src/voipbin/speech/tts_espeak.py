"""Offline fallback TTS: the ``espeak-ng`` program (GPL-3.0, used as an external process).

Tiny and fast (RTF ~0.01) but robotic. Text goes in on stdin (never on the command line, so text
cannot be mistaken for options); the WAV on stdout is streamed as it is produced. ``cancel()``
kills the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import AsyncIterator
from typing import Unpack

from voipbin.speech.audio import parse_wav_header
from voipbin.speech.errors import SpeechServerError, SpeechTimeout
from voipbin.speech.tts import ClauseTTS, TtsOptions

BINARY = "espeak-ng"


def espeak_available() -> bool:
    return shutil.which(BINARY) is not None


# espeak-ng 1.51's languages (primary subtags of ``espeak-ng --voices``), for validation at write time.
_ESPEAK_LANGUAGES = (
    "af am an ar as az ba be bg bn bpy bs ca chr cmn cs cv cy da de el en eo es et eu fa fi fr ga gd gn"
    " grc gu hak haw he hi hr ht hu hy hyw ia id io is it ja jbo ka kk kl kn ko kok ku ky la lb lfn lt"
    " ltg lv mi mk ml mr ms mt my nb nci ne nl nog om or pa pap piqd pl pt py qdb qu quc qya ro ru sd"
    " shn si sjn sk sl smj sq sr sv sw ta te th tk tn tr tt ug uk ur uz vi yue zh no"
)
ESPEAK_LANGUAGES: tuple[str, ...] = tuple(_ESPEAK_LANGUAGES.split())
# Regional voices espeak-ng has under the full tag; any other tag uses its primary language's voice.
_REGIONAL = frozenset(
    {"en-us", "en-gb", "en-029", "en-gb-scotland", "es-419", "pt-br", "fr-be", "fr-ch", "vi-vn-x-central"}
)
_ALIASES = {"zh": "cmn", "no": "nb"}


def espeak_voice(voice: str | None, language: str | None) -> str:
    if voice:
        return voice
    if language:
        tag = language.lower().replace("_", "-")
        if tag in _REGIONAL:
            return tag
        primary = tag.split("-")[0]
        return _ALIASES.get(primary, primary)
    return "en-us"


class EspeakTTS(ClauseTTS):
    provider = "espeak"
    source_rate = 22050

    def __init__(self, *, words_per_minute: int = 150, **kwargs: Unpack[TtsOptions]) -> None:
        super().__init__(**kwargs)
        self.words_per_minute = words_per_minute
        self._procs: set[asyncio.subprocess.Process] = set()

    def cancel(self) -> None:
        for proc in list(self._procs):
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
        super().cancel()

    async def _synthesize_clause(self, text: str) -> AsyncIterator[tuple[bytes, int]]:
        args = ["--stdout", "-v", espeak_voice(self.voice, self.language), "-s", str(self.words_per_minute)]
        proc = await asyncio.create_subprocess_exec(
            BINARY,
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        self._procs.add(proc)
        try:
            assert proc.stdin and proc.stdout and proc.stderr
            proc.stdin.write(text.encode() + b"\n")
            proc.stdin.close()
            head = b""
            rate = 0
            odd = b""
            while True:
                data = await asyncio.wait_for(proc.stdout.read(8192), self.timeout)
                if not data:
                    break
                if not rate:
                    head += data
                    parsed = parse_wav_header(head)
                    if parsed is None:
                        continue
                    rate, _channels, _bits, offset = parsed
                    data, head = head[offset:], b""
                data = odd + data
                cut = len(data) - len(data) % 2
                data, odd = data[:cut], data[cut:]
                if data:
                    yield data, rate
            code = await asyncio.wait_for(proc.wait(), self.timeout)
            if code != 0:
                err = (await proc.stderr.read()).decode(errors="replace").strip()
                raise SpeechServerError(f"espeak-ng exited with {code}: {err}", provider=self.provider)
        except TimeoutError as exc:
            raise SpeechTimeout("espeak-ng did not produce audio in time", provider=self.provider) from exc
        finally:
            self._procs.discard(proc)
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                with contextlib.suppress(Exception):
                    await proc.wait()
