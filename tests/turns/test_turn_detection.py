"""Turn detection on the labelled set (tests/turns/labelled_set.py): which turns end, which are cut.

Behaviour only: the model's answer is delivered after a fixed simulated 100 ms, so the machine's
speed does not change the outcome. Speed and rates are printed by bench/turn_detection.py.
"""

from __future__ import annotations

import pytest

from tests.turns.labelled_set import Item, load_set
from tests.turns.replay import CONFIGS, replay
from voipbin.speech.turn_detector import TurnConfig
from voipbin.speech.turn_model import model_available

pytestmark = pytest.mark.skipif(not model_available(), reason="pipecat-ai wheel (Smart Turn) not installed")


@pytest.fixture(scope="module")
def items() -> list[Item]:
    return load_set()


@pytest.fixture(scope="module")
def outcomes(items: list[Item]) -> dict[str, dict[str, object]]:
    cache: dict[tuple[str, int], float] = {}
    return {
        name: {it.spec.id: replay(it, cfg, probability=cache) for it in items}
        for name, cfg in CONFIGS.items()
    }


def _cut_rate(items: list[Item], results: dict[str, object]) -> float:
    unfinished = [it for it in items if not it.complete_only]
    return sum(results[it.spec.id].cut_off for it in unfinished) / len(unfinished)  # type: ignore[attr-defined]


def test_every_turn_ends_after_the_caller_finishes(items, outcomes) -> None:
    for it in items:
        out = outcomes["+ adaptive wait (default)"][it.spec.id]
        assert out.ended_at is not None, it.spec.id
        assert out.ended_at <= it.speech_end + 2.3, (it.spec.id, out)


def test_combined_detector_cuts_off_far_fewer_unfinished_turns(items, outcomes) -> None:
    default = _cut_rate(items, outcomes["+ adaptive wait (default)"])
    audio_only = _cut_rate(items, outcomes["audio model alone"])
    fixed = _cut_rate(items, outcomes["silence 0.5 s (old offline STT)"])
    assert default <= 0.25 and default < audio_only / 2 and default < fixed / 2, (default, audio_only, fixed)


@pytest.mark.parametrize(
    "item_id", ["i01", "i02", "i04", "i06", "i09", "i12", "i13", "i14", "i18", "i23", "i24"]
)
def test_lexically_unfinished_pauses_do_not_end_the_turn(items, outcomes, item_id) -> None:
    """A trailing "and"/"because"/"the", or a phone/zip/account number still short of its digits."""
    out = outcomes["+ adaptive wait (default)"][item_id]
    assert not out.cut_off, out


@pytest.mark.parametrize("item_id", ["c01", "c02", "c07", "c09", "c12", "c15", "c17", "c19", "c20", "c23"])
def test_complete_turns_end_within_a_quarter_second(items, outcomes, item_id) -> None:
    """Clear, complete sentences end at the model's first confident answer (simulated 100 ms)."""
    out = outcomes["+ adaptive wait (default)"][item_id]
    assert out.delay is not None and out.delay <= 0.25, out


def test_fixed_silence_never_ends_a_turn_before_its_wait(items, outcomes) -> None:
    for it in items:
        out = outcomes["silence 0.5 s (old offline STT)"][it.spec.id]
        assert out.delay is None or out.delay >= 0.45, out


def test_without_the_model_words_still_hold_unfinished_turns(items) -> None:
    words_only = TurnConfig(use_audio_model=False, adaptive=False, stop_secs=0.2)
    by_id = {it.spec.id: it for it in items}
    for item_id in ("i01", "i02", "i04", "i12"):
        assert not replay(by_id[item_id], words_only).cut_off, item_id
