"""Activeflow engine: executor, variables/substitution, one handler module per action family.

The composition root builds a :class:`FlowEngine` with its collaborators; the call manager starts a
call's flow with ``FlowEngine.start_call`` and stops it centrally when the call ends. A call is driven
through the ``CallControl`` protocol (``flow.interfaces``), which this package owns.
"""

from voipbin.flow.engine import FlowEngine
from voipbin.flow.interfaces import CallControl, CallHungUp, RecordingRequest
from voipbin.flow.records import ActiveflowRecords, activeflow_to_api

__all__ = [
    "ActiveflowRecords",
    "CallControl",
    "CallHungUp",
    "FlowEngine",
    "RecordingRequest",
    "activeflow_to_api",
]
