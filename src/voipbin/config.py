"""Settings: every option is a ``VOIPBIN_*`` environment variable (see docs/configuration.md).

Secrets the platform needs for itself (JWT signing key, at-rest encryption key) are not settings:
they are generated on first run and persisted under the data directory, so a fresh install needs
no configuration at all.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VOIPBIN_", extra="ignore")

    http_host: str = "0.0.0.0"
    http_port: int = 8080
    data_dir: Path = Path("./var")
    database_url: str = ""  # empty -> sqlite file under data_dir
    redis_url: str = ""

    sip_host: str = "0.0.0.0"
    sip_port: int = 5060
    # Address written into SDP/Contact; empty -> derived from sip_host (127.0.0.1 when 0.0.0.0).
    sip_public_host: str = ""
    # IPv6 address SIP also listens on (same port): "auto" = "::" when sip_host is 0.0.0.0, "::1" when
    # it is a 127.x address, else none (and none when the host has no IPv6); "off" = IPv4 only.
    sip_host6: str = "auto"
    # Address for IPv6 peers in SDP/Contact; empty -> derived from sip_host6 (::1 when ::).
    sip_public_host6: str = ""
    sip_domain: str = "voipbin.local"
    # Development carrier: phones may REGISTER an E.164 number as their user and receive `tel` calls
    # when no trunk route matches. "loopback" (only local phones), "any", or "off".
    devcarrier: Literal["loopback", "any", "off"] = "loopback"
    # Run the SIP/RTP side in `voipbin serve` (off: the API only; calls then fail with a clear reason).
    telephony: bool = True
    rtp_port_min: int = 20000
    rtp_port_max: int = 20999
    # `voipbin serve`: media and control threads SCHED_RR when the OS allows (media/engine.py).
    media_realtime: bool = True
    # RTP in worker processes of their own (media/worker.py: each its own GIL); off: a thread of this one.
    media_process: bool = True
    # How many media workers at most (0: one per core, up to 4); each starts when the others are busy.
    media_workers: int = Field(default=0, ge=0, le=64)

    admin_username: str = "admin"
    admin_password: str = ""  # empty -> generated and printed once on first start
    # Argon2id cost of agent password hashes (RFC 9106 low-memory profile by default). Raising it
    # upgrades each agent's hash at its next login; lowering it below OWASP's minimum (19 MiB, t=2) is
    # only for test suites.
    password_hash_time_cost: int = Field(default=3, ge=1)
    password_hash_memory_kib: int = Field(default=65536, ge=8)
    password_hash_parallelism: int = Field(default=4, ge=1)

    # Development credit given to every new billing account, in micros (1 USD = 1_000_000).
    initial_balance: int = 100_000_000
    # Comma separated E.164 numbers offered by /available_numbers.
    number_inventory: str = Field(
        default="+15551234567,+15559876543,+15551111111,+15552222222,+15553333333,+15554444444"
    )
    number_price: int = 5_000_000  # micros charged when a number is bought
    call_rate_per_minute: int = 10_000  # micros per started minute of an outgoing tel call

    # Directories `play` may read local files from (os.pathsep separated); empty -> <data_dir>/media.
    flow_media_dirs: str = ""
    # SSRF guard: CIDRs and host names (comma separated; ".example.com" allows subdomains) that customer
    # URLs (webhooks, fetch, play, external media) may reach besides public addresses. Empty: public only.
    outbound_allow: str = ""
    dial_timeout: float = 60.0
    max_call_duration: float = 3600.0
    login_max_failures: int = 5  # failed logins per client address per window before 429
    login_window_seconds: int = 300

    default_engine_model: str = "offline.scripted"
    default_tts_type: str = "piper"
    default_stt_type: str = "whisper"
    # Where the optional llama.cpp engine finds `<name>.gguf` files; empty -> <data_dir>/models.
    llama_model_dir: str = ""
    # The Gemma 3 270M file for `offline.gemma3-270m` / `llama.gemma3-270m`; empty -> looked up in
    # llama_model_dir like any other model.
    llama_model_path: str = ""
    # Threads of the shared speech inference pool (Piper, Whisper); 0 -> the number of CPUs.
    speech_workers: int = Field(default=0, ge=0)
    whisper_threads: int = Field(default=2, ge=1)  # threads per Whisper inference
    # End-of-turn audio model of AI conversations: "smart-turn" (Smart Turn v3 with words and an
    # adaptive wait) or "none" (words and silence only; an AI's smart_turn_enabled still turns it on).
    turn_model: Literal["smart-turn", "none"] = "smart-turn"
    # A real-time summary is refreshed after this many new transcripts.
    summary_update_every: int = Field(default=3, ge=1)

    log_level: str = "INFO"
    # This node's name in a cluster; the rows it owns while live carry it. Empty -> generated once and
    # kept in <data_dir>/node_id, so a restart on the same data recovers what the earlier boot left live.
    node_id: str = ""
    # Group commit of live rows (calls, activeflows): a batch waits this long for more writes. Longer
    # batches cost less CPU per call setup; each write of a call waits at most this much longer.
    db_commit_window_ms: float = Field(default=10.0, ge=0, le=1000)

    # AI conversations: faults and fallbacks (docs/providers-llm.md). A failing provider is retried
    # within the turn's budget, then the fallback engine is tried, then the caller hears the apology and
    # the flow continues with the next action.
    fallback_engine_model: str = ""
    fallback_tts_type: str = ""
    fallback_stt_type: str = ""
    ai_turn_budget: float = Field(default=10.0, gt=0)  # seconds a turn may spend on retries
    ai_llm_timeout: float = Field(default=6.0, gt=0)  # seconds to the first token, per attempt
    ai_apology: str = "I'm sorry, I'm having technical trouble right now. Let me pass you on."
    ai_balance_notice: str = "I'm sorry, this service is out of credit. Goodbye."
    # AI usage rates in micros per unit (1 USD = 1_000_000): per token, per STT audio second, per TTS
    # character. Local engines (offline.*, llama.*, ollama, piper, whisper...) are free unless
    # ai_charge_local is set.
    ai_rate_llm_input_token: int = Field(default=1, ge=0)  # $1 per million input tokens
    ai_rate_llm_output_token: int = Field(default=4, ge=0)  # $4 per million output tokens
    ai_rate_stt_second: int = Field(default=100, ge=0)  # $0.006 per minute
    ai_rate_tts_character: int = Field(default=30, ge=0)  # $30 per million characters
    ai_charge_local: bool = False
    # Webhook delivery (durable outbox): a failing receiver is retried with exponential backoff and
    # jitter from webhook_retry_base_s up to webhook_retry_max_s between tries, for webhook_max_age_s
    # after the event; then the event is given up on and reported.
    webhook_retry_base_s: float = Field(default=1.0, gt=0)
    webhook_retry_max_s: float = Field(default=600.0, gt=0)
    webhook_max_age_s: float = Field(default=86400.0, gt=0)
    webhook_timeout_s: float = Field(default=5.0, gt=0)
    # Rows given up on stay `failed` in event_outbox for inspection this long, then a start deletes them.
    webhook_failed_retention_s: float = Field(default=7 * 86400.0, gt=0)
    # Events a /v1.0/ws connection may have waiting; a client that falls this far behind is dropped.
    ws_buffer: int = Field(default=1000, ge=1)
    # /metrics (Prometheus): answered only with `Authorization: Bearer <token>`; empty -> no endpoint on
    # the API port. metrics_port > 0 serves it (without a token) on its own port, on metrics_host.
    metrics_token: str = ""
    metrics_port: int = Field(default=0, ge=0, le=65535)
    metrics_host: str = "127.0.0.1"
    # "text" (default) or "json": one JSON object a line, with call_id/activeflow_id/aicall_id.
    log_format: Literal["text", "json"] = "text"

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'voipbin.db').resolve()}"


def provider_setting(provider: str, name: str) -> str:
    """Per-provider options such as ``VOIPBIN_OPENAI_API_KEY`` or ``VOIPBIN_DEEPGRAM_BASE_URL``.

    Providers come from a registry, so these are read by name from the environment rather than
    declared as :class:`Settings` fields. This is the one deliberate exception to "every setting is
    a field": everything else reaches a module through the ``Settings`` the composition root holds.
    """
    key = f"VOIPBIN_{provider.upper().replace('-', '_')}_{name.upper()}"
    return os.environ.get(key, "")


@dataclass(frozen=True)
class PlatformSecrets:
    jwt_key: str
    encryption_key: str  # Fernet key, urlsafe base64


def load_or_create_secrets(data_dir: Path) -> PlatformSecrets:
    """Read the platform's own keys from ``<data_dir>/secrets.json``, creating them on first run."""
    from cryptography.fernet import Fernet

    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "secrets.json"
    if path.exists():
        raw = json.loads(path.read_text())
        return PlatformSecrets(jwt_key=raw["jwt_key"], encryption_key=raw["encryption_key"])
    created = PlatformSecrets(
        jwt_key=secrets.token_urlsafe(48), encryption_key=Fernet.generate_key().decode()
    )
    tmp = path.with_suffix(".tmp")
    # Owner-only file: these keys protect every tenant's credentials.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump({"jwt_key": created.jwt_key, "encryption_key": created.encryption_key}, fh)
    os.replace(tmp, path)
    return created


def load_or_create_node_id(settings: Settings) -> str:
    """``VOIPBIN_NODE_ID``, or an id generated on first run and kept in ``<data_dir>/node_id``."""
    if settings.node_id:
        return settings.node_id
    path = settings.data_dir / "node_id"
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if path.exists():
        existing = path.read_text().strip()
        if existing:
            return existing
    created = f"node-{secrets.token_hex(6)}"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(created + "\n")
    os.replace(tmp, path)
    return created


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, for entry points only (``cli``, ``app.create_app()``'s fallback, the
    test-phone CLI). Everything below them is handed its values by the composition root."""
    return Settings()
