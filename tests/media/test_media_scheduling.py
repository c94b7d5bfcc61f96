"""voipbin serve's scheduling of the media plane (``tune_process``), checked in a child process: it
changes process-wide state (GC, switch interval, thread policies) that a test process must keep."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

CHILD = r"""
import json, os, threading
from voipbin.media import recorder
from voipbin.media.engine import MediaEngine, tune_process

realtime = os.environ["RT"] == "1"
tune_process(freeze=False, realtime=realtime)
eng = MediaEngine.default()
out = {"control": os.sched_getscheduler(0) & ~os.SCHED_RESET_ON_FORK, "media": eng.scheduling}
seen = {}
def child():
    seen["policy"] = os.sched_getscheduler(0)
    seen["nice"] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
t = threading.Thread(target=child); t.start(); t.join()
out["child"] = seen
out["writer"] = recorder._WRITER.submit(lambda: os.sched_getscheduler(0) & ~os.SCHED_RESET_ON_FORK).result(10)
comm = open(f"/proc/self/task/{eng._thread.native_id}/comm").read().strip()
out["comm"] = comm
eng.close()
print(json.dumps(out))
"""


def run_child(realtime: bool) -> dict:
    env = dict(os.environ, RT="1" if realtime else "0")
    proc = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def rt_allowed() -> bool:
    """Whether this host lets a process take SCHED_RR 2 (root with CAP_SYS_NICE, or RLIMIT_RTPRIO)."""
    probe = "import os; os.sched_setscheduler(0, os.SCHED_RR, os.sched_param(2))"
    return subprocess.run([sys.executable, "-c", probe], capture_output=True, timeout=30).returncode == 0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="thread scheduling is Linux-specific")
def test_realtime_media_and_control_threads_children_stay_ordinary() -> None:
    out = run_child(realtime=True)
    assert out["comm"] == "voipbin-media"
    if not rt_allowed():  # no CAP_SYS_NICE / RLIMIT_RTPRIO: the nice fallback, nothing real-time
        assert out["control"] == os.SCHED_OTHER and not out["media"].startswith("rr")
        return
    assert out["control"] == os.SCHED_RR
    assert out["media"] == "rr:2"
    assert out["writer"] == os.SCHED_RR  # the recorder writer holds the GIL for the control side
    # Threads the control thread starts later (database, inference pools) are not real-time.
    assert out["child"]["policy"] == os.SCHED_OTHER
    assert out["child"]["nice"] >= 0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="thread scheduling is Linux-specific")
def test_realtime_off_keeps_ordinary_scheduling() -> None:
    out = run_child(realtime=False)
    assert out["control"] == os.SCHED_OTHER and out["writer"] == os.SCHED_OTHER
    assert not out["media"].startswith("rr")
