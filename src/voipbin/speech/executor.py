"""One bounded thread pool for CPU-heavy speech inference (Piper, Whisper).

Keeping inference off the event loop is a design rule; bounding it keeps a burst of calls from
oversubscribing the CPU (onnxruntime and CTranslate2 release the GIL, so threads do run in parallel).

The pool and the Whisper model are process-wide (every engine the registry creates shares them), so
their CPU budget is set once per process with :func:`configure_inference`, from the node's
``Settings.speech_workers`` / ``Settings.whisper_threads``, by the composition root (or the
test-phone CLI). Unconfigured, the budget is those settings' defaults: one worker per CPU, 2 Whisper
threads.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")

DEFAULT_WHISPER_THREADS = 2

_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_pool_workers = 0  # the running pool's size
_workers = 0  # 0: the number of CPUs
_whisper_threads = DEFAULT_WHISPER_THREADS


def _pool_size(workers: int) -> int:
    return workers or max(1, os.cpu_count() or 1)


def configure_inference(*, workers: int = 0, whisper_threads: int = DEFAULT_WHISPER_THREADS) -> None:
    """Set the process's speech inference budget.

    ``workers``: threads of the shared pool (0: the number of CPUs). A pool of another size that is
    already running is replaced; work already handed to it still completes. ``whisper_threads``:
    threads per Whisper inference, applied when the Whisper model is (re)loaded.
    """
    global _pool, _workers, _whisper_threads
    if workers < 0:
        raise ValueError(f"speech workers must be >= 0 (0: one per CPU), not {workers}")
    if whisper_threads < 1:
        raise ValueError(f"whisper threads must be >= 1, not {whisper_threads}")
    with _lock:
        _workers, _whisper_threads = workers, whisper_threads
        old = _pool
        if old is not None and _pool_workers != _pool_size(workers):
            _pool = None
            old.shutdown(wait=False)


def whisper_threads() -> int:
    """Threads per Whisper inference (see :func:`configure_inference`)."""
    return _whisper_threads


def inference_workers() -> int:
    """Threads the shared pool has (or will have when first used)."""
    with _lock:
        return _pool_workers if _pool is not None else _pool_size(_workers)


def inference_pool() -> ThreadPoolExecutor:
    global _pool, _pool_workers
    with _lock:
        if _pool is None:
            _pool_workers = _pool_size(_workers)
            _pool = ThreadPoolExecutor(max_workers=_pool_workers, thread_name_prefix="speech-infer")
        return _pool


async def run_inference(fn: Callable[..., T], *args: Any) -> T:
    """Run ``fn(*args)`` on the shared inference pool and await the result."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(inference_pool(), fn, *args)
