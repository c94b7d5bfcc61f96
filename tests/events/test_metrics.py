"""``/metrics``: Prometheus text from the node's own registry, behind a token or on a port of its own."""

from __future__ import annotations

import asyncio
import uuid

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.api.support import Api
from tests.sip.conftest import free_port
from voipbin.config import Settings
from voipbin.metrics.registry import NodeMetrics
from voipbin.node import build_node, start_node, stop_node

CALL = {
    "source": {"type": "tel", "target": "+15551234567"},
    "destinations": [{"type": "tel", "target": "+15559876543"}],
    "actions": [{"type": "answer"}],
}
TOKEN = "metrics-token-0123456789"


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


async def scrape(api: Api) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    r = await api.anon.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return samples(r.text)


async def test_metrics_need_the_token(api: Api) -> None:
    r = await api.anon.get("/metrics")
    assert r.status_code == 404 and r.json()["error"]["status"] == "NOT_FOUND"  # no token: not served
    api.platform.settings.metrics_token = TOKEN
    assert (await api.anon.get("/metrics")).status_code == 401
    assert (await api.anon.get("/metrics", headers={"Authorization": "Bearer wrong"})).status_code == 401
    # An API access key is not the metrics token.
    assert (await api.admin.client.get("/metrics")).status_code == 401
    assert (
        "voipbin_call_setups_total"
        in (await api.anon.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})).text
    )


async def test_calls_webhooks_loop_lag_ai_and_provider_metrics(api: Api) -> None:
    api.platform.settings.metrics_token = TOKEN
    api.platform.metrics.observe_ai_stage("llm", 0.42)
    api.platform.metrics.observe_ai_stage("tts", 0.08)
    api.platform.metrics.provider_error("openai", "rate_limited")
    await api.admin.client.put("/v1.0/customer", json={"webhook_uri": "http://127.0.0.1:9/unreachable"})
    for _ in range(3):
        assert (await api.admin.client.post("/v1.0/calls", json=CALL)).status_code == 200
    await api.platform.writer.flush()
    await asyncio.sleep(0.6)  # a couple of loop-lag samples; the webhook tries fail (nothing listens)
    s = await scrape(api)
    assert s[("voipbin_call_setups_total", ())] == 3
    assert s[("voipbin_call_status_changes_total", (("status", "dialing"),))] == 3
    assert s[("voipbin_call_status_changes_total", (("status", "hangup"),))] == 3
    assert sum(v for (n, _), v in s.items() if n == "voipbin_calls_ended_total") == 3
    assert s[("voipbin_calls_active", ())] == 0
    assert s[("voipbin_webhook_backlog", ())] >= 9  # 3 events a call, none delivered
    assert s[("voipbin_webhook_attempt_failures_total", ())] >= 1
    assert s[("voipbin_event_loop_lag_seconds_count", (("loop", "control"),))] >= 1
    assert s[("voipbin_ai_turn_stage_seconds_count", (("stage", "llm"),))] == 1
    assert s[("voipbin_ai_turn_stage_seconds_sum", (("stage", "llm"),))] == 0.42
    assert s[("voipbin_provider_errors_total", (("kind", "rate_limited"), ("provider", "openai")))] == 1


async def test_rtp_statistics_at_call_end(api: Api) -> None:
    api.platform.settings.metrics_token = TOKEN
    rtp = {"packets_in": 500, "packets_out": 490, "lost": 7, "jitter_ms": 3.5, "max_gap_ms": 45.0,
           "late_ticks": 2, "skipped_ticks": 1}  # fmt: skip
    api.platform.events.publish(
        api.admin.created.customer.id,
        "call_hangup",
        lambda: {"id": "c1", "hangup_reason": "normal", "metadata": {"rtp": rtp}},
    )
    s = await scrape(api)
    assert s[("voipbin_rtp_packets_total", (("direction", "in"),))] == 500
    assert s[("voipbin_rtp_lost_packets_total", ())] == 7
    assert s[("voipbin_rtp_jitter_ms_sum", ())] == 3.5
    assert s[("voipbin_rtp_max_gap_ms_bucket", (("le", "60.0"),))] == 1
    assert s[("voipbin_rtp_playout_ticks_missed_total", (("kind", "late"),))] == 2
    assert s[("voipbin_calls_ended_total", (("reason", "normal"),))] == 1


def test_nodes_in_one_process_have_their_own_metrics() -> None:
    a, b = NodeMetrics(), NodeMetrics()
    a.provider_error("deepgram")
    assert b"voipbin_provider_errors_total" in a.render()
    assert 'provider="deepgram"' not in b.render().decode()


async def test_metrics_on_their_own_port(tmp_path, database_url: str) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    node = build_node(
        Settings(data_dir=tmp_path / "var", database_url=database_url, telephony=False, metrics_port=port,
                 admin_password="admin-password-1")
    )  # fmt: skip
    await start_node(node)
    try:
        async with httpx.AsyncClient() as client:
            r = await client.get(f"http://127.0.0.1:{port}/metrics")
        assert r.status_code == 200 and "voipbin_calls_active" in r.text
    finally:
        await stop_node(node)


def test_an_assistant_message_feeds_the_ai_stage_histograms_and_provider_errors() -> None:
    """An aicall's assistant message carries its turn's timings and provider errors (``turn_record``)."""
    m = NodeMetrics()
    turn = {
        "stt_final_ms": 120,
        "llm_first_token_ms": 480,
        "tts_first_audio_ms": 690,
        "first_audio_out_ms": 700,
        "errors": ["openai.gpt-4o-mini: 429 Too Many Requests", "tts elevenlabs: 401"],
    }
    m.on_event(uuid.uuid4(), "aimessage_created", lambda: {"role": "assistant", "turn": turn})
    m.on_event(uuid.uuid4(), "aimessage_created", {"role": "user", "content": "hi"})  # no turn: ignored
    s = samples(m.render().decode())
    stage = "voipbin_ai_turn_stage_seconds"
    assert s[(f"{stage}_count", (("stage", "llm_first_token"),))] == 1
    assert abs(s[(f"{stage}_sum", (("stage", "llm_first_token"),))] - 0.48) < 1e-9
    assert s[(f"{stage}_sum", (("stage", "first_audio_out"),))] == 0.7
    assert s[("voipbin_provider_errors_total", (("kind", "llm"), ("provider", "openai")))] == 1
    assert s[("voipbin_provider_errors_total", (("kind", "tts"), ("provider", "elevenlabs")))] == 1


async def test_media_plane_metrics_are_exported(api: Api) -> None:
    api.platform.settings.metrics_token = TOKEN
    s = await scrape(api)
    names = {name for name, _ in s}
    assert ("voipbin_loop_lag_max_ms", (("loop", "media"),)) in s
    assert ("voipbin_loop_lag_max_ms", (("loop", "control"),)) in s
    assert s[("voipbin_media_sessions", ())] >= 0
    assert any(n.startswith("voipbin_media_clock_ticks") for n in names), names
    assert any(n.startswith("voipbin_gc_pauses_over_20ms") for n in names), names
