"""VoIPBIN's call status machine (pure functions, no I/O).

dialing → ringing | progressing | terminating | canceling | hangup
ringing → progressing | terminating | canceling | hangup
progressing → terminating | hangup;  terminating → hangup;  canceling → hangup;  hangup is final.
"""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    DIALING = "dialing"
    RINGING = "ringing"
    PROGRESSING = "progressing"
    TERMINATING = "terminating"
    CANCELING = "canceling"
    HANGUP = "hangup"


class HangupReason(StrEnum):
    NONE = ""
    NORMAL = "normal"
    FAILED = "failed"
    BUSY = "busy"
    CANCEL = "cancel"
    TIMEOUT = "timeout"
    NOANSWER = "noanswer"
    DIALOUT = "dialout"
    AMD = "amd"


_NEXT: dict[Status, frozenset[Status]] = {
    Status.DIALING: frozenset(
        {Status.RINGING, Status.PROGRESSING, Status.TERMINATING, Status.CANCELING, Status.HANGUP}
    ),
    Status.RINGING: frozenset({Status.PROGRESSING, Status.TERMINATING, Status.CANCELING, Status.HANGUP}),
    Status.PROGRESSING: frozenset({Status.TERMINATING, Status.HANGUP}),
    Status.TERMINATING: frozenset({Status.HANGUP}),
    Status.CANCELING: frozenset({Status.HANGUP}),
    Status.HANGUP: frozenset(),
}


def can_transition(current: str, new: str) -> bool:
    return Status(new) in _NEXT[Status(current)]


def local_hangup_status(current: str, direction: str) -> Status:
    """Which status a locally requested hangup moves to."""
    if direction == "outgoing" and current in (Status.DIALING, Status.RINGING):
        return Status.CANCELING
    return Status.TERMINATING


def hangup_by(last_status: str) -> str:
    return "local" if last_status in (Status.TERMINATING, Status.CANCELING) else "remote"


def reason_for_sip_failure(status_before: str, sip_code: int | None) -> HangupReason:
    """Map a failed outgoing leg to VoIPBIN's reason (busy, noanswer, cancel, dialout, failed)."""
    if status_before == Status.CANCELING:
        return HangupReason.CANCEL
    if sip_code in (486, 600):
        return HangupReason.BUSY
    if sip_code in (408, 480, 603):
        return HangupReason.NOANSWER
    if sip_code == 487:
        return HangupReason.CANCEL
    return HangupReason.FAILED
