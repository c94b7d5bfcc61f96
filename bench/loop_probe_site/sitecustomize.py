"""Put this directory on PYTHONPATH (with VOIPBIN_BENCH_LOOP_PROBE set) to load bench/loop_probe.py."""

import os
import sys

sys.path.append(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import loop_probe

loop_probe.install()
