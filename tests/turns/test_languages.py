"""Languages: unsupported ones are a 400 at write time naming the field; Spanish works offline end to end.

The write-time checks use the engines that will run (given, or the node's defaults: whisper/piper).
The end-to-end call: a Spanish ``ai_talk`` over SIP/RTP with the offline engines (Whisper ``base``
transcribes Spanish, espeak-ng's Spanish voice answers because Piper's voice is English only).
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from tests.ai_session.support import Events
from tests.calls.support import Telephony
from voipbin.phone import TestPhone
from voipbin.speech.language_check import UnsupportedLanguage, check_languages
from voipbin.speech.registry import create_tts
from voipbin.speech.stt_whisper import model_for

ROUTE = {
    "source": {"type": "tel", "target": "+15551234567"},
    "destinations": [{"type": "tel", "target": "+15559876543"}],
}


def _ai_talk(**option: object) -> list[dict[str, object]]:
    return [
        {"type": "answer"},
        {"type": "ai_talk", "option": {"initial_prompt": "Eres un asistente.", **option}},
    ]


def test_language_checks_name_the_field() -> None:
    check_languages(tts_type="", stt_type="whisper", language="es-ES")
    check_languages(tts_type="piper", stt_type="whisper", language="ko-KR")
    with pytest.raises(UnsupportedLanguage) as err:
        check_languages(tts_type="piper", stt_type="whisper", language="qu-PE")  # Quechua: no Whisper
    assert err.value.field == "language" and "whisper" in str(err.value)
    with pytest.raises(UnsupportedLanguage) as err:
        check_languages(tts_type="espeak", stt_type="whisper", language="en-US", stt_language="xx-XX")
    assert err.value.field == "stt_language"
    with pytest.raises(UnsupportedLanguage) as err:
        check_languages(tts_type="espeak", stt_type="deepgram", language="fo-FO")  # Faroese: no espeak voice
    assert err.value.field == "language" and "tts_type" in str(err.value)
    check_languages(tts_type=None, stt_type=None, language="qu-PE")  # engines of a referenced AI: at run time


def test_whisper_picks_the_model_by_language() -> None:
    assert model_for("en-GB") == ("tiny.en", "en")
    assert model_for("es-ES") == ("base", "es")
    assert model_for(None) == ("base", None)  # detect


def test_piper_speaks_other_languages_with_espeak() -> None:
    assert create_tts("piper", language="es-ES").provider == "espeak"
    assert create_tts("piper", language="en-US").provider == "piper"


async def test_unsupported_language_is_a_400_at_write_time(telephony: Telephony) -> None:
    c = telephony.client
    r = await c.post("/v1.0/calls", json={**ROUTE, "actions": _ai_talk(language="qu-PE")})
    assert r.status_code == 400, r.text
    assert "actions[1].option.language" in r.text and "does not support language" in r.text
    r = await c.post(
        "/v1.0/flows", json={"name": "f", "actions": _ai_talk(language="es-ES", stt_language="xx")}
    )
    assert r.status_code == 400, r.text
    assert "actions[1].option.stt_language" in r.text
    r = await c.post("/v1.0/flows", json={"name": "f", "actions": _ai_talk(language="es-ES")})
    assert r.status_code == 200, r.text
    body = {
        "name": "a",
        "engine_model": "offline.scripted",
        "tts_type": "piper",
        "stt_type": "whisper",
        "stt_language": "qu-PE",
        "init_prompt": "x",
    }
    r = await c.post("/v1.0/ais", json=body)
    assert r.status_code == 400, r.text
    assert "stt_language" in r.text
    r = await c.post("/v1.0/ais", json={**body, "stt_language": "de-DE"})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("language", ["es-ES", ""], ids=["es-ES", "detected"])
async def test_spanish_ai_talk_offline_end_to_end(
    telephony: Telephony, tmp_path: Path, language: str
) -> None:
    events = Events(telephony.platform.events)
    phone = TestPhone("+15559876543", server=("127.0.0.1", telephony.sip_port), record=tmp_path / "heard.wav")
    await phone.start()
    try:
        option = {"language": language} if language else {}
        r = await telephony.client.post("/v1.0/calls", json={**ROUTE, "actions": _ai_talk(**option)})
        assert r.status_code == 200, r.text
        call_id = r.json()["id"]
        handle = await phone.wait_call(10)
        assert await asyncio.wait_for(handle.answered, 10)
        await events.wait_for(lambda e: bool(e.of("aicall_status_progressing")), within=10)
        await asyncio.sleep(0.5)
        tts = create_tts("espeak", language="es", sample_rate=8000, words_per_minute=130)
        pcm = await tts.read_all_of("Quisiera saber el horario de la tienda, por favor.")
        await tts.aclose()
        assert handle.media is not None and await handle.media.play_pcm(pcm)
        await events.wait_for(lambda e: bool(e.messages("assistant")), within=40)
        await asyncio.sleep(0.3)
        assert await handle.hangup() == "local"
        call = await telephony.wait_hangup(call_id, within=10)
        assert not call["metadata"].get("flow_error"), call["metadata"]
        (user,) = events.messages("user")[:1]
        (reply,) = events.messages("assistant")[:1]
        spanish = ("horario", "tienda", "favor", "saber", "quisiera", "que", "la", "el", "de")
        words = re.findall(r"\w+", user.lower())  # "¡tienda!" is "tienda"
        if language:  # told the language: the words come through (espeak-ng via G.711, Whisper base)
            assert {"horario", "tienda", "favor", "saber"} & set(words), user
        else:  # detected: Whisper base hears Spanish (its words are rougher without the hint)
            assert set(spanish) & set(words), user
        assert user.rstrip(".?!¿") in reply, (user, reply)  # the scripted engine answers with them
        heard = (await handle.heard_text(stt_type="whisper", language="es-ES")).lower()
        assert heard.strip(), "the reply was not heard"
    finally:
        events.close()
        await phone.stop()
