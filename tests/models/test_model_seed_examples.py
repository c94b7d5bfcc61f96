# ruff: noqa: E501  (the request bodies are copied verbatim from the tutorial)
"""The seed tutorial's five ``POST /calls`` bodies (copied verbatim) validate and normalise as expected.

The bodies are copied byte for byte from reference/seed-ai-tutorial.rst; when that file is available
(the shared workspace) a test checks the copies are still identical.
"""

import json
import re
from pathlib import Path

import pytest

from voipbin.models.action_options.ai import AIOption, AISummaryOption, TranscribeOption
from voipbin.models.action_options.dial import ConnectOption
from voipbin.models.actions import Action, parse_option, validate_actions
from voipbin.models.address import validate_dial_address

SEED_RST = Path("/work/shared/reference/seed-ai-tutorial.rst")

SIMPLE_AI = r"""{
            "source": {
                "type": "tel",
                "target": "+15551234567"
            },
            "destinations": [
                {
                    "type": "tel",
                    "target": "+15559876543"
                }
            ],
            "actions": [
                {
                    "type": "answer"
                },
                {
                    "type": "ai",
                    "option": {
                        "initial_prompt": "You are a helpful customer service assistant. Answer questions politely and concisely.",
                        "language": "en-US",
                        "voice_type": "female"
                    }
                }
            ]
        }"""

AI_TALK = r"""{
            "source": {
                "type": "tel",
                "target": "+15551234567"
            },
            "destinations": [
                {
                    "type": "tel",
                    "target": "+15559876543"
                }
            ],
            "actions": [
                {
                    "type": "answer"
                },
                {
                    "type": "ai_talk",
                    "option": {
                        "initial_prompt": "You are an expert sales representative for VoIPBIN. Help customers understand our calling and messaging platform. Be enthusiastic but professional.",
                        "language": "en-US",
                        "voice_type": "male"
                    }
                }
            ]
        }"""

AI_TALK_VOICE_ID = r"""{
            "source": {
                "type": "tel",
                "target": "+15551234567"
            },
            "destinations": [
                {
                    "type": "tel",
                    "target": "+15559876543"
                }
            ],
            "actions": [
                {
                    "type": "answer"
                },
                {
                    "type": "variable_set",
                    "option": {
                        "key": "voipbin.tts.elevenlabs.voice_id",
                        "value": "21m00Tcm4TlvDq8ikWAM"
                    }
                },
                {
                    "type": "ai_talk",
                    "option": {
                        "initial_prompt": "You are a friendly receptionist. Greet callers warmly and help them with their inquiries.",
                        "language": "en-US"
                    }
                }
            ]
        }"""

AI_SUMMARY_TRANSCRIBE = r"""{
            "source": {
                "type": "tel",
                "target": "+15551234567"
            },
            "destinations": [
                {
                    "type": "tel",
                    "target": "+15559876543"
                }
            ],
            "actions": [
                {
                    "type": "answer"
                },
                {
                    "type": "transcribe_start",
                    "option": {
                        "language": "en-US"
                    }
                },
                {
                    "type": "talk",
                    "option": {
                        "text": "Hello! This call is being transcribed and summarized. Please tell me about your experience with our service.",
                        "language": "en-US"
                    }
                },
                {
                    "type": "sleep",
                    "option": {
                        "duration": 30000
                    }
                },
                {
                    "type": "ai_summary",
                    "option": {
                        "source_type": "transcribe",
                        "source_id": "${voipbin.transcribe.id}"
                    }
                },
                {
                    "type": "talk",
                    "option": {
                        "text": "Thank you for your feedback. We have recorded and summarized your call.",
                        "language": "en-US"
                    }
                }
            ]
        }"""

AI_SUMMARY_REAL_TIME = r"""{
            "source": {
                "type": "tel",
                "target": "+15551234567"
            },
            "destinations": [
                {
                    "type": "tel",
                    "target": "+15559876543"
                }
            ],
            "actions": [
                {
                    "type": "answer"
                },
                {
                    "type": "transcribe_start",
                    "option": {
                        "language": "en-US",
                        "real_time": true
                    }
                },
                {
                    "type": "ai_summary",
                    "option": {
                        "source_type": "call",
                        "source_id": "${voipbin.call.id}",
                        "real_time": true
                    }
                },
                {
                    "type": "connect",
                    "option": {
                        "source": {
                            "type": "tel",
                            "target": "+15551234567"
                        },
                        "destinations": [
                            {
                                "type": "tel",
                                "target": "+15551111111"
                            }
                        ]
                    }
                }
            ]
        }"""

SEED_BODIES = {
    "simple_ai": SIMPLE_AI,
    "ai_talk": AI_TALK,
    "ai_talk_voice_id": AI_TALK_VOICE_ID,
    "ai_summary_transcribe": AI_SUMMARY_TRANSCRIBE,
    "ai_summary_real_time": AI_SUMMARY_REAL_TIME,
}


def _actions(name: str) -> list[Action]:
    return validate_actions(json.loads(SEED_BODIES[name])["actions"])


@pytest.mark.skipif(not SEED_RST.exists(), reason="shared reference workspace not mounted")
def test_copies_match_the_tutorial_text() -> None:
    bodies = re.findall(r"--data-raw '(\{.*?\})'", SEED_RST.read_text(), re.S)
    assert bodies == list(SEED_BODIES.values())


@pytest.mark.parametrize("name", sorted(SEED_BODIES))
def test_every_seed_body_validates_verbatim(name: str) -> None:
    body = json.loads(SEED_BODIES[name])
    actions = validate_actions(body["actions"])
    assert [a.type for a in actions] == [a["type"] for a in body["actions"]]
    # the stored option is exactly what the user sent (round trip), ids are generated and unique
    assert [a.option for a in actions] == [a.get("option", {}) for a in body["actions"]]
    assert len({a.id for a in actions}) == len(actions)
    for action in actions:
        parse_option(action)
    # the call's own source/destinations are diallable addresses too
    for index, dest in enumerate(body["destinations"]):
        assert validate_dial_address(dest, f"destinations[{index}]").target == "+15559876543"


def test_simple_ai_inline_config() -> None:
    option = parse_option(_actions("simple_ai")[1])
    assert isinstance(option, AIOption)
    assert option.initial_prompt.startswith("You are a helpful customer service assistant.")
    assert (option.language, option.voice_type, option.assistance_id) == ("en-US", "female", None)


def test_ai_talk_voice_and_variable() -> None:
    assert parse_option(_actions("ai_talk")[1]).voice_type == "male"  # type: ignore[attr-defined]
    actions = _actions("ai_talk_voice_id")
    variable = parse_option(actions[1])
    assert (variable.key, variable.value) == ("voipbin.tts.elevenlabs.voice_id", "21m00Tcm4TlvDq8ikWAM")  # type: ignore[attr-defined]
    assert parse_option(actions[2]).voice_type == ""  # type: ignore[attr-defined]


def test_ai_summary_seed_names_map_to_reference_fields() -> None:
    actions = _actions("ai_summary_transcribe")
    summary = parse_option(actions[4])
    assert isinstance(summary, AISummaryOption)
    assert (summary.reference_type, summary.reference_id) == ("transcribe", "${voipbin.transcribe.id}")
    assert summary.real_time is False
    assert parse_option(actions[3]).duration == 30000  # type: ignore[attr-defined]
    assert actions[4].option == {"source_type": "transcribe", "source_id": "${voipbin.transcribe.id}"}


def test_real_time_summary_and_connect() -> None:
    actions = _actions("ai_summary_real_time")
    transcribe = parse_option(actions[1])
    assert isinstance(transcribe, TranscribeOption) and transcribe.real_time is True
    summary = parse_option(actions[2])
    assert isinstance(summary, AISummaryOption)
    assert (summary.reference_type, summary.reference_id, summary.real_time) == (
        "call",
        "${voipbin.call.id}",
        True,
    )
    connect = parse_option(actions[3])
    assert isinstance(connect, ConnectOption)
    assert connect.source is not None and connect.source.target == "+15551234567"
    assert [d.target for d in connect.destinations] == ["+15551111111"]
