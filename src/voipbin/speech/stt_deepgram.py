"""Deepgram live STT through the official ``deepgram-sdk`` (``listen.v1.connect``).

The SDK's ``DeepgramClientEnvironment`` lets us point it at any base URL (local fakes, proxies).
We ask for interim results, VAD events and utterance-end messages and translate them:
``SpeechStarted`` -> speech_started, ``Results`` (is_final false) -> interim, (is_final) -> final,
``UtteranceEnd`` -> speech_ended. A stalled server raises :class:`SpeechTimeout` after ``timeout``
seconds without a message while audio is owed an answer; a lost socket raises
:class:`SpeechConnectionError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING, Any, NoReturn, Unpack

from voipbin.speech.errors import SpeechConnectionError, SpeechError, SpeechTimeout, error_for_status
from voipbin.speech.httpclients import shared_httpx
from voipbin.speech.netutil import map_ws_error, ws_url
from voipbin.speech.stt import STT, SttEvent, SttEventType, SttOptions

if TYPE_CHECKING:
    from deepgram.environment import DeepgramClientEnvironment
    from deepgram.listen.v1.socket_client import AsyncV1SocketClient

DEFAULT_BASE_URL = "https://api.deepgram.com"


def _sdk_sockets_uncompressed() -> None:
    """Make the SDK open its live sockets without permessage-deflate (idempotent, process-wide).

    Why: the SDK connects with websockets' default compression and has no option for it. Deflating
    PCM saves little, and every 20 ms send (and every result) then ran zlib on the control loop: the
    largest Python item in the server's profile at 40-60 AI calls (docs/benchmarks.md, AI density).
    The SDK's ``connect`` calls this module attribute, so it gets the same connect with one more
    keyword; everything else (URL, headers, errors) stays the SDK's.
    """
    import functools

    from deepgram.listen.v1 import client as sdk

    if not isinstance(sdk.websockets_client_connect, functools.partial):
        uncompressed = functools.partial(sdk.websockets_client_connect, compression=None)
        sdk.websockets_client_connect = uncompressed  # type: ignore[assignment]


def deepgram_environment(base_url: str | None) -> DeepgramClientEnvironment:
    from deepgram.environment import DeepgramClientEnvironment

    if not base_url:
        return DeepgramClientEnvironment.PRODUCTION
    http = base_url.rstrip("/")
    return DeepgramClientEnvironment(base=http, production=ws_url(http), agent=ws_url(http), agent_rest=http)


class DeepgramSTT(STT):
    provider = "deepgram"
    ends_utterances = True

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str | None = None,
        model: str = "nova-2",
        endpointing_ms: int = 300,
        utterance_end_ms: int = 1000,
        **kwargs: Unpack[SttOptions],
    ) -> None:
        super().__init__(**kwargs)
        self.api_key = api_key
        self.base_url = base_url
        self.model = model
        self.endpointing_ms = endpointing_ms
        self.utterance_end_ms = utterance_end_ms
        self._cm: contextlib.AbstractAsyncContextManager[AsyncV1SocketClient] | None = None
        self._sock: AsyncV1SocketClient | None = None
        self._last_send = 0.0
        self._last_recv = 0.0
        self._in_speech = False
        self._interim_open = False  # an interim transcript whose final has not come yet

    def settled(self) -> bool:
        return not self._interim_open and self._events.empty()

    async def _open(self) -> None:
        from deepgram import AsyncDeepgramClient
        from deepgram.core.api_error import ApiError

        # The loop's pooled httpx client: the SDK's default one builds an SSL context per session
        # (~16 ms on the loop), and the websocket stream never uses it anyway.
        client = AsyncDeepgramClient(
            api_key=self.api_key, environment=deepgram_environment(self.base_url), httpx_client=shared_httpx()
        )
        params = dict(
            model=self.model,
            encoding="linear16",
            sample_rate=str(self.sample_rate),
            channels="1",
            interim_results="true",
            vad_events="true",
            punctuate="true",
            endpointing=str(self.endpointing_ms),
            utterance_end_ms=str(self.utterance_end_ms),
        )
        if self.language:
            params["language"] = self.language
        _sdk_sockets_uncompressed()
        self._cm = client.listen.v1.connect(**params)
        try:
            self._sock = await asyncio.wait_for(self._cm.__aenter__(), self.timeout)
        except ApiError as exc:
            self._fail_now(
                error_for_status(exc.status_code or 500, f"deepgram: {exc.body}", provider=self.provider)
            )
        except Exception as exc:
            self._fail_now(map_ws_error(exc, self.provider))
        self._last_recv = time.monotonic()
        self._spawn(self._receive())

    def _fail_now(self, err: SpeechError) -> NoReturn:
        self._fail(err)
        raise err

    async def _send_audio(self, pcm: bytes) -> None:
        try:
            assert self._sock is not None  # set by _open, which start() ran first
            # asyncio.timeout, not wait_for: wait_for wraps every 20 ms send in a task of its own.
            async with asyncio.timeout(self.timeout):
                await self._sock.send_media(pcm)
        except Exception as exc:
            err = map_ws_error(exc, self.provider)
            self._fail(err)
            raise err from exc
        if self._last_send <= self._last_recv:
            self._last_send = time.monotonic()

    async def _close_input(self) -> None:
        try:
            assert self._sock is not None
            await asyncio.wait_for(self._sock.send_close_stream(), self.timeout)
        except Exception as exc:
            self._fail(map_ws_error(exc, self.provider))
        self._last_send = time.monotonic()

    async def _abort(self) -> None:
        # Abort the socket instead of a closing handshake: a stalled server would never answer it
        # (and the SDK's legacy websockets close cannot be cut short by a timeout).
        ws = getattr(self._sock, "_websocket", None)
        transport = getattr(ws, "transport", None)
        if transport is not None:
            transport.abort()

    async def _receive(self) -> None:
        from websockets.exceptions import ConnectionClosedOK

        sock = self._sock
        assert sock is not None  # this task is spawned once the socket is open
        try:
            while not self.cancelled:
                try:
                    async with asyncio.timeout(0.25):  # not wait_for: it can swallow cancel() on 3.11
                        msg = await sock.recv()
                except TimeoutError:
                    owed = self._closed or self._last_send > self._last_recv
                    waited = time.monotonic() - max(self._last_recv, self._last_send if owed else 0)
                    if owed and waited > self.timeout:
                        raise SpeechTimeout("deepgram stopped answering", provider=self.provider) from None
                    continue
                self._last_recv = time.monotonic()
                self._handle(msg)
        except ConnectionClosedOK:  # the normal end, after our CloseStream
            if not self._closed:
                raise SpeechConnectionError(
                    "deepgram closed the stream early", provider=self.provider
                ) from None
            if self._in_speech:
                self._emit(SttEvent(SttEventType.SPEECH_ENDED, language=self.language))
            self._finish()
        except (SpeechTimeout, SpeechConnectionError):
            raise
        except Exception as exc:
            raise map_ws_error(exc, self.provider) from exc
        finally:
            await self._abort()

    def _handle(self, msg: Any) -> None:
        # The SDK's messages are read by their ``type`` (a dict when the SDK could not parse one).
        kind = getattr(msg, "type", None) or (msg.get("type") if isinstance(msg, dict) else None)
        if kind == "SpeechStarted":
            if not self._in_speech:
                self._in_speech = True
                self._emit(SttEvent(SttEventType.SPEECH_STARTED, start=msg.timestamp, language=self.language))
        elif kind == "Results":
            alts = msg.channel.alternatives
            text = alts[0].transcript.strip() if alts else ""
            if not text:
                return
            if not self._in_speech:  # vad_events can be late or off: a transcript implies speech
                self._in_speech = True
                self._emit(SttEvent(SttEventType.SPEECH_STARTED, start=msg.start, language=self.language))
            self._interim_open = not msg.is_final
            self._emit(
                SttEvent(
                    SttEventType.FINAL if msg.is_final else SttEventType.INTERIM,
                    text=text,
                    start=msg.start,
                    end=msg.start + msg.duration,
                    confidence=alts[0].confidence,
                    language=self.language,
                )
            )
        elif kind == "UtteranceEnd":
            if self._in_speech:
                self._in_speech = False
                self._emit(SttEvent(SttEventType.SPEECH_ENDED, end=msg.last_word_end, language=self.language))
        elif kind == "Error" or (isinstance(msg, dict) and msg.get("type") == "Error"):
            from voipbin.speech.errors import SpeechServerError

            raise SpeechServerError(f"deepgram error: {msg}", provider=self.provider)
