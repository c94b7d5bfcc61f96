"""Options of non-call messaging actions: message_send (SMS), email_send, conversation_send, case_create."""

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from voipbin.models.action_options.base import ActionOption, require
from voipbin.models.action_options.fields import VarBool, VarStr, VarUuid, has_placeholder, one_of
from voipbin.models.address import TEL_RE, Address


class MessageSendOption(ActionOption):
    source: Address | None = None
    destinations: list[Address] = Field(default_factory=list)
    text: VarStr = ""

    def check(self, field: str) -> None:
        require(len(self.destinations) > 0, f"{field}.destinations", "expected at least one destination")
        for index, dest in enumerate(self.destinations):
            path = f"{field}.destinations[{index}]"
            require(dest.type in ("tel", "") or has_placeholder(dest.type), f"{path}.type", "expected 'tel'")
            ok = has_placeholder(dest.target) or TEL_RE.match(dest.target) is not None
            require(
                ok, f"{path}.target", f"expected an E.164 number such as +15551234567, got {dest.target!r}"
            )


class EmailAttachment(BaseModel):
    model_config = ConfigDict(extra="ignore")

    reference_type: Annotated[str, one_of("recording")] = "recording"
    reference_id: VarUuid = None


class EmailSendOption(ActionOption):
    destinations: list[Address] = Field(default_factory=list)
    subject: VarStr = ""
    content: VarStr = ""
    attachments: list[EmailAttachment] = Field(default_factory=list)

    def check(self, field: str) -> None:
        require(len(self.destinations) > 0, f"{field}.destinations", "expected at least one destination")
        for index, dest in enumerate(self.destinations):
            path = f"{field}.destinations[{index}]"
            require(dest.type == "email" or has_placeholder(dest.type), f"{path}.type", "expected 'email'")
            ok = has_placeholder(dest.target) or "@" in dest.target
            require(ok, f"{path}.target", f"expected an email address, got {dest.target!r}")


class ConversationSendOption(ActionOption):
    conversation_id: VarUuid = None
    text: VarStr = ""
    sync: VarBool = False


class CaseCreateOption(ActionOption):
    name: VarStr = ""
    detail: VarStr = ""
    note: VarStr = ""
    sync: VarBool = False
