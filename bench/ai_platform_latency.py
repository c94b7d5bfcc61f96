"""Platform-added latency of an AI voice turn: real ``ai_talk`` calls over SIP/RTP against local fake
providers whose own latencies are fixed and known, so what is left is the platform's share.

    .venv/bin/python bench/ai_platform_latency.py [--calls 1] [--questions 8] [--llm-ms 100] [--tts-ms 50]

What runs (all on 127.0.0.1, each part in its own process so CPU is attributed per process):

1. The fake providers (``--role fakes``): ``tests/fakeproviders`` speaking the real wire protocols —
   OpenAI chat completions (SSE; first token ``--llm-ms`` after the request's opening event),
   Deepgram live ``/v1/listen`` (final + UtteranceEnd ``endpointing`` = 300 ms of audio after the
   caller's energy drops, the platform's default; an empty final every 1 s of silence, as the live
   service sends), ElevenLabs stream-input TTS (first audio
   ``--tts-ms`` after a flushed sentence).
2. ``voipbin serve`` (as bench/calls_platform.py starts it: SQLite, uvloop, WARNING logs) pointed at
   those fakes (``VOIPBIN_*_BASE_URL``), the number routed to ``answer -> ai_talk`` with
   ``openai.gpt-4o-mini`` / ``deepgram`` STT / ``elevenlabs`` TTS, ``/metrics`` on a port.
3. The callers (``--role callers``, own process, own loop): SIP UAs (``voipbin.sip``) with a minimal
   RTP phone each — 20 ms PCMU frames paced by one clock, silence between questions as a phone sends
   it — saying Piper-synthesised questions; inbound packets carry the kernel's receive time.

Measured per turn:

* the caller's own: its speech end (when it sent the last 20 ms frame above the fake STT's energy
  threshold) -> first non-silent RTP packet back; printed raw and minus the nominal provider delays.
* the same turn on one clock (CLOCK_MONOTONIC is shared by all processes; the fakes timestamp what
  they receive and send), which splits it exactly into the providers' part and ours:
  ``in`` (caller's last voiced frame -> received by the fake STT: RTP, jitter buffer, media clock,
  tap, STT websocket), then the fake's endpointing (its own, ~320-340 ms: not ours), ``turn`` (STT
  final sent -> LLM request received), ``llm`` (the fake's first token sent -> the fake TTS has the
  text: SSE parsing, the sentence cut, the TTS websocket), ``out`` (the fake's first audio sent ->
  the caller hears it: base64, resampling, playout, the media clock's next tick — 0-20 ms, the
  callers' clock phase shifts 0-20 ms per question so it is not pinned — RTP).
  PLATFORM SHARE = in + turn + llm + out. What the fakes take beyond their scripted delays (sleep
  overshoot, building the audio) is printed apart as theirs ("fakes"); before session 7 it was
  counted in the share.
* the platform's own record (``turn`` of each assistant aimessage, ms from the caller's VAD speech
  end): STT final -> first audio out minus the fake delays, per stage (commit = final -> reply
  start, llm, tts, playout = TTS audio -> handed to playout). It cannot see the media path.

Targets (issue 10): platform share p50 <= 20 ms, p95 <= 40 ms.

``--sdk-overhead``: only the LLM request's build on our side, in process: ``stream()`` called ->
request body written, the OpenAI adapter vs the SDK's typed ``create(**params)``, by history length.

``--offline``: the same call with the offline engines (Silero VAD + Smart Turn, Whisper tiny.en,
``offline.scripted``, Piper) — the offline end-to-end turn latency, caller-measured, with the
platform's stage split (``bench/ai_session_latency.py`` measures the session alone, in memory).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import socket
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(BENCH), str(ROOT / "tests"), str(ROOT)]

QUESTIONS = [
    "What time do you open tomorrow?",
    "Do you have any parking near the shop?",
    "Can I pay with a card?",
    "Thank you, that is all I needed.",
]
ANSWER = ["Sure.", " We open at nine", " and close at six."]
ENDPOINTING_MS = 300  # DeepgramSTT's default endpointing, which the fake honours on the audio clock
FRAME_MS = 20
ENERGY = 300  # the fake Deepgram's voiced-frame RMS threshold
SILENT_PCMU = b"\xff" * 160


def pct(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    s = sorted(xs)
    return s[min(len(s) - 1, round(q / 100 * (len(s) - 1)))]


def summary(xs: list[float]) -> str:
    if not xs:
        return "n=0"
    return f"p50 {pct(xs, 50):6.1f}  p95 {pct(xs, 95):6.1f}  max {max(xs):6.1f}  (n={len(xs)})"


# ------------------------------------------------------------------------------------------ fakes
async def fakes_main(llm_ms: float, tts_ms: float) -> None:
    """Start the fake providers; print their URLs; serve until stdin closes."""
    from fakeproviders.llm_openai import FakeOpenAI
    from fakeproviders.llm_server import Reply
    from fakeproviders.speech_deepgram import FakeDeepgram
    from fakeproviders.speech_elevenlabs import FakeElevenLabs

    llm = FakeOpenAI()
    llm.default = Reply(text=list(ANSWER), first_delay=llm_ms / 1000)
    await llm.start()
    dg = FakeDeepgram()
    dg.script = ["what time do you open tomorrow"] * 1000
    dg.silence_results_every = 1.0  # as the live service does: a quiet caller is not a dead stream
    el = FakeElevenLabs()
    el.first_audio_delay = tts_ms / 1000
    async with dg, el:
        # The fakes keep every request/message for tests; a bench run must not grow without bound.
        llm_at: list[tuple[float, float | None]] = []  # (request received, first token sent)

        async def trim() -> None:
            while True:
                await asyncio.sleep(1)
                done = [r for r in llm.requests if r.completed or r.client_gone.is_set()]
                llm_at.extend((r.received_at, r.first_sent_at) for r in done)
                llm.requests[:] = [r for r in llm.requests if r not in done]
                el.messages.clear()
                dg.control.clear()
                dg.ws.handshakes.clear()
                el.ws.handshakes.clear()

        trimmer = asyncio.create_task(trim())
        print(json.dumps({"openai": llm.base_url, "deepgram": dg.ws.base_url, "elevenlabs": el.ws.base_url}))
        sys.stdout.flush()
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        trimmer.cancel()
        llm_at.extend((r.received_at, r.first_sent_at) for r in llm.requests)
        print(
            json.dumps(
                {
                    "finals": dg.finals_at,
                    "voice": dg.last_voice_at,
                    "llm": sorted(llm_at),
                    "tts": el.spoken_at,
                }
            )
        )
    await llm.stop()


def start_fakes(llm_ms: float, tts_ms: float) -> tuple[subprocess.Popen, dict[str, str]]:
    from calls_platform import spawn

    proc = spawn(
        [sys.executable, __file__, "--role", "fakes", "--llm-ms", str(llm_ms), "--tts-ms", str(tts_ms)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    return proc, json.loads(proc.stdout.readline())


def provider_env(urls: dict[str, str], metrics_port: int) -> None:
    """The server process inherits these (start_server copies os.environ)."""
    os.environ.update(
        VOIPBIN_OPENAI_API_KEY="sk-bench",
        VOIPBIN_OPENAI_BASE_URL=urls["openai"] + "/v1",
        VOIPBIN_DEEPGRAM_API_KEY="dg-key",
        VOIPBIN_DEEPGRAM_BASE_URL=urls["deepgram"],
        VOIPBIN_ELEVENLABS_API_KEY="xi-key",
        VOIPBIN_ELEVENLABS_BASE_URL=urls["elevenlabs"],
        VOIPBIN_METRICS_PORT=str(metrics_port),
    )


def ai_flow(offline: bool = False) -> list[dict[str, Any]]:
    engines = (
        {"engine_model": "offline.scripted", "stt_type": "whisper", "tts_type": "piper"}
        if offline
        else {"engine_model": "openai.gpt-4o-mini", "stt_type": "deepgram", "tts_type": "elevenlabs"}
    )
    return [
        {"type": "answer"},
        {
            "type": "ai_talk",
            "option": engines
            | {
                "language": "en-US",
                "initial_prompt": "You are the front desk of a small shop.",
            },
        },
    ]


# ------------------------------------------------------------------------------------------ callers
def voiced(frame: bytes) -> bool:
    import numpy as np

    x = np.frombuffer(frame, dtype=np.int16).astype(np.float64)
    return bool(np.sqrt(np.mean(x * x)) > ENERGY)


def speech_frames(pcm: bytes) -> list[bytes]:
    """20 ms PCM16 frames of an utterance, cut after the last frame the fake STT counts as voice."""
    n = 320
    frames = [pcm[i : i + n].ljust(n, b"\0") for i in range(0, len(pcm), n)]
    while frames and not voiced(frames[-1]):
        frames.pop()
    while frames and not voiced(frames[0]):
        frames.pop(0)
    return frames


class _Rtp:
    """The caller's RTP socket. Arrival times are the kernel's receive stamps (``SO_TIMESTAMPNS``, as
    the platform's own sockets use), so a caller process descheduled on the shared cores does not
    count its own stall as a gap in what the platform sent; the stall shows as "callers late"."""

    def __init__(self, caller: Caller, loop: asyncio.AbstractEventLoop) -> None:
        from voipbin.media.rtpsock import SO_TIMESTAMPNS

        self.caller = caller
        self.loop = loop
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setblocking(False)
        self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.sock.bind(("127.0.0.1", 0))
        loop.add_reader(self.sock.fileno(), self._read)

    def sendto(self, data: bytes, addr: tuple[str, int]) -> None:
        with contextlib.suppress(OSError):  # a full buffer loses the packet, as on a network
            self.sock.sendto(data, addr)

    def _read(self) -> None:
        from voipbin.media.rtpsock import kernel_arrival

        offset = time.time() - time.monotonic()  # kernel stamps are wall-clock
        while True:
            try:
                data, anc, _, _ = self.sock.recvmsg(2048, 64)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                continue
            self.caller.on_packet(data, kernel_arrival(anc, offset))

    def close(self) -> None:
        self.loop.remove_reader(self.sock.fileno())
        self.sock.close()


@dataclass
class Caller:
    """One SIP caller with a minimal RTP phone: sends a 20 ms PCMU frame every clock tick."""

    idx: int
    transport: _Rtp | None = None
    remote: tuple[str, int] | None = None
    seq: int = field(default_factory=lambda: random.randrange(65536))
    ts: int = 0
    ssrc: int = field(default_factory=lambda: random.randrange(2**32))
    queue: list[bytes] = field(default_factory=list)  # PCMU payloads to send before silence
    arrivals: list[float] = field(default_factory=list)
    measuring: bool = False  # record arrival times (between answer + 0.5 s and BYE)
    waiting_since: float | None = None  # speech end of the current question
    first_audio: asyncio.Future[float] | None = None
    last_voice_in: float = 0.0  # when we last heard non-silent audio from the platform
    turn_latencies: list[float] = field(default_factory=list)
    turn_times: list[tuple[float, float]] = field(default_factory=list)  # (speech end, first audio back)
    unanswered: int = 0
    error: str = ""

    def send_tick(self) -> float | None:
        """Send one frame; returns when the last speech frame went out, if this was it."""
        if self.transport is None or self.remote is None:
            return None
        payload = self.queue.pop(0) if self.queue else SILENT_PCMU
        last = bool(payload is not SILENT_PCMU and not self.queue)
        hdr = struct.pack("!BBHII", 0x80, 0, self.seq & 0xFFFF, self.ts & 0xFFFFFFFF, self.ssrc)
        self.transport.sendto(hdr + payload, self.remote)
        self.seq += 1
        self.ts += 160
        return time.monotonic() if last else None

    def on_packet(self, data: bytes, at: float) -> None:
        if self.measuring:
            self.arrivals.append(at)
        if len(data) < 12 + 160 or data[1] & 0x7F not in (0, 8):
            return
        payload = data[12:]
        if payload.count(payload[:1]) == len(payload) and payload[:1] in (b"\xff", b"\x7f", b"\xd5", b"\x55"):
            return  # digital silence
        if not _loud(payload, data[1] & 0x7F):
            return
        self.last_voice_in = at
        fut = self.first_audio
        if fut is not None and not fut.done() and self.waiting_since is not None and at > self.waiting_since:
            fut.set_result(at)


def _loud(payload: bytes, pt: int) -> bool:
    import numpy as np

    from voipbin.media.g711 import alaw_decode, ulaw_decode

    pcm = np.frombuffer((ulaw_decode if pt == 0 else alaw_decode)(payload), dtype=np.int16)
    return int(np.abs(pcm).max()) > 16


async def clock(
    callers: list[Caller], stop: asyncio.Event, late: list[float], shifts: list[float] | None = None
) -> None:
    """One 20 ms clock for every caller's outbound frames, on absolute time (no drift). ``late`` gets
    the largest lateness of a tick: the callers' own stalls, to read their gap figures by. A delay
    put in ``shifts`` moves the clock's phase once, before the next frame (see ``--phase-shift``)."""
    t0 = time.monotonic()
    n = 0
    late.append(0.0)
    while not stop.is_set():
        if shifts:
            t0 += shifts.pop()
            delay = t0 + n * FRAME_MS / 1000 - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        n += 1
        late[0] = max(late[0], time.monotonic() - (t0 + (n - 1) * FRAME_MS / 1000))
        for c in callers:
            end = c.send_tick()
            if end is not None:
                c.waiting_since = end
        delay = t0 + n * FRAME_MS / 1000 - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)


async def run_caller(
    c: Caller,
    ep: Any,
    sip_port: int,
    questions: list[list[bytes]],
    start_at: float,
    answer_timeout: float,
    shifts: list[float] | None = None,
) -> None:
    from voipbin.sip import build_sdp

    await asyncio.sleep(max(0.0, start_at - time.monotonic()))
    loop = asyncio.get_running_loop()
    transport = _Rtp(c, loop)
    c.transport = transport
    port = transport.sock.getsockname()[1]
    try:
        res = await asyncio.wait_for(
            ep.invite(
                f"sip:+15551234567@127.0.0.1:{sip_port}", f"sip:+1555100{c.idx:04d}@127.0.0.1",
                "sip:+15551234567@127.0.0.1", build_sdp("127.0.0.1", port, codecs=("PCMU",)),
            ),
            30,
        )  # fmt: skip
        if not res.ok or res.call is None or res.call.media is None:
            c.error = f"call failed: {res.status} {res.reason}"
            return
        m = res.call.media
        c.remote = (m.remote_addr, m.remote_port)
        await asyncio.sleep(0.5)
        c.measuring = True
        await asyncio.sleep(0.7)  # the AI session starts listening
        for frames in questions:
            c.first_audio = loop.create_future()
            c.waiting_since = None
            if shifts is not None:
                shifts.append(random.uniform(0, FRAME_MS / 1000))
            c.queue.extend(frames)
            try:
                heard = await asyncio.wait_for(c.first_audio, answer_timeout + len(frames) * 0.02)
            except TimeoutError:
                c.unanswered += 1
                continue
            assert c.waiting_since is not None
            c.turn_latencies.append((heard - c.waiting_since) * 1000)
            c.turn_times.append((c.waiting_since, heard))
            # The answer plays; the caller waits until it has been quiet for 0.6 s, as a person would.
            while time.monotonic() - c.last_voice_in < 0.6:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
            await asyncio.sleep(random.uniform(0.1, 0.5))
        c.measuring = False
        await res.call.bye()
    except Exception as exc:  # reported, the run goes on
        c.error = f"{type(exc).__name__}: {exc}"
    finally:
        c.measuring = False
        c.remote = None
        transport.close()


async def callers_main(args: argparse.Namespace) -> dict[str, Any]:
    from voipbin.media.g711 import ulaw_encode
    from voipbin.phone.speech import synthesize
    from voipbin.sip import SipEndpoint

    speech = [speech_frames(await synthesize(q, "piper")) for q in QUESTIONS[: max(1, args.questions)]]
    spoken = [[ulaw_encode(f) for f in frames] for frames in speech]
    ep = SipEndpoint("127.0.0.1", 0)
    await ep.start()
    callers = [Caller(i + args.first) for i in range(args.n)]
    stop = asyncio.Event()
    late: list[float] = []
    shifts: list[float] | None = [] if args.phase_shift else None
    ticker = asyncio.create_task(clock(callers, stop, late, shifts))
    t0 = time.monotonic() + 0.5
    spacing = args.spread / max(1, args.n)
    tasks = [
        asyncio.create_task(
            run_caller(
                c, ep, args.sip_port, [spoken[(c.idx + k) % len(spoken)] for k in range(args.questions)],
                t0 + i * spacing, args.answer_timeout, shifts,
            )
        )
        for i, c in enumerate(callers)
    ]  # fmt: skip
    await asyncio.gather(*tasks)
    stop.set()
    await ticker
    await ep.stop()
    out = []
    for c in callers:
        gaps = [(b - a) * 1000 for a, b in zip(c.arrivals, c.arrivals[1:], strict=False)]
        out.append(
            {
                "idx": c.idx,
                "error": c.error,
                "latencies_ms": [round(x, 1) for x in c.turn_latencies],
                "turn_times": c.turn_times,
                "unanswered": c.unanswered,
                "packets": len(c.arrivals),
                "max_gap_ms": round(max(gaps), 1) if gaps else None,
                "gaps_over_40ms": sum(1 for g in gaps if g > 40),
            }
        )
    return {"callers": out, "clock_late_ms": round(late[0] * 1000, 1)}


def start_callers(
    sip_port: int,
    n: int,
    first: int,
    questions: int,
    spread: float,
    timeout: float,
    phase_shift: bool = False,
) -> subprocess.Popen:
    from calls_platform import spawn

    cmd = [
        sys.executable, __file__, "--role", "callers", "--sip-port", str(sip_port), "--n", str(n),
        "--first", str(first), "--questions", str(questions), "--spread", str(spread),
        "--answer-timeout", str(timeout), *(["--phase-shift"] if phase_shift else []),
    ]  # fmt: skip
    return spawn(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def collect_callers(procs: list[subprocess.Popen], timeout: float) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=timeout)
        if proc.returncode != 0:
            print(stderr[-3000:])
            raise SystemExit("callers failed")
        res = json.loads(stdout.strip().splitlines()[-1])
        for c in res["callers"]:
            c["clock_late_ms"] = res["clock_late_ms"]
        out += res["callers"]
    return out


# ------------------------------------------------------------------------------------------ server side
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape(metrics_port: int) -> str:
    import httpx

    return httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).text


_SAMPLE = re.compile(r"^(\w+)\{([^}]*)\}\s+([0-9.eE+-]+|NaN|\+Inf)$")


def histogram(text: str, name: str, **match: str) -> dict[float, float]:
    """Cumulative bucket counts {le: count} of one histogram series in Prometheus text."""
    out: dict[float, float] = {}
    for line in text.splitlines():
        m = _SAMPLE.match(line)
        if not m or m.group(1) != name + "_bucket":
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2)))
        if any(labels.get(k) != v for k, v in match.items()):
            continue
        out[float(labels["le"])] = float(m.group(3))
    return out


def hist_quantile(before: dict[float, float], after: dict[float, float], q: float) -> tuple[float, int]:
    """Upper bound of the bucket holding quantile q of the samples taken between two scrapes."""
    delta = {le: after.get(le, 0) - before.get(le, 0) for le in after}
    total = delta.get(float("inf"), 0)
    if total <= 0:
        return float("nan"), 0
    for le in sorted(delta):
        if delta[le] >= q * total:
            return le, int(total)
    return float("inf"), int(total)


def ai_turns(srv: Any, since: set[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(assistant turn records, aicalls) of the AI calls not in ``since``; marks them seen."""
    aicalls: list[dict[str, Any]] = []
    params: dict[str, Any] = {"page_size": 100}
    while True:
        body = srv.http.get("/v1.0/aicalls", params=params).json()
        items = body.get("result") or []
        aicalls += [a for a in items if a["id"] not in since]
        if len(items) < 100 or not body.get("next_page_token"):
            break
        params["page_token"] = body["next_page_token"]
    turns: list[dict[str, Any]] = []
    for a in aicalls:
        since.add(a["id"])
        msgs = srv.http.get("/v1.0/aimessages", params={"aicall_id": a["id"], "page_size": 100}).json()
        for m in msgs.get("result") or []:
            t = m.get("turn") or {}
            if m["role"] == "assistant" and t.get("origin") == "caller_speech_end":
                turns.append(t)
    return turns, aicalls


def stage_split(turns: list[dict[str, Any]], llm_ms: float, tts_ms: float) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {k: [] for k in ("stt_final", "commit", "llm", "tts", "playout", "share")}
    for t in turns:
        keys = (
            "stt_final_ms",
            "reply_start_ms",
            "llm_first_token_ms",
            "tts_first_audio_ms",
            "first_audio_out_ms",
        )
        if any(t.get(k) is None for k in keys) or t.get("interrupted"):
            continue
        stt, start, llm, tts, out_ms = (float(t[k]) for k in keys)
        out["stt_final"].append(stt)
        out["commit"].append(start - stt)
        out["llm"].append(llm - start - llm_ms)
        out["tts"].append(tts - llm - tts_ms)
        out["playout"].append(out_ms - tts)
        out["share"].append(out_ms - stt - llm_ms - tts_ms)
    return out


def chain(
    callers: list[dict[str, Any]], fakes: dict[str, Any], llm_ms: float, tts_ms: float
) -> dict[str, list[float]]:
    """Each turn on one clock (CLOCK_MONOTONIC is shared by the processes): caller speech end ->
    fake STT final -> fake LLM request -> its first token sent -> fake TTS text -> fake TTS audio ->
    caller hears it. What a fake does between receiving and answering (its scripted delay and its
    overshoot of it) is the fake's, printed apart ("fakes"), not in the share. Only unambiguous when
    turns do not overlap (one call)."""
    finals, llm, tts = fakes["finals"], fakes["llm"], fakes["tts"]

    def after(xs: list[Any], t: float, key: Any = lambda x: x) -> Any:
        return next((x for x in xs if key(x) >= t), None)

    keys = ("fake_stt", "in", "turn", "llm", "out", "share", "fakes")
    out: dict[str, list[float]] = {k: [] for k in keys}
    for c in callers:
        for t0, t1 in c["turn_times"]:
            f = after(finals, t0)
            q = after(llm, f, key=lambda x: x[0]) if f is not None else None
            s = after(tts, q[0], key=lambda x: x[0]) if q is not None else None
            if q is None or s is None or s[1] > t1:
                continue
            asked, token = q[0], q[1] if q[1] is not None else q[0] + llm_ms / 1000
            heard_end = fakes["voice"][finals.index(f)]  # the fake got the last voiced frame
            parts = {
                "in": heard_end - t0,
                "turn": asked - f,
                "llm": s[0] - token,  # first token sent -> the TTS has the text
                "out": t1 - s[1],
            }
            for k, v in parts.items():
                out[k].append(v * 1000)
            out["fake_stt"].append((f - heard_end) * 1000)
            out["share"].append(sum(parts.values()) * 1000)
            out["fakes"].append(((token - asked - llm_ms / 1000) + (s[1] - s[0] - tts_ms / 1000)) * 1000)
    return out


def server_log_problems(tmp: Path) -> list[str]:
    log = (tmp / "server.log").read_text(errors="replace")
    return [line for line in log.splitlines() if " WARNING " in line or " ERROR " in line]


def problem_kinds(lines: list[str], top: int = 8) -> list[tuple[int, str]]:
    """Warning/error lines grouped by their text with numbers and ids blanked, most frequent first."""
    kinds: dict[str, int] = {}
    for line in lines:
        text = line.split(" ", 2)[-1] if line[:2] == "20" else line
        key = re.sub(r"[0-9a-f]{8}-[0-9a-f-]{27,}|\d+", "#", text)[:160]
        kinds[key] = kinds.get(key, 0) + 1
    return sorted(((n, k) for k, n in kinds.items()), reverse=True)[:top]


# ------------------------------------------------------------------------------------------ driver
def drive(args: argparse.Namespace) -> None:
    from calls_platform import kill_all, machine, start_server

    print(f"# machine: {machine()}")
    print(f"# load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} "
          "(2 cores shared with other engineers' test runs: figures are noisy)")  # fmt: skip
    if args.offline:  # no fake delays: the whole turn is shown, stage by stage
        args.llm_ms = args.tts_ms = 0.0
    fixed = 0.0 if args.offline else ENDPOINTING_MS + FRAME_MS + args.llm_ms + args.tts_ms
    if args.offline:
        print("# offline engines: Silero VAD + Smart Turn + Whisper tiny.en, offline.scripted, Piper")
    else:
        print(f"# fake providers: STT final {ENDPOINTING_MS} ms endpointing (+{FRAME_MS} ms frame), "
              f"LLM first token {args.llm_ms:.0f} ms, TTS first audio {args.tts_ms:.0f} ms "
              f"-> fixed {fixed:.0f} ms")  # fmt: skip
    try:
        with tempfile.TemporaryDirectory(prefix="voipbin-aiplat-") as tmp_name:
            tmp = Path(tmp_name)
            fakes, urls = start_fakes(args.llm_ms, args.tts_ms)
            metrics_port = free_port()
            provider_env(urls, metrics_port)
            srv = start_server(tmp)
            srv.route(ai_flow(args.offline))
            seen: set[str] = set()
            if args.warmup:  # one call first: imports, connection pools, model loads on the server
                collect_callers([start_callers(srv.sip_port, 1, 900, 1, 0, 15)], 120)
                time.sleep(1.0)
                srv.drain_calls(1, within=20)
                ai_turns(srv, seen)
            callers = collect_callers(
                [
                    start_callers(
                        srv.sip_port, args.calls, 0, args.questions, args.spread, 15, not args.fixed_phase
                    )
                ],
                600,
            )
            time.sleep(1.0)
            srv.drain_calls(args.calls, within=30)
            turns, _ = ai_turns(srv, seen)
            fake_out, _ = fakes.communicate("", timeout=10)
            fake_times = json.loads(fake_out.strip().splitlines()[-1])
            problems = server_log_problems(tmp)
    finally:
        kill_all()
    lat = [x for c in callers for x in c["latencies_ms"]]
    print(f"\n## {args.calls} ai_talk call(s) x {args.questions} questions, "
          f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")  # fmt: skip
    errors = [c["error"] for c in callers if c["error"]]
    unanswered = sum(c["unanswered"] for c in callers)
    print(f"turns answered {len(lat)}, unanswered {unanswered}, caller errors {len(errors)} {errors[:3]}")
    print(f"caller: speech end -> first audio back, ms     {summary(lat)}")
    print(f"caller: minus {fixed:.0f} ms nominal provider delays  {summary([x - fixed for x in lat])}")
    split = stage_split(turns, args.llm_ms, args.tts_ms)
    print(f"server turn records ({len(split['share'])} turns), ms from the caller's VAD speech end:")
    stt_label = (
        "stt final (turn end + Whisper)" if args.offline else f"stt final (fake: {ENDPOINTING_MS}+{FRAME_MS})"
    )
    print(f"  {stt_label:26s}{summary(split['stt_final'])}")
    print(f"  commit (final -> reply)   {summary(split['commit'])}")
    print(f"  llm beyond fake delay     {summary(split['llm'])}")
    print(f"  tts beyond fake delay     {summary(split['tts'])}")
    print(f"  playout (tts -> 1st out)  {summary(split['playout'])}")
    print(f"  share: final -> out - fake delays  {summary(split['share'])}")
    if args.offline:
        print("(offline: stt final = the turn detector's end of turn + Whisper; llm/tts: the engines' own)")
        print(f"# server log: {len(problems)} warning/error lines")
        for count, kind in problem_kinds(problems):
            print(f"#   {count:>5} x {kind}")
        return
    ch = chain(callers, fake_times, args.llm_ms, args.tts_ms)
    overlap = "" if args.calls == 1 else "; calls overlap: approximate"
    print(f"one clock, caller + fakes ({len(ch['share'])} turns{overlap}):")
    print(f"  in: last voiced frame sent -> at the fake STT  {summary(ch['in'])}")
    print(f"  (fake STT: last voiced frame -> final, not ours) {summary(ch['fake_stt'])}")
    print(f"  turn: final -> LLM request       {summary(ch['turn'])}")
    print(f"  llm: first token -> TTS text     {summary(ch['llm'])}")
    print(f"  out: TTS audio -> caller hears   {summary(ch['out'])}")
    print(f"  (fakes: LLM + TTS beyond their delays, not ours) {summary(ch['fakes'])}")
    print(f"  PLATFORM SHARE (in+turn+llm+out)   {summary(ch['share'])}")
    print("target: platform share p50 <= 20 ms, p95 <= 40 ms")
    print(f"# server log: {len(problems)} warning/error lines")
    for count, kind in problem_kinds(problems):
        print(f"#   {count:>5} x {kind}")


# ------------------------------------------------------------------------------------------ SDK overhead
async def sdk_overhead(turn_counts: tuple[int, ...] = (1, 10, 30), reps: int = 20) -> None:
    """In one process (uvloop): ``LLM.stream()`` called -> request body written (its ``on_sent``), for
    the OpenAI adapter (body in ``extra_body``) and, alternating with it, the SDK's typed path
    (``create(**params)``: its argument transform walks every message first), by history length."""
    from fakeproviders.llm_openai import FakeOpenAI
    from fakeproviders.llm_server import Reply
    from voipbin.ai.llm.base import Message
    from voipbin.ai.llm.openai_compat import OpenAICompatLLM, to_openai_messages
    from voipbin.ai.llm.sent import notify_sent_during

    fake = FakeOpenAI()
    fake.default = Reply(text=list(ANSWER))
    await fake.start()
    llm = OpenAICompatLLM("openai", "gpt-4o-mini", api_key="sk-bench", base_url=fake.base_url + "/v1")
    client: Any = llm._client  # the adapter's SDK client, for the SDK's own path side by side
    print(f"# load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("turns in history | adapter: stream() -> request sent | SDK typed create() | ratio (p50)")
    sent: list[float] = []

    def note_sent() -> None:
        sent.append(time.perf_counter())

    for turns in turn_counts:
        history = [Message.system("You are the front desk of a small shop. Be brief.")]
        for i in range(turns):
            history.append(Message.user(QUESTIONS[i % len(QUESTIONS)]))
            if i < turns - 1:
                history.append(Message.assistant("".join(ANSWER)))
        ours: list[float] = []
        typed: list[float] = []
        for _ in range(reps):
            sent.clear()
            t0 = time.perf_counter()
            async for _event in llm.stream(history, on_sent=note_sent):
                pass
            ours.append((sent[0] - t0) * 1000)
            sent.clear()
            t0 = time.perf_counter()
            with notify_sent_during(note_sent):
                stream = await client.chat.completions.create(
                    model=llm.model, messages=to_openai_messages(history), stream=True,
                    stream_options={"include_usage": True},
                )  # fmt: skip
            async for _chunk in stream:
                pass
            typed.append((sent[0] - t0) * 1000)
        a, b = pct(ours, 50), pct(typed, 50)
        print(f"{turns:16d} | {a:8.2f} ms (p95 {pct(ours, 95):6.2f}) | "
              f"{b:8.2f} ms (p95 {pct(typed, 95):6.2f}) | {b / a:5.1f}x")  # fmt: skip
    await llm.aclose()
    await fake.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--role", default="driver", choices=["driver", "fakes", "callers"])
    ap.add_argument("--calls", type=int, default=1, help="concurrent calls (a few: latency, not density)")
    ap.add_argument("--questions", type=int, default=8)
    ap.add_argument("--spread", type=float, default=1.0, help="seconds over which the calls start")
    ap.add_argument(
        "--fixed-phase", action="store_true",
        help="keep the callers' 20 ms clock in one phase against the platform's (else it shifts 0-20 ms "
        "before each question: the fakes' fixed delays would otherwise put every reply at the same "
        "point of the platform's tick, always lucky or always not)",
    )  # fmt: skip
    ap.add_argument("--phase-shift", action="store_true", help=argparse.SUPPRESS)  # (--role callers)
    ap.add_argument("--llm-ms", type=float, default=100.0, help="fake LLM time to first token")
    ap.add_argument("--tts-ms", type=float, default=50.0, help="fake TTS time to first audio")
    ap.add_argument("--warmup", type=int, default=1, help="0: no warm-up call (smoke tests)")
    ap.add_argument("--offline", action="store_true", help="offline engines instead of the fakes (c)")
    ap.add_argument("--sip-port", type=int, default=0)
    ap.add_argument("--n", type=int, default=1)
    ap.add_argument("--first", type=int, default=0)
    ap.add_argument("--answer-timeout", type=float, default=15.0)
    ap.add_argument("--sdk-overhead", action="store_true", help="only the LLM request build, in process")
    args = ap.parse_args()
    if args.sdk_overhead:
        import uvloop

        uvloop.run(sdk_overhead())
    elif args.role == "fakes":
        asyncio.run(fakes_main(args.llm_ms, args.tts_ms))
    elif args.role == "callers":
        import uvloop

        print(json.dumps(uvloop.run(callers_main(args))))
    else:
        drive(args)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
