"""``TestPhone``: a scriptable SIP phone built from our own SIP and RTP stack.

It stands in for a person on the PSTN when the platform runs without a trunk: it REGISTERs an E.164
number at the platform's development carrier, rings and answers (or rejects, or rings forever),
plays a WAV or speaks text, records what it hears, sends RFC 4733 DTMF, hangs up, and can place
calls to the platform's numbers. End-to-end tests drive it as a library; ``voipbin phone`` runs it
from the command line and prints its events as JSON lines.

    phone = TestPhone("+15559876543", server=("127.0.0.1", 5060), say="Hello", record=Path("in.wav"))
    await phone.start()                      # registers sip:+15559876543@voipbin.local
    call = await phone.wait_call()           # next incoming call (answered automatically)
    assert await call.answered
    by = await call.ended                    # "local" / "remote" (who hung up), or "rejected"...
    text = await call.heard_text()           # offline STT of the recording
    out = phone.dial("+15551234567", play=Path("hello.wav"))
    await out.send_dtmf("1#")
    await phone.stop()                       # hangs up, unregisters

Every event is a dict (``{"event": "registered" | "incoming" | "dialing" | "ringing" | "answered" |
"played" | "dtmf" | "dtmf_sent" | "hangup" | "unregistered" | "registration_lost", "time": ...,
"number": ..., "call_id": ..., ...}``) appended to ``phone.events`` (and the call's ``events``), put
on ``phone.queue``, and given to ``on_event``. ``wait_event(name, **match)`` waits for one.

Requests for the platform's domain go to ``server`` (an outbound proxy, as softphones do), so the
Request-URIs are the real ones (``REGISTER sip:voipbin.local``, ``INVITE sip:+1555...@voipbin.local``)
and the domain needs no DNS.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np

from voipbin.media.mediasession import MediaSession
from voipbin.media.ports import PortAllocator
from voipbin.media.recorder import RecordingInfo
from voipbin.media.wav import read_wav
from voipbin.phone.speech import synthesize, transcribe_pcm
from voipbin.sip.endpoint import Call, IncomingInvite, IncomingRequest, OutgoingInvite, SipEndpoint
from voipbin.sip.errors import SdpNegotiationError, SdpParseError, SipError
from voipbin.sip.message import SipResponse
from voipbin.sip.registration import Registration, RegistrationError
from voipbin.sip.sdp import NegotiatedMedia, answer_offer, build_sdp
from voipbin.sip.transport import Source
from voipbin.sip.uri import SipUri

log = logging.getLogger(__name__)

Direction = Literal["incoming", "outgoing"]
_ANSWER = 0  # decision value meaning "answer" (any other value is a reject status)


class PhoneError(Exception):
    """The phone could not do what was asked (registration refused, server silent, not started)."""


class _ProxiedEndpoint(SipEndpoint):
    """A SipEndpoint that sends every request for ``domain`` to ``proxy`` (an outbound proxy).

    SipEndpoint resolves the Request-URI host; the development carrier's domain has no DNS entry,
    so the phone routes it itself, exactly like a softphone with an outbound proxy configured.
    """

    def __init__(self, *args: Any, domain: str, proxy: tuple[str, int], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.domain = domain.lower()
        self.proxy = proxy

    async def _resolve(self, uri: SipUri, transport: str) -> Source:
        if uri.host.lower() == self.domain:
            return Source(self.proxy[0], self.proxy[1], transport)
        return await super()._resolve(uri, transport)


class PhoneCall:
    """One call of the phone, either direction. Futures: ``answered`` (bool), ``ended`` (str)."""

    def __init__(
        self,
        phone: TestPhone,
        direction: Direction,
        *,
        call_id: str,
        remote: str,
        local: str,
        play: Path | None = None,
        say_pcm: bytes | None = None,
        record: Path | None = None,
        hangup_after: float | None = None,
        dtmf: str | None = None,
    ) -> None:
        loop = asyncio.get_running_loop()
        self.phone = phone
        self.direction = direction
        self.call_id = call_id
        self.remote = remote  # the other party's URI (From of an incoming call, target of an outgoing one)
        self.local = local
        self.play = play
        self.say_pcm = say_pcm
        self.recording_path = record
        self.hangup_after = hangup_after
        self.dtmf = dtmf
        #: True once answered (200 sent/received); False if the call ended without being answered.
        self.answered: asyncio.Future[bool] = loop.create_future()
        #: "local" / "remote" (who hung up an answered call), "rejected", "cancelled" or "failed".
        self.ended: asyncio.Future[str] = loop.create_future()
        self.status: int | None = None  # final SIP status of the INVITE
        self.reason: str | None = None  # why it ended (e.g. "bye", "hangup_after", "busy", "487 ...")
        self.events: list[dict[str, Any]] = []
        self.dtmf_received: list[str] = []
        self.recording: RecordingInfo | None = None
        self.media: MediaSession | None = None
        self.sip_call: Call | None = None
        self.negotiated: NegotiatedMedia | None = None
        self.answered_at: float | None = None
        self.played = asyncio.Event()  # our play/say finished (or there was none)
        self._invite: IncomingInvite | None = None
        self._pending: OutgoingInvite | None = None
        self._decision: asyncio.Future[int] = loop.create_future()  # incoming: answer or reject status
        self._finishing = False
        self._local_bye = False
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def established(self) -> asyncio.Future[bool]:
        return self.answered

    @property
    def is_active(self) -> bool:
        return not self._finishing

    def __repr__(self) -> str:
        return f"<PhoneCall {self.direction} {self.remote} {self.call_id} status={self.status}>"

    # --- control -----------------------------------------------------------------------------
    def answer(self) -> None:
        """Answer a ringing incoming call now (for ``auto_answer=False`` / ``no_answer``)."""
        if self.direction != "incoming":
            raise PhoneError("only incoming calls can be answered")
        if not self._decision.done():
            self._decision.set_result(_ANSWER)

    def reject(self, status: int = 486) -> None:
        """Refuse a ringing incoming call with ``status``."""
        if self.direction != "incoming":
            raise PhoneError("only incoming calls can be rejected")
        if not self._decision.done():
            self._decision.set_result(status)

    async def hangup(self, *, within: float = 5.0, reason: str = "hangup") -> str:
        """BYE an answered call, CANCEL a ringing outgoing one, decline (603) a ringing incoming one.

        Returns how the call ended (see ``ended``).
        """
        if not self.ended.done():
            if self.sip_call is not None:
                await self._bye(reason, within)
            elif self._pending is not None:
                self._pending.cancel()  # CANCEL goes out once the callee has sent a provisional
                try:
                    return await asyncio.wait_for(asyncio.shield(self.ended), within + 1)
                except TimeoutError:  # nothing answered the INVITE at all: give up locally
                    await self._finish("cancelled", "no response to INVITE", 487)
            else:
                self.reject(603)
        return await asyncio.wait_for(asyncio.shield(self.ended), within + 35)  # bounded by Timer B

    async def send_dtmf(self, digits: str, duration_ms: int = 100) -> None:
        """Send ``digits`` as RFC 4733 telephone-events (waits for the answer first)."""
        if not await self.answered:
            raise PhoneError("call was not answered")
        if self.media is None or self._finishing:
            raise PhoneError("call has ended")
        await self.media.send_dtmf(digits, duration_ms)
        self.phone._emit("dtmf_sent", self, digits=digits)

    async def play_wav(self, path: str | Path) -> bool:
        """Play a WAV into the call now (after the answer)."""
        if not await self.answered or self.media is None:
            raise PhoneError("call was not answered")
        return await self.media.play_wav(path)

    async def say(self, text: str, tts_type: str | None = None) -> bool:
        """Speak ``text`` into the call now (after the answer)."""
        pcm = await synthesize(text, tts_type or self.phone.tts_type)
        if not await self.answered or self.media is None:
            raise PhoneError("call was not answered")
        return await self.media.play_pcm(pcm)

    def heard_pcm(self) -> np.ndarray:
        """The recording (8 kHz int16); available once the call has ended."""
        if self.recording_path is None:
            raise PhoneError("this call was not recorded (pass record=...)")
        if not self.ended.done():
            raise PhoneError("the recording is finalised when the call ends")
        return read_wav(self.recording_path)

    async def heard_text(self, stt_type: str = "whisper", *, language: str | None = "en-US") -> str:
        """Transcribe what the phone heard (waits for the call to end, so the WAV is complete)."""
        await asyncio.shield(self.ended)
        return await transcribe_pcm(self.heard_pcm(), stt_type, language=language)

    # --- internals ---------------------------------------------------------------------------
    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(_log_failure)
        return task

    async def _bye(self, reason: str, within: float) -> None:
        call = self.sip_call
        assert call is not None
        self._local_bye = True  # the BYE's own end of the dialog is not "the endpoint gave up"
        if call.is_active:
            try:
                await asyncio.wait_for(call.bye(), within)  # a dead peer would keep us 32 s (Timer F)
            except (TimeoutError, SipError, OSError) as exc:
                log.info("BYE on %s got no answer: %s", self.call_id, exc)
        await self._finish("local", reason)

    async def _established(self, sip_call: Call, ms: MediaSession, neg: NegotiatedMedia) -> None:
        self.sip_call, self.media, self.negotiated = sip_call, ms, neg
        self.status = 200
        ptime = neg.ptime if neg.ptime % 20 == 0 else 20  # our clock sends multiples of 20 ms
        ms.negotiate(neg.remote_addr, neg.remote_port, neg.payload_type, neg.dtmf_payload_type, ptime)
        ms.on_dtmf(self._on_dtmf)
        sip_call.on_info = self._on_info
        ms.start()
        if self.recording_path is not None:
            self.recording_path.parent.mkdir(parents=True, exist_ok=True)
            await ms.record_start(self.recording_path, direction="in")
        self.answered_at = time.monotonic()
        self.answered.set_result(True)
        remote = f"{neg.remote_addr}:{neg.remote_port}"
        self.phone._emit("answered", self, codec=neg.codec, remote_media=remote)
        self._spawn(self._watch_remote_bye(sip_call))
        self._spawn(self._script())
        if self.hangup_after is not None:
            self._spawn(self._hangup_later(self.hangup_after))
        if self.dtmf:
            self._spawn(self.send_dtmf(self.dtmf))

    async def _script(self) -> None:
        assert self.media is not None
        try:
            if self.phone.speak_after and (self.say_pcm or self.play is not None):
                await asyncio.sleep(self.phone.speak_after)  # let the other side get ready to listen
            if self.say_pcm:
                await self.media.play_pcm(self.say_pcm)
                self.phone._emit("played", self, what="say")
            elif self.play is not None:
                await self.media.play_wav(self.play)
                self.phone._emit("played", self, what=str(self.play))
        finally:
            self.played.set()

    async def _hangup_later(self, delay: float) -> None:
        await asyncio.sleep(delay)
        if self.sip_call is not None and not self._finishing:
            await self._bye("hangup_after", 5.0)

    async def _watch_remote_bye(self, sip_call: Call) -> None:
        how = await asyncio.shield(sip_call.ended)
        if how == "remote_bye":
            await self._finish("remote", "bye")
        elif not self._local_bye:  # e.g. the endpoint gave up waiting for the ACK of our 2xx
            await self._finish("local", how)

    def _on_dtmf(self, digit: Any) -> None:
        self.dtmf_received.append(digit.digit)
        self.phone._emit("dtmf", self, digit=digit.digit, duration_ms=digit.duration_ms, via="rfc4733")

    def _on_info(self, request: Any) -> None:
        """SIP INFO DTMF (application/dtmf-relay ``Signal=5``), for peers that do not send RFC 4733."""
        ctype = (request.headers.get("Content-Type") or "").lower()
        if "dtmf" not in ctype:
            return
        for line in request.body.decode(errors="replace").splitlines():
            name, _, value = line.partition("=")
            if name.strip().lower() == "signal" and value.strip():
                digit = value.strip()[:1]
                self.dtmf_received.append(digit)
                self.phone._emit("dtmf", self, digit=digit, via="info")

    async def _finish(self, by: str, reason: str | None = None, status: int | None = None) -> None:
        """End the call once: stop media (finalises the recording), resolve futures, emit hangup."""
        if self._finishing:
            return
        self._finishing = True
        if status is not None:
            self.status = status
        self.reason = reason
        current = asyncio.current_task()
        for task in list(self._tasks):
            if task is not current:
                task.cancel()
        if self.media is not None:
            with contextlib.suppress(Exception):
                self.recording = await self.media.close()
        self.played.set()
        if not self.decision_done():
            self._decision.cancel()
        if not self.answered.done():
            self.answered.set_result(False)
        fields: dict[str, Any] = {"by": by, "reason": reason, "status": self.status}
        if self.answered_at is not None:
            fields["duration"] = round(time.monotonic() - self.answered_at, 3)
        if self.recording is not None:
            fields["recording"] = str(self.recording.path)
            fields["recorded_seconds"] = round(self.recording.duration, 3)
        self.phone._emit("hangup", self, **fields)
        if not self.ended.done():
            self.ended.set_result(by)

    def decision_done(self) -> bool:
        return self._decision.done()


class TestPhone:
    """A SIP phone for tests and development; see the module docstring."""

    __test__ = False  # not a pytest test class, despite the name

    def __init__(
        self,
        number: str,
        server: tuple[str, int] = ("127.0.0.1", 5060),
        domain: str = "voipbin.local",
        *,
        bind_host: str = "127.0.0.1",
        sip_port: int = 0,
        rtp_ports: tuple[int, int] | None = None,
        auto_answer: bool = True,
        answer_delay: float = 0.0,
        play: Path | str | None = None,
        say: str | None = None,
        speak_after: float = 0.0,
        tts_type: str = "espeak",
        record: Path | str | None = None,
        hangup_after: float | None = None,
        reject_with: int | None = None,
        no_answer: bool = False,
        dtmf: str | None = None,
        password: str = "",
        register: bool = True,
        expires: int = 300,
        register_timeout: float = 10.0,
        on_event: Callable[[dict[str, Any]], Any] | None = None,
    ) -> None:
        if play is not None and say is not None:
            raise ValueError("give either play or say, not both")
        if reject_with is not None and not 300 <= reject_with <= 699:
            raise ValueError("reject_with must be a final error status (300-699)")
        self.number = number
        self.server = server
        self.domain = domain
        self.bind_host = bind_host
        self.sip_port = sip_port
        self.auto_answer = auto_answer
        self.answer_delay = answer_delay
        self.play = Path(play) if play is not None else None
        self.say = say
        self.speak_after = speak_after
        self.tts_type = tts_type
        self.record = Path(record) if record is not None else None
        self.hangup_after = hangup_after
        self.reject_with = reject_with
        self.no_answer = no_answer
        self.dtmf = dtmf
        self.password = password
        self.register = register
        self.expires = expires
        self.register_timeout = register_timeout
        self.on_event = on_event
        self.aor = f"sip:{number}@{domain}"
        self.events: list[dict[str, Any]] = []
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.calls: list[PhoneCall] = []
        self.endpoint: SipEndpoint | None = None
        self.registration: Registration | None = None
        self._ports = PortAllocator(*rtp_ports) if rtp_ports else None
        self._incoming: asyncio.Queue[PhoneCall] = asyncio.Queue()
        self._new_event = asyncio.Event()
        self._say_pcm: bytes | None = None
        self._recorded = 0

    @property
    def media_host(self) -> str:
        return "127.0.0.1" if self.bind_host in ("0.0.0.0", "") else self.bind_host

    # --- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        """Bind SIP, render ``say``, and REGISTER (raises :class:`PhoneError` if refused)."""
        if self.endpoint is not None:
            return
        if self.say:
            self._say_pcm = await synthesize(self.say, self.tts_type)
        loop = asyncio.get_running_loop()
        host, port = self.server
        infos = await loop.getaddrinfo(host, port, family=socket.AF_INET)  # the stack is IPv4
        if not infos:
            raise PhoneError(f"cannot resolve SIP server {host}")
        proxy = (str(infos[0][4][0]), int(port))
        ep = _ProxiedEndpoint(
            self.bind_host,
            self.sip_port,
            user_agent="voipbin-testphone",
            on_request=self._on_request,
            accept_methods=("INVITE",),
            domain=self.domain,
            proxy=proxy,
        )
        await ep.start()
        self.endpoint = ep
        if self.register:
            try:
                await self._register()
            except BaseException:
                await ep.stop()
                self.endpoint = None
                raise

    async def _register(self) -> None:
        assert self.endpoint is not None
        reg = Registration(
            self.endpoint,
            f"sip:{self.domain}",
            self.aor,
            self.number,
            self.password,
            self.expires,
            on_state=self._on_registration_state,
        )
        try:
            resp = await asyncio.wait_for(reg.start(), self.register_timeout)
        except RegistrationError as exc:
            raise PhoneError(
                f"registration of {self.aor} at {self.server[0]}:{self.server[1]} refused: "
                f"{exc.response.status} {exc.response.reason}"
            ) from exc
        except TimeoutError as exc:
            raise PhoneError(
                f"no answer to REGISTER from {self.server[0]}:{self.server[1]} "
                f"within {self.register_timeout:g} s (is the platform running?)"
            ) from exc
        if resp.status == 408:  # the endpoint reports a silent server as a local 408
            raise PhoneError(f"no answer to REGISTER from {self.server[0]}:{self.server[1]}")
        self.registration = reg
        self._emit("registered", None, aor=self.aor, contact=reg.contact, expires=reg.granted)

    def _on_registration_state(self, registered: bool, resp: SipResponse | None) -> None:
        if not registered and self.registration is not None and resp is not None and resp.status != 200:
            self._emit("registration_lost", None, status=resp.status, reason=resp.reason)

    async def stop(self) -> None:
        """Hang up every live call, unregister, release the sockets."""
        await asyncio.gather(
            *(c.hangup(within=2.0, reason="phone_stopped") for c in self.calls if c.is_active),
            return_exceptions=True,
        )
        if self.registration is not None:
            reg, self.registration = self.registration, None
            try:
                resp = await asyncio.wait_for(reg.stop(), 5.0)
                self._emit("unregistered", None, aor=self.aor, status=resp.status if resp else None)
            except (TimeoutError, SipError, OSError) as exc:
                log.info("unregister failed: %s", exc)
        if self.endpoint is not None:
            ep, self.endpoint = self.endpoint, None
            await ep.stop()

    async def __aenter__(self) -> TestPhone:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # --- events ------------------------------------------------------------------------------
    def _emit(self, event: str, call: PhoneCall | None, **fields: Any) -> dict[str, Any]:
        ev: dict[str, Any] = {"event": event, "time": round(time.time(), 3), "number": self.number}
        if call is not None:
            ev["call_id"] = call.call_id
            ev["direction"] = call.direction
            call.events.append(ev)
        ev.update(fields)
        self.events.append(ev)
        self.queue.put_nowait(ev)
        waking, self._new_event = self._new_event, asyncio.Event()
        waking.set()
        if self.on_event is not None:
            try:
                self.on_event(ev)
            except Exception:
                log.exception("on_event callback failed")
        return ev

    async def wait_event(
        self, event: str, *, within: float = 10.0, start: int = 0, **match: Any
    ) -> dict[str, Any]:
        """First event named ``event`` (from index ``start`` of ``events``) whose fields equal ``match``."""
        i = start
        async with asyncio.timeout(within):
            while True:
                while i < len(self.events):
                    ev = self.events[i]
                    i += 1
                    if ev["event"] == event and all(ev.get(k) == v for k, v in match.items()):
                        return ev
                await self._new_event.wait()

    async def wait_call(self, within: float = 10.0) -> PhoneCall:
        """The next incoming call (in arrival order), as soon as its INVITE arrives."""
        return await asyncio.wait_for(self._incoming.get(), within)

    # --- incoming ----------------------------------------------------------------------------
    def _next_record_path(self, record: Path | None) -> Path | None:
        """``record`` for the first call, then ``name-2.wav``, ``name-3.wav``...: never overwrite."""
        if record is None:
            return None
        self._recorded += 1
        if self._recorded == 1:
            return record
        return record.with_name(f"{record.stem}-{self._recorded}{record.suffix}")

    async def _on_request(self, ctx: IncomingRequest) -> None:
        if not isinstance(ctx, IncomingInvite):
            ctx.respond(405, headers=[("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO")])
            return
        req = ctx.request
        call = PhoneCall(
            self,
            "incoming",
            call_id=req.call_id,
            remote=str(req.from_.uri),
            local=str(req.to.uri),
            play=self.play,
            say_pcm=self._say_pcm,
            record=None,
            hangup_after=self.hangup_after,
            dtmf=self.dtmf,
        )
        call._invite = ctx
        self.calls.append(call)
        self._emit("incoming", call, **{"from": str(req.from_.uri), "to": str(req.to.uri)},
                   request_uri=str(req.uri))  # fmt: skip
        self._incoming.put_nowait(call)
        try:
            await self._ring_and_answer(call, ctx)
        except Exception:
            log.exception("incoming call %s failed", call.call_id)
            ctx.respond(500)
            await call._finish("failed", "internal error", 500)

    async def _ring_and_answer(self, call: PhoneCall, ctx: IncomingInvite) -> None:
        if self.reject_with is not None:
            ctx.reject(self.reject_with)
            await call._finish("rejected", "reject_with", self.reject_with)
            return
        ctx.ringing()
        self._emit("ringing", call, status=180)
        if self.auto_answer and not self.no_answer:

            def answer() -> None:
                if not call._decision.done():
                    call._decision.set_result(_ANSWER)

            asyncio.get_running_loop().call_later(self.answer_delay, answer)
        cancelled = asyncio.ensure_future(ctx.cancelled.wait())
        try:
            waiters: set[asyncio.Future[Any]] = {cancelled, call._decision}
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            cancelled.cancel()
        if ctx.cancelled.is_set() or call._decision.cancelled():
            await call._finish("cancelled", "caller cancelled" if ctx.cancelled.is_set() else "stopped", 487)
            return
        decision = call._decision.result()
        if decision != _ANSWER:
            ctx.reject(decision)
            await call._finish("rejected", "declined", decision)
            return
        if not ctx.offer:
            ctx.reject(488, "Offer required")  # the platform always offers; we do not do late offer
            await call._finish("failed", "no SDP offer", 488)
            return
        ms = await MediaSession.create(allocator=self._ports, host=self.bind_host)
        try:
            sdp, neg = answer_offer(ctx.offer, self.media_host, ms.local_port)
        except (SdpParseError, SdpNegotiationError) as exc:
            await ms.close()
            ctx.reject(488)
            await call._finish("failed", f"SDP: {exc}", 488)
            return
        try:
            sip_call = ctx.answer(sdp)
        except SipError:  # CANCEL won the race with our answer
            await ms.close()
            await call._finish("cancelled", "caller cancelled", 487)
            return
        call.recording_path = self._next_record_path(self.record)
        await call._established(sip_call, ms, neg)

    # --- outgoing ----------------------------------------------------------------------------
    def dial(
        self,
        target: str,
        *,
        play: Path | str | None = None,
        say: str | None = None,
        record: Path | str | None = None,
        hangup_after: float | None = None,
        dtmf: str | None = None,
        timeout: float = 60.0,
        headers: list[tuple[str, str]] | None = None,
    ) -> PhoneCall:
        """Call ``target`` (an E.164 number or user at the platform's domain, or a full ``sip:`` URI).

        Returns at once; ``await call.answered`` for the outcome. ``timeout`` bounds the ringing.
        """
        if self.endpoint is None:
            raise PhoneError("start() the phone first")
        if play is not None and say is not None:
            raise ValueError("give either play or say, not both")
        uri = target if target.startswith(("sip:", "sips:")) else f"sip:{target}@{self.domain}"
        SipUri.parse(uri)  # a typo fails here, not in a background task
        call = PhoneCall(
            self,
            "outgoing",
            call_id="",
            remote=uri,
            local=self.aor,
            play=Path(play) if play is not None else None,
            record=Path(record) if record is not None else None,
            hangup_after=hangup_after,
            dtmf=dtmf,
        )
        self.calls.append(call)
        call._spawn(self._dial(call, uri, say, timeout, headers))
        return call

    async def _dial(
        self,
        call: PhoneCall,
        uri: str,
        say: str | None,
        ring_timeout: float,
        headers: list[tuple[str, str]] | None,
    ) -> None:
        assert self.endpoint is not None
        try:
            if say:
                call.say_pcm = await synthesize(say, self.tts_type)
            ms = await MediaSession.create(allocator=self._ports, host=self.bind_host)
        except Exception as exc:
            log.exception("cannot prepare call to %s", uri)
            await call._finish("failed", f"setup: {exc}")
            return
        offer = build_sdp(self.media_host, ms.local_port)
        seen: set[int] = set()

        def provisional(resp: SipResponse) -> None:
            if resp.status > 100 and resp.status not in seen:
                seen.add(resp.status)
                self._emit("ringing", call, status=resp.status)

        pending = self.endpoint.invite(
            uri,
            f"<{self.aor}>",
            f"<{uri}>",
            offer,
            credentials=(self.number, self.password),
            headers=headers,
            on_provisional=provisional,
            timeout=ring_timeout,
        )
        call.call_id = pending.call_id
        call._pending = pending
        self._emit("dialing", call, to=uri)
        try:
            result = await pending
        except asyncio.CancelledError:
            await ms.close()
            raise
        call._pending = None
        if not result.ok or result.call is None:
            await ms.close()
            await call._finish(_unanswered(result.status), f"{result.status} {result.reason}", result.status)
            return
        neg = result.call.media
        if neg is None:
            call.sip_call = result.call
            await ms.close()
            await call._bye("unusable SDP answer", 5.0)
            return
        await call._established(result.call, ms, neg)


def _unanswered(status: int) -> str:
    if status == 487:
        return "cancelled"
    if status in (408, 503) or 500 <= status < 600:
        return "failed"  # nobody decided: timeouts, unreachable, server errors
    return "rejected"


def _log_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("test phone task failed", exc_info=task.exception())


__all__ = ["PhoneCall", "PhoneError", "TestPhone"]
