"""Options of actions that create or join call legs: connect, call, queue/conference/confbridge join.

Destinations of connect/call must be diallable (``validate_dial_address``). ``call.actions`` is kept
as the raw list here; ``validate_actions`` validates it recursively (the option model cannot import
``Action`` without a cycle) and the flow engine validates it again when it creates the new call.
"""

from typing import Any

from pydantic import Field

from voipbin.models.action_options.base import ActionOption, require
from voipbin.models.action_options.fields import Anonymous, VarBool, VarUuid
from voipbin.models.address import Address, validate_dial_address


class _Dial(ActionOption):
    source: Address | None = None
    destinations: list[Address] = Field(default_factory=list)
    anonymous: Anonymous = ""

    def check(self, field: str) -> None:
        require(len(self.destinations) > 0, f"{field}.destinations", "expected at least one destination")
        for index, destination in enumerate(self.destinations):
            validate_dial_address(destination, f"{field}.destinations[{index}]")


class ConnectOption(_Dial):
    early_media: VarBool = False
    relay_reason: VarBool = False


class CallOption(_Dial):
    flow_id: VarUuid = None
    actions: list[Any] | None = None
    chained: VarBool = False
    early_execution: VarBool = False


class QueueJoinOption(ActionOption):
    queue_id: VarUuid = None

    def check(self, field: str) -> None:
        require(self.queue_id is not None, f"{field}.queue_id", "the queue id is required")


class ConferenceJoinOption(ActionOption):
    conference_id: VarUuid = None

    def check(self, field: str) -> None:
        require(self.conference_id is not None, f"{field}.conference_id", "the conference id is required")


class ConfbridgeJoinOption(ActionOption):
    confbridge_id: VarUuid = None

    def check(self, field: str) -> None:
        require(self.confbridge_id is not None, f"{field}.confbridge_id", "the confbridge id is required")
