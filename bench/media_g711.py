"""G.711 per-frame cost: voipbin.media.g711 (numpy tables) vs stdlib audioop, side by side.

    .venv/bin/python bench/media_g711.py

One 20 ms frame (160 samples) per call, the size the session clock handles, plus one 1 s block
to show the per-call overhead amortised. Prints microseconds per call and ours/audioop ratios.
"""

from __future__ import annotations

import timeit
import warnings

import numpy as np

from voipbin.media import g711

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop


def per_call_us(fn, number: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=5)) / number * 1e6


def compare(samples: int, number: int) -> None:
    rng = np.random.default_rng(711)
    pcm = rng.integers(-20000, 20000, samples, dtype=np.int16).tobytes()
    ulaw = audioop.lin2ulaw(pcm, 2)
    alaw = audioop.lin2alaw(pcm, 2)
    mu, a = g711.G711Codec(g711.PT_PCMU), g711.G711Codec(g711.PT_PCMA)
    rows = [
        ("PCMU encode", lambda: mu.encode(pcm), lambda: audioop.lin2ulaw(pcm, 2)),
        ("PCMU decode", lambda: mu.decode(ulaw), lambda: audioop.ulaw2lin(ulaw, 2)),
        ("PCMA encode", lambda: a.encode(pcm), lambda: audioop.lin2alaw(pcm, 2)),
        ("PCMA decode", lambda: a.decode(alaw), lambda: audioop.alaw2lin(alaw, 2)),
    ]
    print(f"# {samples} samples per call ({samples / 8:.0f} ms)")
    print(f"{'op':<12} {'voipbin us':>11} {'audioop us':>11} {'ratio':>6}")
    for name, ours, ref in rows:
        assert ours() == ref()
        t_ours, t_ref = per_call_us(ours, number), per_call_us(ref, number)
        print(f"{name:<12} {t_ours:>11.2f} {t_ref:>11.2f} {t_ours / t_ref:>6.2f}")


def main() -> None:
    compare(160, 20000)
    compare(8000, 500)


if __name__ == "__main__":
    main()
