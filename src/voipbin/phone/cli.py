"""``voipbin phone``: run the test phone from a shell, printing its events as JSON lines on stdout.

    voipbin phone --number +15559876543 --say "Hello from the test phone" --record heard.wav
    voipbin phone --number +15559876543 --dial +15551234567 --play hello.wav --hangup-after 10

Without ``--dial`` it registers, answers every call and runs until Ctrl-C / SIGTERM (then hangs up and
unregisters cleanly). With ``--dial`` it places one call and exits when that call ends (exit status 0
if it was answered). Defaults for the server and the domain come from the platform's settings, read
once at the entry (``_phone_command``, or ``run_phone`` when called without ``settings``) and passed
down. Logs go to stderr so stdout stays machine-readable.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys
from pathlib import Path
from typing import Any, TextIO

from voipbin.config import Settings, get_settings
from voipbin.phone.testphone import PhoneError, TestPhone
from voipbin.speech.executor import configure_inference


def _server(text: str) -> tuple[str, int | None]:
    """``host[:port]``; no port: None, the platform's SIP port (filled in by :func:`run_phone`)."""
    host, sep, port = text.rpartition(":")
    if not sep:
        return text, None
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"bad port in {text!r}")
    return host or "127.0.0.1", int(port)


def _ports(text: str) -> tuple[int, int]:
    lo, sep, hi = text.partition("-")
    if not (sep and lo.isdigit() and hi.isdigit() and int(lo) < int(hi)):
        raise argparse.ArgumentTypeError("expected MIN-MAX, e.g. 30000-30099")
    return int(lo), int(hi)


def default_server(s: Settings) -> tuple[str, int]:
    host = s.sip_public_host or ("127.0.0.1" if s.sip_host in ("0.0.0.0", "") else s.sip_host)
    return host, s.sip_port


def _server_address(server: tuple[str, int | None] | None, s: Settings) -> tuple[str, int]:
    if server is None:
        return default_server(s)
    host, port = server
    return host, s.sip_port if port is None else port


def add_phone_parser(subparsers: Any) -> None:
    """Register ``phone`` on the CLI's subparsers (sets ``fn``)."""
    p = subparsers.add_parser(
        "phone",
        help="built-in test phone: register a number, answer, play/say, record, dial",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--number", required=True, help="E.164 number to register, e.g. +15559876543")
    p.add_argument("--server", type=_server, default=None, help="platform SIP host:port (default: settings)")
    p.add_argument("--domain", default=None, help="SIP domain (default: VOIPBIN_SIP_DOMAIN)")
    p.add_argument("--bind", default="127.0.0.1", help="local address for SIP and RTP")
    p.add_argument("--rtp-ports", type=_ports, default=None, metavar="MIN-MAX")
    p.add_argument("--password", default="", help="only if the server challenges")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--play", type=Path, help="WAV file to play once a call is answered")
    what.add_argument("--say", help="text to speak once a call is answered")
    p.add_argument("--tts-type", default="espeak", help="engine for --say (espeak, piper, ...)")
    p.add_argument(
        "--speak-after",
        type=float,
        default=0.0,
        metavar="S",
        help="wait S seconds after the call is answered before playing/saying (give an AI time to listen)",
    )
    p.add_argument("--record", type=Path, help="record what the phone hears (one file per call)")
    p.add_argument("--transcribe", action="store_true", help="print what was heard (offline STT) at hangup")
    p.add_argument("--stt-type", default="whisper")
    p.add_argument("--answer-delay", type=float, default=0.0, metavar="S")
    p.add_argument("--hangup-after", type=float, default=None, metavar="S")
    p.add_argument("--reject", type=int, default=None, metavar="STATUS", help="refuse calls, e.g. 486")
    p.add_argument("--no-answer", action="store_true", help="ring forever")
    p.add_argument("--dtmf", default=None, metavar="DIGITS", help="send these digits once answered")
    p.add_argument("--dial", default=None, metavar="NUMBER", help="call NUMBER (or a sip: URI), then exit")
    p.add_argument("--no-register", action="store_true", help="do not REGISTER (dial only)")
    p.set_defaults(fn=_phone_command)


def _phone_command(args: argparse.Namespace) -> int:
    settings = get_settings()
    logging.basicConfig(
        level=settings.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # this process's speech engines (--say, --transcribe) share one inference budget
    configure_inference(workers=settings.speech_workers, whisper_threads=settings.whisper_threads)
    try:
        return asyncio.run(run_phone(args, settings=settings))
    except KeyboardInterrupt:
        return 130


async def run_phone(
    args: argparse.Namespace,
    *,
    stop: asyncio.Event | None = None,
    out: TextIO | None = None,
    settings: Settings | None = None,
) -> int:
    """The ``phone`` command as a coroutine; ``stop`` ends it like SIGINT does (tests use it).

    ``settings`` supplies the defaults for ``--server`` and ``--domain`` (default: the process's).
    """
    out = out or sys.stdout
    stop = stop or asyncio.Event()
    settings = settings or get_settings()

    def emit(ev: dict[str, Any]) -> None:
        out.write(json.dumps(ev, default=str) + "\n")
        out.flush()

    phone = TestPhone(
        args.number,
        server=_server_address(args.server, settings),
        domain=args.domain or settings.sip_domain,
        bind_host=args.bind,
        rtp_ports=args.rtp_ports,
        answer_delay=args.answer_delay,
        play=args.play,
        say=args.say,
        speak_after=args.speak_after,
        tts_type=args.tts_type,
        record=args.record,
        hangup_after=args.hangup_after,
        reject_with=args.reject,
        no_answer=args.no_answer,
        dtmf=args.dtmf,
        password=args.password,
        register=not args.no_register,
        on_event=emit,
    )
    loop = asyncio.get_running_loop()
    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):  # not main thread / Windows
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
    transcribing: set[asyncio.Task[None]] = set()

    async def transcribe(call: Any) -> None:
        try:
            text = await call.heard_text(args.stt_type)
            emit({"event": "heard", "number": args.number, "call_id": call.call_id, "text": text})
        except Exception as exc:
            emit({"event": "error", "number": args.number, "call_id": call.call_id, "error": f"stt: {exc}"})

    def on_hangup(ev: dict[str, Any]) -> None:
        emit(ev)
        if ev["event"] == "hangup" and args.transcribe and ev.get("recording"):
            call = next((c for c in phone.calls if c.call_id == ev.get("call_id")), None)
            if call is not None:
                task = loop.create_task(transcribe(call))
                transcribing.add(task)
                task.add_done_callback(transcribing.discard)

    phone.on_event = on_hangup
    try:
        try:
            await phone.start()
        except (PhoneError, OSError) as exc:
            emit({"event": "error", "number": args.number, "error": str(exc)})
            return 2
        status = 0
        stopper = asyncio.ensure_future(stop.wait())
        try:
            if args.dial:
                call = phone.dial(
                    args.dial,
                    play=args.play,
                    say=args.say,
                    record=args.record,
                    hangup_after=args.hangup_after,
                    dtmf=args.dtmf,
                )
                waiters: set[asyncio.Future[Any]] = {
                    stopper,
                    asyncio.ensure_future(asyncio.shield(call.ended)),
                }
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
                status = 0 if call.answered.done() and call.answered.result() else 1
            else:
                await stopper
        finally:
            stopper.cancel()
        await phone.stop()
        if transcribing:
            await asyncio.gather(*transcribing, return_exceptions=True)
        return status
    finally:
        with contextlib.suppress(Exception):
            await phone.stop()
        for sig in installed:
            loop.remove_signal_handler(sig)


def main(argv: list[str] | None = None) -> int:
    """``python -m voipbin.phone ...``: the same command without the rest of the CLI."""
    parser = argparse.ArgumentParser(prog="voipbin")
    add_phone_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["phone", *(sys.argv[1:] if argv is None else argv)])
    return int(args.fn(args))
