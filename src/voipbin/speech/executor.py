"""One bounded thread pool for CPU-heavy speech inference (Piper, Whisper).

Keeping inference off the event loop is a design rule; bounding it keeps a burst of calls from
oversubscribing the CPU (onnxruntime and CTranslate2 release the GIL, so threads do run in parallel).
Size comes from ``VOIPBIN_SPEECH_WORKERS`` (default: number of CPUs, at least 1).
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")

_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None


def inference_pool() -> ThreadPoolExecutor:
    global _pool
    with _lock:
        if _pool is None:
            workers = int(os.environ.get("VOIPBIN_SPEECH_WORKERS") or 0) or max(1, os.cpu_count() or 1)
            _pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="speech-infer")
        return _pool


async def run_inference(fn: Callable[..., T], *args: Any) -> T:
    """Run ``fn(*args)`` on the shared inference pool and await the result."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(inference_pool(), fn, *args)
