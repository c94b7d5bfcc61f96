"""The ``phone`` subcommand: argparse wiring, the main coroutine, and a real process with SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import signal
import sys
from pathlib import Path

import pytest
from phone_helpers import DOMAIN, PHONE_NUMBER, PLATFORM_NUMBER, DevCarrier, rms, voiced_seconds

from voipbin.media.wav import read_wav
from voipbin.phone import add_phone_parser, run_phone

pytestmark = pytest.mark.timeout(60)
SRC = Path(__file__).resolve().parents[2] / "src"


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="voipbin")
    add_phone_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["phone", *argv])


def lines(out: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_parser_defaults_and_validation(monkeypatch: pytest.MonkeyPatch) -> None:
    args = parse("--number", PHONE_NUMBER)
    assert args.command == "phone" and callable(args.fn)
    assert args.server is None and args.domain is None and args.answer_delay == 0.0
    args = parse("--number", PHONE_NUMBER, "--server", "127.0.0.1:5070", "--rtp-ports", "30000-30009")
    assert args.server == ("127.0.0.1", 5070) and args.rtp_ports == (30000, 30009)
    for bad in (["--server", "h:x"], ["--play", "a.wav", "--say", "hi"], ["--rtp-ports", "9-1"], []):
        with pytest.raises(SystemExit):
            parse(*(["--number", PHONE_NUMBER] if bad else []), *bad)


async def test_run_phone_answers_plays_records_and_prints_events(
    carrier: DevCarrier, tmp_path: Path, phone_tone_wav: Path, tone_wav: Path
) -> None:
    host, port = carrier.address
    heard = tmp_path / "heard.wav"
    args = parse(
        "--number", PHONE_NUMBER, "--server", f"{host}:{port}", "--domain", DOMAIN,
        "--play", str(phone_tone_wav), "--record", str(heard), "--hangup-after", "2.0",
    )  # fmt: skip
    out, stop = io.StringIO(), asyncio.Event()
    task = asyncio.ensure_future(run_phone(args, stop=stop, out=out))
    await carrier.wait_registered()
    leg = await carrier.call(play=tone_wav, record=tmp_path / "carrier.wav")
    assert (await leg.established()).ok
    assert await asyncio.wait_for(leg.call.ended, 5) == "remote_bye"  # the phone's hangup_after
    stop.set()
    assert await asyncio.wait_for(task, 10) == 0
    await leg.close()
    events = lines(out)
    names = [e["event"] for e in events]
    for expected in ("registered", "incoming", "ringing", "answered", "played", "hangup", "unregistered"):
        assert expected in names, names
    assert names.index("registered") < names.index("answered") < names.index("hangup")
    assert names[-1] == "unregistered"
    assert carrier.bindings() == []
    hangup = next(e for e in events if e["event"] == "hangup")
    assert hangup["by"] == "local" and hangup["reason"] == "hangup_after"
    assert voiced_seconds(read_wav(tmp_path / "carrier.wav")) == pytest.approx(1.5, abs=0.1)
    assert rms(read_wav(heard)) > 1000


async def test_run_phone_dial_mode_exits_when_the_call_ends(carrier: DevCarrier) -> None:
    host, port = carrier.address
    args = parse("--number", PHONE_NUMBER, "--server", f"{host}:{port}", "--domain", DOMAIN,
                 "--dial", PLATFORM_NUMBER, "--dtmf", "5")  # fmt: skip
    out = io.StringIO()
    task = asyncio.ensure_future(run_phone(args, out=out))
    inv = await asyncio.wait_for(carrier.invites.get(), 5)
    assert str(inv.request.uri) == f"sip:{PLATFORM_NUMBER}@{DOMAIN}"
    leg = await carrier.answer(inv)
    assert (await asyncio.wait_for(leg.ms.next_dtmf(), 5)).digit == "5"
    await leg.call.bye()
    assert await asyncio.wait_for(task, 10) == 0
    names = [e["event"] for e in lines(out)]
    assert names[:2] == ["registered", "dialing"] and "answered" in names and names[-1] == "unregistered"


async def test_run_phone_reports_refused_registration(carrier: DevCarrier) -> None:
    carrier.refuse_register = 403
    host, port = carrier.address
    out = io.StringIO()
    args = parse("--number", PHONE_NUMBER, "--server", f"{host}:{port}", "--domain", DOMAIN)
    assert await run_phone(args, out=out) == 2
    (ev,) = lines(out)
    assert ev["event"] == "error" and "403" in ev["error"]


async def test_process_unregisters_on_sigint(carrier: DevCarrier) -> None:
    host, port = carrier.address
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "voipbin.phone", "--number", PHONE_NUMBER, "--server", f"{host}:{port}",
        "--domain", DOMAIN, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        first = json.loads(await asyncio.wait_for(proc.stdout.readline(), 20))
        assert first["event"] == "registered"
        assert carrier.bindings()
        proc.send_signal(signal.SIGINT)
        rest = await asyncio.wait_for(proc.stdout.read(), 10)
        assert await asyncio.wait_for(proc.wait(), 10) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert [json.loads(x)["event"] for x in rest.decode().splitlines()] == ["unregistered"]
    assert carrier.bindings() == []
