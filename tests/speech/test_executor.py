"""The shared inference budget is set by the caller (the composition root), not read from the environment."""

from __future__ import annotations

import os

import pytest

from voipbin.speech import executor


@pytest.fixture
def restore_budget():
    yield
    executor.configure_inference()  # back to the Settings defaults for the rest of the run


async def test_configure_sets_pool_size_and_whisper_threads(restore_budget, monkeypatch):
    monkeypatch.setenv("VOIPBIN_SPEECH_WORKERS", "7")  # ignored: only the configured value counts
    monkeypatch.setenv("VOIPBIN_WHISPER_THREADS", "9")
    executor.configure_inference(workers=3, whisper_threads=4)
    pool = executor.inference_pool()
    assert pool._max_workers == 3 and executor.whisper_threads() == 4
    assert await executor.run_inference(sum, [1, 2, 3]) == 6
    executor.configure_inference(workers=3, whisper_threads=1)
    assert executor.inference_pool() is pool  # same size: the running pool is kept
    executor.configure_inference(workers=2)
    replaced = executor.inference_pool()
    assert replaced is not pool and replaced._max_workers == 2
    assert executor.whisper_threads() == executor.DEFAULT_WHISPER_THREADS
    assert await executor.run_inference(max, 4, 5) == 5


def test_defaults_are_one_worker_per_cpu(restore_budget):
    executor.configure_inference(workers=0)
    assert executor.inference_pool()._max_workers == max(1, os.cpu_count() or 1)


@pytest.mark.parametrize(("workers", "threads"), [(-1, 2), (0, 0)])
def test_bad_budget_is_refused(workers, threads):
    with pytest.raises(ValueError):
        executor.configure_inference(workers=workers, whisper_threads=threads)
