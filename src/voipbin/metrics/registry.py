"""One node's Prometheus metrics, on a registry of its own (several nodes in one process, as in the tests,
never share or clash), exposed by ``/metrics``.

What is counted where:

* calls: setups (``voipbin_call_setups_total``; ``rate()`` gives setups/s), status changes and ends by
  reason are counted from the event bus (:meth:`NodeMetrics.on_event`, which never serializes an
  event except ``call_hangup``, once per call, for its RTP statistics); calls live now, by status, are
  read from the call records when scraped (:meth:`NodeMetrics.gauge`).
* RTP at call end (``metadata.rtp``): packets, lost packets, late/skipped playout ticks; jitter and the
  longest gap as per-call histograms.
* event-loop lag (``looplag.LoopLagMonitor``; ``loop`` label: ``control``, other loops may report too).
* AI turn latency per stage (:meth:`observe_ai_stage`), provider errors (:meth:`provider_error`).
* webhooks: backlog, deliveries, failed tries and deliveries given up on (read from the dispatcher).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

# (histogram label, turn field): each stage's time from the caller's speech end.
AI_STAGES = (
    ("stt_final", "stt_final_ms"),
    ("llm_first_token", "llm_first_token_ms"),
    ("tts_first_audio", "tts_first_audio_ms"),
    ("first_audio_out", "first_audio_out_ms"),
)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LatencyBuckets = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)
LagBuckets = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0)
MsBuckets = (1, 2, 5, 10, 20, 40, 60, 100, 200, 500, 1000, 5000)

Values = Callable[[], dict[tuple[str, ...], float]]


class _Callbacks(Collector):
    """Metrics read from the node's parts at scrape time (no bookkeeping on the hot path)."""

    def __init__(self) -> None:
        self.sources: list[tuple[str, str, str, tuple[str, ...], Values]] = []

    def collect(self) -> Iterator[Metric]:
        for kind, name, doc, labels, values in self.sources:
            family: GaugeMetricFamily | CounterMetricFamily = (
                GaugeMetricFamily(name, doc, labels=list(labels))
                if kind == "gauge"
                else CounterMetricFamily(name, doc, labels=list(labels))
            )
            for key, value in values().items():
                family.add_metric(list(key), value)
            yield family


class NodeMetrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.call_setups = Counter("voipbin_call_setups", "Calls created on this node", registry=r)
        self.call_status = Counter(
            "voipbin_call_status_changes", "Call status changes, by new status", ["status"], registry=r
        )
        self.calls_ended = Counter("voipbin_calls_ended", "Calls hung up, by reason", ["reason"], registry=r)
        self.rtp_packets = Counter(
            "voipbin_rtp_packets", "RTP packets of ended calls", ["direction"], registry=r
        )
        self.rtp_lost = Counter("voipbin_rtp_lost_packets", "RTP packets lost (ended calls)", registry=r)
        self.rtp_ticks = Counter(
            "voipbin_rtp_playout_ticks_missed", "Playout ticks late or skipped (ended calls)", ["kind"],
            registry=r,
        )  # fmt: skip
        self.rtp_jitter = Histogram(
            "voipbin_rtp_jitter_ms", "Interarrival jitter per ended call (ms)", buckets=MsBuckets, registry=r
        )
        self.rtp_max_gap = Histogram(
            "voipbin_rtp_max_gap_ms", "Longest gap in received RTP per ended call (ms)", buckets=MsBuckets,
            registry=r,
        )  # fmt: skip
        self.loop_lag = Histogram(
            "voipbin_event_loop_lag_seconds", "How late the loop ran a timer", ["loop"], buckets=LagBuckets,
            registry=r,
        )  # fmt: skip
        self.loop_lag_max = Gauge(
            "voipbin_event_loop_lag_max_seconds",
            "Largest loop lag of the last interval",
            ["loop"],
            registry=r,
        )
        self.ai_stage = Histogram(
            "voipbin_ai_turn_stage_seconds", "AI turn latency per stage (stt, llm, tts, turn...)", ["stage"],
            buckets=LatencyBuckets, registry=r,
        )  # fmt: skip
        self.provider_errors = Counter(
            "voipbin_provider_errors", "Errors from AI/speech providers", ["provider", "kind"], registry=r
        )
        self._callbacks = _Callbacks()
        r.register(self._callbacks)

    # -- functions other parts call ------------------------------------------------------------------
    def observe_ai_stage(self, stage: str, seconds: float) -> None:
        self.ai_stage.labels(stage).observe(seconds)

    def provider_error(self, provider: str, kind: str = "error") -> None:
        self.provider_errors.labels(provider, kind).inc()

    def observe_loop_lag(self, loop: str, lag: float, interval_max: float | None = None) -> None:
        self.loop_lag.labels(loop).observe(lag)
        if interval_max is not None:
            self.loop_lag_max.labels(loop).set(interval_max)

    def gauge(self, name: str, doc: str, values: Values, labels: tuple[str, ...] = ()) -> None:
        """A gauge read by ``values()`` at scrape time (``{label values: value}``)."""
        self._callbacks.sources.append(("gauge", name, doc, labels, values))

    def counter(self, name: str, doc: str, values: Values, labels: tuple[str, ...] = ()) -> None:
        """A counter kept elsewhere (a plain int attribute), read at scrape time."""
        self._callbacks.sources.append(("counter", name, doc, labels, values))

    # -- the event bus's observer --------------------------------------------------------------------
    def on_event(self, customer_id: uuid.UUID, type_: str, data: Any) -> None:
        if type_ == "aimessage_created":
            self._ai_message(data() if callable(data) else data)
            return
        if not type_.startswith("call_"):
            return
        status = type_[5:]
        if status == "created":
            self.call_setups.inc()
        elif status not in ("updated", "deleted"):
            self.call_status.labels(status).inc()
        if status == "hangup":
            self._call_ended(data() if callable(data) else data)

    def _ai_message(self, message: dict[str, Any]) -> None:
        """An assistant message carries its turn's timings (ms from the caller's speech end) and the
        provider errors met on the way (``ai/session/pipeline.turn_record``)."""
        turn = message.get("turn")
        if message.get("role") != "assistant" or not isinstance(turn, dict):
            return
        for stage, key in AI_STAGES:
            ms = turn.get(key)
            if isinstance(ms, int | float) and ms >= 0:
                self.observe_ai_stage(stage, ms / 1000)
        for error in turn.get("errors") or ():  # "openai.gpt-4o: ..." (LLM) or "tts elevenlabs: ..." (TTS)
            text = str(error)
            kind, text = ("tts", text[4:]) if text.startswith("tts ") else ("llm", text)
            self.provider_error(text.split(":", 1)[0].split(".", 1)[0].strip() or "unknown", kind)

    def _call_ended(self, call: dict[str, Any]) -> None:
        self.calls_ended.labels(str(call.get("hangup_reason") or "unknown")).inc()
        rtp = (call.get("metadata") or {}).get("rtp")
        if not isinstance(rtp, dict):
            return
        self.rtp_packets.labels("in").inc(max(0, int(rtp.get("packets_in", 0))))
        self.rtp_packets.labels("out").inc(max(0, int(rtp.get("packets_out", 0))))
        self.rtp_lost.inc(max(0, int(rtp.get("lost", 0))))
        self.rtp_ticks.labels("late").inc(max(0, int(rtp.get("late_ticks", 0))))
        self.rtp_ticks.labels("skipped").inc(max(0, int(rtp.get("skipped_ticks", 0))))
        if int(rtp.get("packets_in", 0)) > 0:
            self.rtp_jitter.observe(float(rtp.get("jitter_ms", 0.0)))
            self.rtp_max_gap.observe(float(rtp.get("max_gap_ms", 0.0)))

    def render(self) -> bytes:
        return generate_latest(self.registry)
