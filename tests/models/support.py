"""Shared test data for the action model tests: one realistic option per action type."""

A1 = "7f1d2a4e-0c55-4a43-9d3b-6c7f1f7b0a01"
A2 = "7f1d2a4e-0c55-4a43-9d3b-6c7f1f7b0a02"
FLOW = "a1b2c3d4-e5f6-7890-1234-567890abcdef"
AI_ID = "6f7a8b9c-0d1e-2345-f012-345678901234"
TEL = {"type": "tel", "target": "+15551234567"}

# One realistic option per action type (VoIPBIN field names; the seed's where it differs).
REALISTIC: dict[str, dict] = {
    "ai": {"initial_prompt": "You are a helpful assistant.", "language": "en-US", "voice_type": "female"},
    "ai_talk": {"assistance_type": "ai", "assistance_id": AI_ID, "duration": 300},
    "ai_task": {"ai_id": AI_ID},
    "ai_summary": {
        "reference_type": "transcribe",
        "reference_id": "${voipbin.transcribe.id}",
        "language": "en-US",
    },
    "amd": {"machine_handle": "hangup", "async": False},
    "answer": {},
    "beep": {},
    "block": {},
    "branch": {"variable": "voipbin.call.digits", "default_target_id": A1, "target_ids": {"1": A1, "2": A2}},
    "call": {
        "source": TEL,
        "destinations": [{"type": "sip", "target": "sip:Bob@Example.COM"}],
        "actions": [{"type": "talk", "option": {"text": "hello"}}],
        "chained": True,
        "anonymous": "no",
    },
    "case_create": {"name": "Callback", "detail": "customer asked for a callback", "sync": True},
    "condition_call_digits": {"length": 4, "key": "#", "false_target_id": A1},
    "condition_call_status": {"status": "progressing", "false_target_id": A2},
    "condition_datetime": {"condition": ">=", "hour": 9, "minute": 0, "weekdays": [1, 2, 3, 4, 5]},
    "condition_variable": {
        "condition": "==",
        "variable": "voipbin.call.digits",
        "value_type": "string",
        "value_string": "1",
        "false_target_id": A1,
    },
    "confbridge_join": {"confbridge_id": "0d1e2f3a-4b5c-6789-2345-678901abcdef"},
    "conference_join": {"conference_id": "8b9c0d1e-2f3a-4567-0123-456789abcdef"},
    "connect": {
        "source": TEL,
        "destinations": [{"type": "tel", "target": "+15551111111"}, {"type": "agent", "target": AI_ID}],
        "early_media": True,
        "relay_reason": True,
        "anonymous": "auto",
    },
    "conversation_send": {"conversation_id": FLOW, "text": "Your code is 1234", "sync": False},
    "digits_receive": {"duration": 5000, "key": "#", "length": 4},
    "digits_send": {"digits": "1234#", "duration": 250, "interval": 100},
    "echo": {"duration": 30000},
    "email_send": {
        "destinations": [{"type": "email", "target": "Ops@Example.com"}],
        "subject": "Recording",
        "content": "attached",
        "attachments": [{"reference_type": "recording", "reference_id": "${voipbin.recording.id}"}],
    },
    "external_media_start": {"external_host": "media.example.com:10000", "encapsulation": "rtp"},
    "external_media_stop": {},
    "fetch": {"event_url": "https://api.example.com/flow-event", "event_method": "POST"},
    "fetch_flow": {"flow_id": FLOW},
    "goto": {"target_id": A1, "loop_count": 3},
    "hangup": {"reason": "normal"},
    "message_send": {
        "source": TEL,
        "destinations": [{"type": "tel", "target": "+15559876543"}],
        "text": "hi",
    },
    "mute": {},
    "play": {"stream_urls": ["https://media.example.com/greeting.wav"]},
    "queue_join": {"queue_id": "1a2b3c4d-5e6f-7890-abcd-ef1234567890"},
    "recording_start": {
        "format": "wav",
        "end_of_silence": 5,
        "end_of_key": "#",
        "duration": 300,
        "beep_start": True,
    },
    "recording_stop": {},
    "sleep": {"duration": 30000},
    "stop": {},
    "stream_echo": {"duration": 10000},
    "talk": {"text": "Welcome to VoIPBIN.", "language": "en-US", "provider": "gcp", "digits_handle": "next"},
    "transcribe_recording": {"language": "en-US", "provider": "aws", "direction": "both"},
    "transcribe_start": {"language": "en-US", "direction": "in", "on_end_flow_id": FLOW, "real_time": True},
    "transcribe_stop": {},
    "variable_set": {"key": "customer.tier", "value": "${voipbin.call.source.target}"},
    "webhook_send": {"sync": True, "uri": "https://hooks.example.com/x", "method": "POST", "data": "{}"},
}


def _flow(action_type: str, option: dict) -> list[dict]:
    """The action under test plus the two targets that goto/branch/conditions point at."""
    return [{"type": action_type, "option": option}, {"id": A1, "type": "answer"}, {"id": A2, "type": "stop"}]
