"""The composition root: builds one node's parts in order and hands each its collaborators.

settings → secrets, owner (node id + boot id) → database, group-commit writer, encryptor → event bus,
webhooks → call and activeflow records → flow engine → recordings, registrations → SIP call manager →
transcription, summary and AI services (their action handlers join the engine's registry). No module
looks anything up in a shared container: only this module, ``app.py`` (which hands the parts to the
routers as FastAPI dependencies) and the tests see :class:`Node`.

``start_node`` migrates the database, creates the first admin, ends what an earlier boot of this node
left live (each change with its normal event and webhook), reloads registrations and starts SIP.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from dataclasses import dataclass

from voipbin import logsafe, tls
from voipbin.ai.actions import AIConversations, register_ai_actions
from voipbin.ai.calls import AICalls
from voipbin.ai.registry import ModelLocations
from voipbin.ai.session import AIDeps
from voipbin.calls.ai_tools import AIToolPorts
from voipbin.calls.manager import CallManager, SipCallManager, UnavailableCallManager
from voipbin.calls.recordings import Recordings
from voipbin.calls.records import CallRecords
from voipbin.calls.registrations import Registrations
from voipbin.config import PlatformSecrets, Settings, load_or_create_node_id, load_or_create_secrets
from voipbin.events.bus import EventBus
from voipbin.events.stream import EventStream
from voipbin.events.webhooks import RetryPolicy, WebhookDispatcher
from voipbin.flow.engine import FlowEngine
from voipbin.flow.handlers import FlowDeps, core_registry, register_unsupported
from voipbin.flow.records import ActiveflowRecords
from voipbin.media import engine as media_engine
from voipbin.metrics.looplag import LoopLagMonitor
from voipbin.metrics.registry import NodeMetrics
from voipbin.metrics.server import MetricsServer
from voipbin.security import Encryptor, Passwords
from voipbin.speech import configure_inference, validate_speech_defaults
from voipbin.speech.httpclients import close_shared_clients
from voipbin.speech.registry import create_tts
from voipbin.speech.tts import TTS
from voipbin.store.db import Database
from voipbin.store.owner import NodeOwner
from voipbin.store.writer import WriteBehind
from voipbin.tenants import NewCustomer, bootstrap
from voipbin.transcribe.actions import register_transcribe_actions
from voipbin.transcribe.service import TranscribeService
from voipbin.transcribe.summary import SummaryService
from voipbin.transcribe.summary_actions import register_summary_actions

log = logging.getLogger(__name__)
RESTART_DETAIL = "the platform restarted while the call was live (node {node})"


@dataclass
class Node:
    settings: Settings
    secrets: PlatformSecrets
    owner: NodeOwner
    db: Database
    writer: WriteBehind
    encryptor: Encryptor
    passwords: Passwords
    events: EventBus
    webhooks: WebhookDispatcher
    call_records: CallRecords
    activeflows: ActiveflowRecords
    flows: FlowEngine
    recordings: Recordings
    registrations: Registrations
    calls: CallManager
    transcribes: TranscribeService
    summaries: SummaryService
    aicalls: AICalls
    ai: AIConversations
    stream: EventStream
    metrics: NodeMetrics
    loop_lag: LoopLagMonitor
    metrics_server: MetricsServer | None = None


def build_node(settings: Settings) -> Node:
    validate_speech_defaults(settings.default_tts_type, settings.default_stt_type)
    configure_inference(workers=settings.speech_workers, whisper_threads=settings.whisper_threads)
    models = ModelLocations.from_settings(settings)
    secrets = load_or_create_secrets(settings.data_dir)
    owner = NodeOwner(load_or_create_node_id(settings))
    db = Database(settings.effective_database_url)
    encryptor = Encryptor(secrets.encryption_key)
    events = EventBus()
    writer = WriteBehind(db, window=settings.db_commit_window_ms / 1000)
    webhooks = WebhookDispatcher(
        db,
        events,
        encryptor,
        writer,
        node_id=owner.node_id,
        policy=webhook_policy(settings),
        outbound_allow=settings.outbound_allow,
    )
    call_records = CallRecords(db, writer, events, owner, rate_per_minute=settings.call_rate_per_minute)
    activeflows = ActiveflowRecords(db, writer, events, owner)
    registry = core_registry()
    flows = FlowEngine(activeflows, registry, FlowDeps(db, settings, encryptor, call_records))
    recordings = Recordings(db, events, call_records, owner, settings.data_dir / "recordings")
    registrations = Registrations(
        db, encryptor, sip_domain=settings.sip_domain, devcarrier=settings.devcarrier, node_id=owner.node_id
    )

    def tts(voice: str, language: str) -> TTS:
        return create_tts(settings.default_tts_type, voice_id=voice or None, language=language or None)

    calls: CallManager
    if settings.telephony:
        calls = SipCallManager(settings, db, encryptor, call_records, recordings, registrations, flows, tts)
    else:
        calls = UnavailableCallManager(call_records, "telephony is disabled (VOIPBIN_TELEPHONY=false)")
    transcribes = TranscribeService(db, events, flows, owner, stt_type=settings.default_stt_type)
    summaries = SummaryService(
        db,
        events,
        flows,
        transcribes,
        owner,
        engine_model=settings.default_engine_model,
        models=models,
        update_every=settings.summary_update_every,
    )
    register_transcribe_actions(registry, transcribes)
    register_summary_actions(registry, summaries, call_records, calls)
    aicalls = AICalls(db, writer, events, owner)
    ports = AIToolPorts(db, settings, aicalls, call_records, calls)
    ai_deps = AIDeps(
        db,
        settings,
        encryptor,
        models,
        aicalls,
        get_resource=ports.get_resource,
        create_call=ports.create_call,
    )
    ai = register_ai_actions(registry, ai_deps, events)
    register_unsupported(registry)
    metrics = node_metrics(events, call_records, webhooks)
    return Node(
        settings=settings,
        secrets=secrets,
        owner=owner,
        db=db,
        writer=writer,
        encryptor=encryptor,
        passwords=Passwords.from_settings(settings),
        events=events,
        webhooks=webhooks,
        call_records=call_records,
        activeflows=activeflows,
        flows=flows,
        recordings=recordings,
        registrations=registrations,
        calls=calls,
        transcribes=transcribes,
        summaries=summaries,
        aicalls=aicalls,
        ai=ai,
        stream=EventStream(events, buffer=settings.ws_buffer),
        metrics=metrics,
        loop_lag=LoopLagMonitor(metrics.observe_loop_lag),
    )


def node_metrics(events: EventBus, call_records: CallRecords, webhooks: WebhookDispatcher) -> NodeMetrics:
    """This node's metrics (a registry of its own), fed by the bus and read from the parts when scraped."""
    metrics = NodeMetrics()
    events.observe(metrics.on_event)
    live = call_records.live_by_status
    metrics.gauge("voipbin_calls_active", "Calls live on this node now", lambda: {(): sum(live().values())})
    metrics.gauge(
        "voipbin_calls_live", "Calls live on this node, by status",
        lambda: {(k,): v for k, v in live().items()}, labels=("status",),
    )  # fmt: skip
    webhooks.register_metrics(metrics)
    register_media_metrics(metrics)
    return metrics


def register_media_metrics(metrics: NodeMetrics) -> None:
    """The media plane's clock, its loop's lag and GC pauses (``media.engine.media_metrics``)."""
    read = media_engine.media_metrics
    metrics.gauge(
        "voipbin_loop_lag_max_ms", "Largest event-loop lag seen, by loop (control, media)",
        lambda: {(loop,): read()[f"{loop}_loop_lag"]["max_ms"] for loop in ("control", "media")},
        labels=("loop",),
    )  # fmt: skip
    metrics.gauge(
        "voipbin_media_sessions", "RTP sessions on the media clock",
        lambda: {(): read()["media_clock"]["sessions"]},
    )  # fmt: skip
    metrics.counter(
        "voipbin_media_clock_ticks", "Media clock ticks, by kind (all, late, skipped)",
        lambda: {(k,): read()["media_clock"][key] for k, key in
                 (("all", "ticks"), ("late", "late_ticks"), ("skipped", "skipped_ticks"))},
        labels=("kind",),
    )  # fmt: skip
    metrics.gauge(
        "voipbin_gc_pause_max_ms", "Longest garbage-collector pause since start",
        lambda: {(): read()["gc"]["max_ms"]},
    )  # fmt: skip
    metrics.counter(
        "voipbin_gc_pauses_over_20ms", "Collector pauses of 20 ms or more (each stalls the Python threads)",
        lambda: {(): read()["gc"]["over_20ms"]},
    )  # fmt: skip


def webhook_policy(settings: Settings) -> RetryPolicy:
    return RetryPolicy(
        base=settings.webhook_retry_base_s,
        max_delay=settings.webhook_retry_max_s,
        max_age=settings.webhook_max_age_s,
        timeout=settings.webhook_timeout_s,
        failed_retention=settings.webhook_failed_retention_s,
    )


def print_bootstrap(created: NewCustomer) -> None:
    """Shown once, on the first start: the only time these credentials are displayed."""
    print(
        "\n=== voipbin first start: admin account created ===\n"
        f"  username:   {created.agent.username}\n"
        f"  password:   {created.password}\n"
        f"  accesskey:  {created.accesskey}\n"
        f"  customer:   {created.customer.id}\n"
        "Store these now; they are not shown again.\n",
        flush=True,
    )


async def recover(node: Node) -> None:
    """End what an earlier boot of this node left live, with the normal events and webhooks."""
    detail = RESTART_DETAIL.format(node=node.owner.node_id)
    await node.recordings.recover()
    await node.call_records.recover(detail)
    await node.activeflows.recover(detail)
    await node.transcribes.recover()
    await node.summaries.recover()
    await node.aicalls.recover(detail)


async def start_node(node: Node, *, freeze_gc: bool = False) -> None:
    """``freeze_gc``: the node owns the process (``voipbin serve``), see the end."""
    logsafe.install()  # here, after the server has configured its loggers
    await node.db.migrate()
    created = await bootstrap(node.db, node.settings)
    if created is not None:
        print_bootstrap(created)
    await node.webhooks.start()
    node.loop_lag.start()
    if node.settings.metrics_port:
        node.metrics_server = MetricsServer(
            node.metrics.registry, node.settings.metrics_host, node.settings.metrics_port
        )
        await node.metrics_server.start()
    await recover(node)
    await node.registrations.start()
    if isinstance(node.calls, SipCallManager):
        pool = node.calls.media_pool
        if pool is not None:  # /metrics shows the workers' media clocks and loop lag
            media_engine.use_remote_media(pool.metrics)
        try:
            await node.calls.start()
        except OSError as exc:
            why = f"SIP could not listen on port {node.settings.sip_port}: {exc}"
            log.error("%s; calls will fail until this is fixed (VOIPBIN_SIP_PORT)", why)
            node.calls.disable(why)
    # The provider SDKs' shared TLS context, built once here off the loop (not per AI session).
    await asyncio.to_thread(tls.prewarm)
    if freeze_gc:
        await asyncio.to_thread(preload_offline_engines, node.settings)
        # Everything built so far lives as long as the process: keep it out of the collector's full
        # passes, which otherwise walk it on every gen-2 collection (pauses that delay setups and media).
        # tune_process also raises the young threshold and shortens the GIL switch interval so the
        # media thread (voipbin.media.engine) gets the GIL within ~2 ms.
        media_engine.tune_process(
            freeze=True, realtime=node.settings.media_realtime, media_thread=not node.settings.media_process
        )
        media_engine.start_loop_lag_probe()


def preload_offline_engines(settings: Settings) -> None:
    """Load the default offline models now rather than inside the first call that needs them: their
    loading holds the GIL for ~0.5 s, which stalled every live call's audio (bench/media_ai_call.py)."""
    loaders: list[tuple[str, str, str]] = [("voipbin.speech.vad", "silero_session", "Silero VAD")]
    if settings.default_stt_type == "whisper":
        loaders.append(("voipbin.speech.stt_whisper", "whisper_model", "Whisper"))
    if settings.default_tts_type == "piper":
        loaders.append(("voipbin.speech.tts_piper", "piper_voice", "Piper"))
    for module, func, name in loaders:
        try:
            getattr(importlib.import_module(module), func)()
        except Exception as exc:  # not installed / no model: the first call reports it, as before
            log.warning("could not preload %s: %s", name, exc)


async def stop_node(node: Node) -> None:
    """SIGTERM/shutdown: live calls end cleanly (BYE) before the process exits."""
    await node.summaries.close()
    await node.transcribes.close()
    await node.calls.close()
    media_engine.use_remote_media(None)
    await node.ai.close()
    await node.aicalls.close()
    await node.registrations.close()
    await node.webhooks.close()
    await node.stream.close()
    await node.loop_lag.stop()
    if node.metrics_server is not None:
        await node.metrics_server.close()
    await node.flows.close()
    await node.writer.close()
    await close_shared_clients()
    await node.db.close()
