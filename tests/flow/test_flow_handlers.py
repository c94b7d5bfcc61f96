"""Call handlers: play (paths, file://, http://), digits_send, recording, hangup relay, answer."""

from __future__ import annotations

import time
import uuid

from starlette.responses import Response

from tests.flow.conftest import Env, write_tone
from tests.flow.localhttp import local_server


async def test_answer_then_play_local_files_in_order(env: Env) -> None:
    a = write_tone(env.media_dir / "a.wav", 0.3)
    b = write_tone(env.media_dir / "b.wav", 0.2)
    call = await env.call(
        [{"type": "answer"}, {"type": "play", "option": {"stream_urls": [str(a), b.as_uri()]}}]
    )
    call.answered = False
    started = time.monotonic()
    af_id = await env.start(call)
    await env.wait(af_id)
    elapsed = time.monotonic() - started
    assert call.ops() == ["answer", "play", "play", "hangup"]
    assert [arg for op, arg in call.log if op == "play"] == ["a.wav", "b.wav"]
    assert 0.5 <= elapsed < 2.0  # played for the files' length


async def test_play_rejects_bad_sources(env: Env, tmp_path) -> None:
    outside = write_tone(tmp_path / "outside.wav", 0.1)
    (env.media_dir / "text.wav").write_text("not a wav at all")
    cases = [
        (str(outside), "outside the allowed media directories"),
        (str(env.media_dir / "missing.wav"), "does not exist"),
        (str(env.media_dir / "text.wav"), "is not a WAV file"),
        ("file://otherhost/x.wav", "remote host"),
        ("ftp://example.com/x.wav", "unsupported URL"),
    ]
    for url, message in cases:
        call, af = await env.run([{"type": "play", "option": {"stream_urls": [url]}}])
        assert message in af.error, (url, af.error)
        assert call.hangup_reason == "failed" and "play" not in call.ops()


async def test_play_http_urls(env: Env) -> None:
    wav = write_tone(env.media_dir / "remote.wav", 0.2).read_bytes()
    async with local_server() as server:
        server.routes["/hello.wav"] = lambda _: Response(wav, media_type="audio/wav")
        server.routes["/notwav"] = lambda _: Response(b"<html>", media_type="text/html")
        call, af = await env.run([{"type": "play", "option": {"stream_urls": [server.url("/hello.wav")]}}])
        assert af.error == "" and call.ops() == ["play", "hangup"]
        assert server.requests[-1].method == "GET"
        for path, message in (("/missing.wav", "HTTP 404"), ("/notwav", "is not a WAV file")):
            call, af = await env.run([{"type": "play", "option": {"stream_urls": [server.url(path)]}}])
            assert message in af.error and call.hangup_reason == "failed"
    # Nothing listens any more: connection refused is a handler error too.
    call, af = await env.run([{"type": "play", "option": {"stream_urls": [server.url("/hello.wav")]}}])
    assert "cannot fetch" in af.error and call.hangup_reason == "failed"


async def test_digits_send(env: Env) -> None:
    call, _af = await env.run(
        [
            {"type": "digits_send", "option": {"digits": "12#", "duration": 100, "interval": 50}},
            {"type": "digits_send", "option": {"digits": "9"}},
        ]
    )
    assert call.log[0] == ("dtmf_send", ("12#", 100, 50))
    assert call.log[1] == ("dtmf_send", ("9", 250, 100))  # defaults


async def test_recording_start_stop_sets_variables(env: Env) -> None:
    on_end = await env.flow([{"type": "stop"}])
    call, af = await env.run(
        [
            {
                "type": "recording_start",
                "option": {
                    "format": "wav",
                    "duration": 30,
                    "end_of_key": "#",
                    "on_end_flow_id": str(on_end.id),
                },
            },
            {"type": "variable_set", "option": {"key": "rec", "value": "${voipbin.recording.id}"}},
            {"type": "recording_stop"},
        ]
    )
    assert call.ops() == ["recording_start", "recording_stop", "hangup"]
    recording_id = call.log[0][1]
    assert af.variables["rec"] == str(recording_id)
    assert af.variables["voipbin.recording.reference_id"] == str(call.call_id)
    assert af.variables["voipbin.recording.format"] == "wav"


async def test_recording_request_carries_options(env: Env) -> None:
    call = await env.call(
        [{"type": "recording_start", "option": {"duration": 7, "beep_start": True, "end_of_silence": 3}}]
    )
    af_id = await env.start(call)
    await env.wait(af_id)
    # No recording_stop in the flow: the request stays with the call (the call side ends it on hangup).
    assert call.recording is not None
    assert (call.recording.duration, call.recording.beep_start, call.recording.end_of_silence) == (7, True, 3)
    assert call.recording.activeflow_id == af_id and call.recording.format == "wav"


async def test_hangup_copies_reference_calls_reason(env: Env) -> None:
    other = await env.call([])
    await other.hangup("busy")
    call, _af = await env.run([{"type": "hangup", "option": {"reference_id": str(other.call_id)}}])
    assert call.hangup_reason == "busy"
    # An unknown reference keeps the default reason.
    call, _af = await env.run([{"type": "hangup", "option": {"reference_id": str(uuid.uuid4())}}])
    assert call.hangup_reason == "normal"
