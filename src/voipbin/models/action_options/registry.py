"""``OPTION_MODELS``: the registry of option models, one per action type.

``OPTION_MODELS`` maps every accepted action type (VoIPBIN's 43 plus the seed's ``ai``) to its model.
"""

from pydantic import BaseModel

from voipbin.models.action_options.ai import AIOption, AISummaryOption, AITaskOption, TranscribeOption
from voipbin.models.action_options.base import ActionOption, NoOption
from voipbin.models.action_options.control import (
    BranchOption,
    ConditionCallDigitsOption,
    ConditionCallStatusOption,
    ConditionDatetimeOption,
    ConditionVariableOption,
    FetchFlowOption,
    FetchOption,
    GotoOption,
    VariableSetOption,
    WebhookSendOption,
)
from voipbin.models.action_options.dial import (
    CallOption,
    ConfbridgeJoinOption,
    ConferenceJoinOption,
    ConnectOption,
    QueueJoinOption,
)
from voipbin.models.action_options.media import (
    AMDOption,
    DigitsReceiveOption,
    DigitsSendOption,
    EchoOption,
    ExternalMediaStartOption,
    HangupOption,
    PlayOption,
    RecordingStartOption,
    SleepOption,
    TalkOption,
)
from voipbin.models.action_options.messaging import (
    CaseCreateOption,
    ConversationSendOption,
    EmailSendOption,
    MessageSendOption,
)

OPTION_MODELS: dict[str, type[BaseModel]] = {
    # AI and transcription
    "ai": AIOption,  # seed tutorial only; not a VoIPBIN type
    "ai_talk": AIOption,
    "ai_task": AITaskOption,
    "ai_summary": AISummaryOption,
    "transcribe_start": TranscribeOption,
    "transcribe_recording": TranscribeOption,
    "transcribe_stop": NoOption,
    # call media
    "amd": AMDOption,
    "answer": NoOption,
    "beep": NoOption,
    "digits_receive": DigitsReceiveOption,
    "digits_send": DigitsSendOption,
    "echo": EchoOption,
    "stream_echo": EchoOption,
    "external_media_start": ExternalMediaStartOption,
    "external_media_stop": NoOption,
    "hangup": HangupOption,
    "mute": NoOption,
    "play": PlayOption,
    "recording_start": RecordingStartOption,
    "recording_stop": NoOption,
    "sleep": SleepOption,
    "talk": TalkOption,
    # legs and rooms
    "call": CallOption,
    "connect": ConnectOption,
    "confbridge_join": ConfbridgeJoinOption,
    "conference_join": ConferenceJoinOption,
    "queue_join": QueueJoinOption,
    # flow control
    "block": NoOption,
    "branch": BranchOption,
    "condition_call_digits": ConditionCallDigitsOption,
    "condition_call_status": ConditionCallStatusOption,
    "condition_datetime": ConditionDatetimeOption,
    "condition_variable": ConditionVariableOption,
    "fetch": FetchOption,
    "fetch_flow": FetchFlowOption,
    "goto": GotoOption,
    "stop": NoOption,
    "variable_set": VariableSetOption,
    "webhook_send": WebhookSendOption,
    # messaging
    "case_create": CaseCreateOption,
    "conversation_send": ConversationSendOption,
    "email_send": EmailSendOption,
    "message_send": MessageSendOption,
}

__all__ = ["OPTION_MODELS", "ActionOption", "NoOption"]
