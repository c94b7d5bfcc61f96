"""Activeflow engine: executor, variables/substitution, one handler module per action family.

Entry points for the call manager: ``start_call_flow``, ``stop_flow`` (and ``wait_flow``); the API uses
``get_engine(platform)``. A call is driven through the ``CallControl`` protocol (``flow.interfaces``).
"""

from voipbin.flow.engine import (
    FlowEngine,
    activeflow_to_api,
    get_engine,
    start_call_flow,
    stop_flow,
    wait_flow,
)
from voipbin.flow.interfaces import CallControl, CallHungUp, RecordingRequest

__all__ = [
    "CallControl",
    "CallHungUp",
    "FlowEngine",
    "RecordingRequest",
    "activeflow_to_api",
    "get_engine",
    "start_call_flow",
    "stop_flow",
    "wait_flow",
]
