"""Options of actions that act on a call's media: talk, play, sleep, DTMF, recording, echo, AMD, ...

Field names, units and enums follow VoIPBIN (voipbin-api.md §3.3 / the FlowManagerActionOption*
schemas). Durations are milliseconds except recording_start's (seconds), as in VoIPBIN.
"""

from typing import Annotated

from pydantic import Field

from voipbin.models.action_options.base import ActionOption, require
from voipbin.models.action_options.fields import (
    Dtmf,
    Language,
    VarBool,
    VarStr,
    VarUuid,
    int_in,
    is_placeholder,
    one_of,
)

HANGUP_REASONS = ("normal", "failed", "busy", "cancel", "timeout", "noanswer", "dialout", "amd")
TALK_PROVIDERS = ("gcp", "aws")


class TalkOption(ActionOption):
    text: VarStr = ""
    language: Language = ""
    provider: Annotated[str, one_of(*TALK_PROVIDERS)] = ""
    voice_id: VarStr = ""
    gender: Annotated[str, one_of("male", "female", "neutral")] = ""  # in the spec, not in §3.3 code
    digits_handle: Annotated[str, one_of("next")] = ""
    async_: VarBool = Field(default=False, alias="async")

    def check(self, field: str) -> None:
        require(self.text.strip() != "", f"{field}.text", "the text to speak is required")


class PlayOption(ActionOption):
    stream_urls: list[VarStr] = Field(default_factory=list)

    def check(self, field: str) -> None:
        require(len(self.stream_urls) > 0, f"{field}.stream_urls", "expected at least one URL to play")


class SleepOption(ActionOption):
    duration: Annotated[int | str, int_in(what="a duration in milliseconds")] = 0


class EchoOption(ActionOption):
    duration: Annotated[int | str, int_in(what="a duration in milliseconds")] = 0


class DigitsReceiveOption(ActionOption):
    duration: Annotated[int | str, int_in(what="a duration in milliseconds")] = 0
    key: Dtmf = ""
    length: Annotated[int | str, int_in(what="a number of digits")] = 0


class DigitsSendOption(ActionOption):
    digits: Dtmf = ""
    duration: Annotated[
        int | str, int_in(ge=0, le=1000, what="a tone duration in milliseconds (100-1000)")
    ] = 0
    interval: Annotated[int | str, int_in(ge=0, le=5000, what="an interval in milliseconds (0-5000)")] = 0

    def check(self, field: str) -> None:
        require(self.digits != "", f"{field}.digits", "the digits to send are required")
        if isinstance(self.duration, int) and self.duration:
            require(self.duration >= 100, f"{field}.duration", "expected 100 to 1000 ms (or 0 for default)")


class RecordingStartOption(ActionOption):
    format: Annotated[str, one_of("wav", "mp3", "ogg")] = ""
    end_of_silence: Annotated[int | str, int_in(what="a number of seconds")] = 0
    end_of_key: Annotated[str, one_of("none", "any", "*", "#")] = ""
    duration: Annotated[int | str, int_in(what="a number of seconds")] = 0
    beep_start: VarBool = False
    on_end_flow_id: VarUuid = None


class HangupOption(ActionOption):
    reason: Annotated[str, one_of(*HANGUP_REASONS)] = ""
    reference_id: VarUuid = None


class AMDOption(ActionOption):
    machine_handle: Annotated[str, one_of("hangup", "continue")] = ""
    async_: VarBool = Field(default=False, alias="async")


class ExternalMediaStartOption(ActionOption):
    external_host: VarStr = ""
    encapsulation: VarStr = ""
    transport: VarStr = ""
    transport_data: VarStr = ""
    connection_type: VarStr = ""
    format: VarStr = ""
    direction: Annotated[str, one_of("in", "out", "both")] = ""
    direction_listen: VarStr = ""
    direction_speak: VarStr = ""
    data: VarStr = ""

    def check(self, field: str) -> None:
        host = self.external_host
        require(host != "", f"{field}.external_host", "the external media host (host:port) is required")
        if not is_placeholder(host):
            require(":" in host, f"{field}.external_host", f"expected host:port, got {host!r}")
