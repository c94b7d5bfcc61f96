"""Table definitions. Every tenant-owned row carries ``customer_id``; soft delete sets ``tm_delete``.

After changing this file run ``python -m voipbin.store.makemigration`` to regenerate the migration.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, Integer, String, Text, Uuid
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from voipbin.store.types import UTCDateTime, creation_time

ZERO_UUID = uuid.UUID(int=0)


class Base(DeclarativeBase):
    pass


class LiveOwnerMixin:
    """Which node (and which boot of it) owns a live row: a restarted node ends what its earlier boot left
    live, so a crash strands nothing. Empty on rows that were never live on a node."""

    node_id: Mapped[str] = mapped_column(String(64), default="", index=True)
    boot_id: Mapped[uuid.UUID] = mapped_column(Uuid(), default=ZERO_UUID)


class TimestampsMixin:
    tm_create: Mapped[datetime] = mapped_column(UTCDateTime(), default=creation_time, nullable=False)
    tm_update: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    tm_delete: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class Customer(TimestampsMixin, Base):
    __tablename__ = "customers"
    id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(255), default="")
    detail: Mapped[str] = mapped_column(Text, default="")
    email: Mapped[str] = mapped_column(String(255), default="")
    phone_number: Mapped[str] = mapped_column(String(64), default="")
    address: Mapped[str] = mapped_column(Text, default="")
    webhook_method: Mapped[str] = mapped_column(String(8), default="")
    webhook_uri: Mapped[str] = mapped_column(Text, default="")
    webhook_secret_enc: Mapped[str] = mapped_column(Text, default="")
    billing_account_id: Mapped[uuid.UUID] = mapped_column(Uuid(), default=ZERO_UUID)
    status: Mapped[str] = mapped_column(String(16), default="active")
    identity_verification_status: Mapped[str] = mapped_column(String(16), default="verified")
    email_verified: Mapped[bool] = mapped_column(Boolean, default=False)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)


class Agent(TimestampsMixin, Base):
    """A login (VoIPBIN calls logins agents). ``permission`` is a VoIPBIN permission name."""

    __tablename__ = "agents"
    id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True, default=uuid.uuid4)
    customer_id: Mapped[uuid.UUID] = mapped_column(Uuid(), ForeignKey("customers.id"), index=True)
    username: Mapped[str] = mapped_column(String(255), unique=True)
    password_hash: Mapped[str] = mapped_column(Text)
    name: Mapped[str] = mapped_column(String(255), default="")
    permission: Mapped[str] = mapped_column(String(32), default="customer_admin")


class Accesskey(TimestampsMixin, Base):
    __tablename__ = "accesskeys"
    id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True, default=uuid.uuid4)
    customer_id: Mapped[uuid.UUID] = mapped_column(Uuid(), ForeignKey("customers.id"), index=True)
    name: Mapped[str] = mapped_column(String(255), default="")
    detail: Mapped[str] = mapped_column(Text, default="")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    token_prefix: Mapped[str] = mapped_column(String(16))
    # A key acts with the permission of the login that created it.
    permission: Mapped[str] = mapped_column(String(32), default="customer_admin")
    tm_expire: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class Flow(TimestampsMixin, Base):
    __tablename__ = "flows"
    id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True, default=uuid.uuid4)
    customer_id: Mapped[uuid.UUID] = mapped_column(Uuid(), ForeignKey("customers.id"), index=True)
    type: Mapped[str] = mapped_column(String(16), default="flow")
    name: Mapped[str] = mapped_column(String(255), default="")
    detail: Mapped[str] = mapped_column(Text, default="")
    actions: Mapped[list[Any]] = mapped_column(JSON, default=list)
    direct_hash: Mapped[str] = mapped_column(String(64), default="")
    on_complete_flow_id: Mapped[uuid.UUID] = mapped_column(Uuid(), default=ZERO_UUID)
    # Flows created implicitly by POST /calls with inline actions are not listed.
    persist: Mapped[bool] = mapped_column(Boolean, default=True)


class AI(TimestampsMixin, Base):
    __tablename__ = "ais"
    id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True, default=uuid.uuid4)
    customer_id: Mapped[uuid.UUID] = mapped_column(Uuid(), ForeignKey("customers.id"), index=True)
    name: Mapped[str] = mapped_column(String(255), default="")
    detail: Mapped[str] = mapped_column(Text, default="")
    type: Mapped[str] = mapped_column(String(16), default="normal")
    engine_model: Mapped[str] = mapped_column(String(255), default="")
    engine_key_enc: Mapped[str] = mapped_column(Text, default="")
    parameter: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    rag_id: Mapped[uuid.UUID] = mapped_column(Uuid(), default=ZERO_UUID)
    init_prompt: Mapped[str] = mapped_column(Text, default="")
    tts_type: Mapped[str] = mapped_column(String(32), default="")
    tts_voice_id: Mapped[str] = mapped_column(String(255), default="")
    stt_type: Mapped[str] = mapped_column(String(32), default="")
    stt_language: Mapped[str] = mapped_column(String(32), default="")
    vad_config: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    smart_turn_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    auto_aicall_audit_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    tool_names: Mapped[list[str]] = mapped_column(JSON, default=list)
    direct_hash: Mapped[str] = mapped_column(String(64), default="")


class Number(TimestampsMixin, Base):
    __tablename__ = "numbers"
    __table_args__ = (Index("ix_numbers_number", "number"),)
    id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True, default=uuid.uuid4)
    customer_id: Mapped[uuid.UUID] = mapped_column(Uuid(), ForeignKey("customers.id"), index=True)
    number: Mapped[str] = mapped_column(String(32))
    type: Mapped[str] = mapped_column(String(16), default="normal")
    call_flow_id: Mapped[uuid.UUID] = mapped_column(Uuid(), default=ZERO_UUID)
    message_flow_id: Mapped[uuid.UUID] = mapped_column(Uuid(), default=ZERO_UUID)
    name: Mapped[str] = mapped_column(String(255), default="")
    detail: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="active")
    t38_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    emergency_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    tm_purchase: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    tm_renew: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class Extension(TimestampsMixin, Base):
    __tablename__ = "extensions"
    __table_args__ = (Index("ix_extensions_customer_extension", "customer_id", "extension"),)
    id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True, default=uuid.uuid4)
    customer_id: Mapped[uuid.UUID] = mapped_column(Uuid(), ForeignKey("customers.id"), index=True)
    name: Mapped[str] = mapped_column(String(255), default="")
    detail: Mapped[str] = mapped_column(Text, default="")
    extension: Mapped[str] = mapped_column(String(64))
    password_enc: Mapped[str] = mapped_column(Text)
    direct_hash: Mapped[str] = mapped_column(String(64), default="")


class BillingAccount(TimestampsMixin, Base):
    __tablename__ = "billing_accounts"
    id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True, default=uuid.uuid4)
    customer_id: Mapped[uuid.UUID] = mapped_column(Uuid(), ForeignKey("customers.id"), index=True)
    name: Mapped[str] = mapped_column(String(255), default="")
    detail: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="active")
    plan_type: Mapped[str] = mapped_column(String(16), default="free")
    plan_status: Mapped[str] = mapped_column(String(16), default="active")
    balance_credit: Mapped[int] = mapped_column(BigInteger, default=0)
    balance_token: Mapped[int] = mapped_column(BigInteger, default=0)
    payment_type: Mapped[str] = mapped_column(String(16), default="")
    payment_method: Mapped[str] = mapped_column(String(32), default="")
    tm_last_topup: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class Billing(TimestampsMixin, Base):
    """One ledger line. ``amount_credit`` is signed micros (negative = charge)."""

    __tablename__ = "billings"
    id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True, default=uuid.uuid4)
    customer_id: Mapped[uuid.UUID] = mapped_column(Uuid(), ForeignKey("customers.id"), index=True)
    account_id: Mapped[uuid.UUID] = mapped_column(Uuid(), ForeignKey("billing_accounts.id"), index=True)
    transaction_type: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="end")
    reference_type: Mapped[str] = mapped_column(String(32), default="")
    reference_id: Mapped[uuid.UUID] = mapped_column(Uuid(), default=ZERO_UUID)
    cost_type: Mapped[str] = mapped_column(String(32), default="")
    usage_duration: Mapped[int] = mapped_column(Integer, default=0)
    billable_units: Mapped[int] = mapped_column(Integer, default=0)
    rate_token_per_unit: Mapped[int] = mapped_column(BigInteger, default=0)
    rate_credit_per_unit: Mapped[int] = mapped_column(BigInteger, default=0)
    amount_token: Mapped[int] = mapped_column(BigInteger, default=0)
    amount_credit: Mapped[int] = mapped_column(BigInteger, default=0)
    balance_token_snapshot: Mapped[int] = mapped_column(BigInteger, default=0)
    balance_credit_snapshot: Mapped[int] = mapped_column(BigInteger, default=0)
    idempotency_key: Mapped[str] = mapped_column(String(128), default="")
    provider: Mapped[str] = mapped_column(String(64), default="")  # ours: the engine an AI usage line is for
    tm_billing_start: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    tm_billing_end: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class Provider(TimestampsMixin, Base):
    """An outbound SIP trunk (platform-wide, admin only)."""

    __tablename__ = "providers"
    id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True, default=uuid.uuid4)
    type: Mapped[str] = mapped_column(String(16), default="sip")
    hostname: Mapped[str] = mapped_column(String(255))
    tech_prefix: Mapped[str] = mapped_column(String(64), default="")
    tech_postfix: Mapped[str] = mapped_column(String(64), default="")
    tech_headers: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    name: Mapped[str] = mapped_column(String(255), default="")
    detail: Mapped[str] = mapped_column(Text, default="")
    codecs: Mapped[str] = mapped_column(String(64), default="")
    transport: Mapped[str] = mapped_column(String(8), default="udp")
    auth_username: Mapped[str] = mapped_column(String(255), default="")
    auth_password_enc: Mapped[str] = mapped_column(Text, default="")
    register: Mapped[bool] = mapped_column(Boolean, default=False)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)


class Route(TimestampsMixin, Base):
    """Which provider carries which destination prefix. ``customer_id`` zero = platform default."""

    __tablename__ = "routes"
    id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True, default=uuid.uuid4)
    customer_id: Mapped[uuid.UUID] = mapped_column(Uuid(), default=ZERO_UUID, index=True)
    name: Mapped[str] = mapped_column(String(255), default="")
    detail: Mapped[str] = mapped_column(Text, default="")
    provider_id: Mapped[uuid.UUID] = mapped_column(Uuid(), ForeignKey("providers.id"))
    priority: Mapped[int] = mapped_column(Integer, default=1)
    target: Mapped[str] = mapped_column(String(32), default="all")


class Call(LiveOwnerMixin, TimestampsMixin, Base):
    __tablename__ = "calls"
    id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True, default=uuid.uuid4)
    customer_id: Mapped[uuid.UUID] = mapped_column(Uuid(), ForeignKey("customers.id"), index=True)
    owner_type: Mapped[str] = mapped_column(String(16), default="")
    owner_id: Mapped[uuid.UUID] = mapped_column(Uuid(), default=ZERO_UUID)
    flow_id: Mapped[uuid.UUID] = mapped_column(Uuid(), default=ZERO_UUID)
    activeflow_id: Mapped[uuid.UUID] = mapped_column(Uuid(), default=ZERO_UUID)
    type: Mapped[str] = mapped_column(String(16), default="flow")
    master_call_id: Mapped[uuid.UUID] = mapped_column(Uuid(), default=ZERO_UUID)
    chained_call_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    recording_id: Mapped[uuid.UUID] = mapped_column(Uuid(), default=ZERO_UUID)
    recording_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    groupcall_id: Mapped[uuid.UUID] = mapped_column(Uuid(), default=ZERO_UUID)
    source: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    destination: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="dialing")
    action: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    direction: Mapped[str] = mapped_column(String(16), default="outgoing")
    mute_direction: Mapped[str] = mapped_column(String(8), default="")
    hangup_by: Mapped[str] = mapped_column(String(8), default="")
    hangup_reason: Mapped[str] = mapped_column(String(16), default="")
    variables: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    tm_progressing: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    tm_ringing: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    tm_hangup: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class Groupcall(LiveOwnerMixin, TimestampsMixin, Base):
    __tablename__ = "groupcalls"
    id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True, default=uuid.uuid4)
    customer_id: Mapped[uuid.UUID] = mapped_column(Uuid(), ForeignKey("customers.id"), index=True)
    owner_type: Mapped[str] = mapped_column(String(16), default="")
    owner_id: Mapped[uuid.UUID] = mapped_column(Uuid(), default=ZERO_UUID)
    status: Mapped[str] = mapped_column(String(16), default="progressing")
    flow_id: Mapped[uuid.UUID] = mapped_column(Uuid(), default=ZERO_UUID)
    source: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    destinations: Mapped[list[Any]] = mapped_column(JSON, default=list)
    master_call_id: Mapped[uuid.UUID] = mapped_column(Uuid(), default=ZERO_UUID)
    ring_method: Mapped[str] = mapped_column(String(16), default="ring_all")
    answer_method: Mapped[str] = mapped_column(String(16), default="hangup_others")
    answer_call_id: Mapped[uuid.UUID] = mapped_column(Uuid(), default=ZERO_UUID)
    call_ids: Mapped[list[str]] = mapped_column(JSON, default=list)


class Recording(LiveOwnerMixin, TimestampsMixin, Base):
    __tablename__ = "recordings"
    id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True, default=uuid.uuid4)
    customer_id: Mapped[uuid.UUID] = mapped_column(Uuid(), ForeignKey("customers.id"), index=True)
    owner_type: Mapped[str] = mapped_column(String(16), default="")
    owner_id: Mapped[uuid.UUID] = mapped_column(Uuid(), default=ZERO_UUID)
    reference_type: Mapped[str] = mapped_column(String(16), default="call")
    reference_id: Mapped[uuid.UUID] = mapped_column(Uuid(), default=ZERO_UUID)
    status: Mapped[str] = mapped_column(String(16), default="initiating")
    format: Mapped[str] = mapped_column(String(8), default="wav")
    direction: Mapped[str] = mapped_column(String(8), default="both")
    activeflow_id: Mapped[uuid.UUID] = mapped_column(Uuid(), default=ZERO_UUID)
    on_end_flow_id: Mapped[uuid.UUID] = mapped_column(Uuid(), default=ZERO_UUID)
    filename: Mapped[str] = mapped_column(Text, default="")
    tm_start: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    tm_end: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class Activeflow(LiveOwnerMixin, TimestampsMixin, Base):
    """One running (or ended) flow execution; the engine's state document lives in the JSON columns.

    ``stack`` is the engine's list of action frames (``[{"actions": [...], "index": n}]``), ``variables``
    the flat string map, ``loop_counts`` the per-goto counters. While the activeflow runs its state lives
    in the engine's memory (``GET /activeflows`` answers from it); the row is written when it starts,
    when its status changes and when it ends. ``error`` is internal (why it ended abnormally).
    """

    __tablename__ = "activeflows"
    id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True, default=uuid.uuid4)
    customer_id: Mapped[uuid.UUID] = mapped_column(Uuid(), ForeignKey("customers.id"), index=True)
    flow_id: Mapped[uuid.UUID] = mapped_column(Uuid(), default=ZERO_UUID)
    status: Mapped[str] = mapped_column(String(16), default="running")
    reference_type: Mapped[str] = mapped_column(String(16), default="")
    reference_id: Mapped[uuid.UUID] = mapped_column(Uuid(), default=ZERO_UUID, index=True)
    reference_activeflow_id: Mapped[uuid.UUID] = mapped_column(Uuid(), default=ZERO_UUID)
    on_complete_flow_id: Mapped[uuid.UUID] = mapped_column(Uuid(), default=ZERO_UUID)
    webhook_uri: Mapped[str] = mapped_column(Text, default="")
    webhook_method: Mapped[str] = mapped_column(String(8), default="")
    current_action: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    forward_action_id: Mapped[uuid.UUID] = mapped_column(Uuid(), default=ZERO_UUID)
    executed_actions: Mapped[list[Any]] = mapped_column(JSON, default=list)
    stack: Mapped[list[Any]] = mapped_column(JSON, default=list)
    variables: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    loop_counts: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    execute_count: Mapped[int] = mapped_column(Integer, default=0)
    complete_count: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str] = mapped_column(Text, default="")


class Transcribe(LiveOwnerMixin, TimestampsMixin, Base):
    """A live transcription of a call (VoIPBIN's transcribe). ``status``: progressing -> done."""

    __tablename__ = "transcribes"
    id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True, default=uuid.uuid4)
    customer_id: Mapped[uuid.UUID] = mapped_column(Uuid(), ForeignKey("customers.id"), index=True)
    activeflow_id: Mapped[uuid.UUID] = mapped_column(Uuid(), default=ZERO_UUID)
    on_end_flow_id: Mapped[uuid.UUID] = mapped_column(Uuid(), default=ZERO_UUID)
    reference_type: Mapped[str] = mapped_column(String(16), default="call")
    reference_id: Mapped[uuid.UUID] = mapped_column(Uuid(), default=ZERO_UUID, index=True)
    status: Mapped[str] = mapped_column(String(16), default="progressing")
    language: Mapped[str] = mapped_column(String(32), default="en-US")
    direction: Mapped[str] = mapped_column(String(8), default="both")
    provider: Mapped[str] = mapped_column(String(16), default="")


class Transcript(TimestampsMixin, Base):
    """One final utterance of a transcribe; ``offset_ms`` is from the transcribe's start (tm_transcript)."""

    __tablename__ = "transcripts"
    id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True, default=uuid.uuid4)
    customer_id: Mapped[uuid.UUID] = mapped_column(Uuid(), ForeignKey("customers.id"), index=True)
    transcribe_id: Mapped[uuid.UUID] = mapped_column(Uuid(), ForeignKey("transcribes.id"), index=True)
    direction: Mapped[str] = mapped_column(String(8), default="in")
    message: Mapped[str] = mapped_column(Text, default="")
    offset_ms: Mapped[int] = mapped_column(BigInteger, default=0)


class Summary(LiveOwnerMixin, TimestampsMixin, Base):
    """An AI summary of a transcribe or a call (VoIPBIN's aisummary). ``status``: progressing -> done."""

    __tablename__ = "summaries"
    id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True, default=uuid.uuid4)
    customer_id: Mapped[uuid.UUID] = mapped_column(Uuid(), ForeignKey("customers.id"), index=True)
    activeflow_id: Mapped[uuid.UUID] = mapped_column(Uuid(), default=ZERO_UUID)
    on_end_flow_id: Mapped[uuid.UUID] = mapped_column(Uuid(), default=ZERO_UUID)
    reference_type: Mapped[str] = mapped_column(String(16), default="transcribe")
    reference_id: Mapped[uuid.UUID] = mapped_column(Uuid(), default=ZERO_UUID, index=True)
    transcribe_id: Mapped[uuid.UUID] = mapped_column(Uuid(), default=ZERO_UUID)  # internal: the source
    status: Mapped[str] = mapped_column(String(16), default="progressing")
    language: Mapped[str] = mapped_column(String(32), default="en-US")
    content: Mapped[str] = mapped_column(Text, default="")


class Registration(Base):
    """A SIP registration binding we hold (an extension's or a development-carrier phone's), persisted with
    its expiry so a phone stays reachable across a restart. ``registrar`` is the domain the phone
    registered at; ``binding`` is the registrar's serialized binding (contact, source address...)."""

    __tablename__ = "registrations"
    registrar: Mapped[str] = mapped_column(String(255), primary_key=True)
    aor: Mapped[str] = mapped_column(String(255), primary_key=True)
    contact: Mapped[str] = mapped_column(String(1024), primary_key=True)
    binding: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    tm_expire: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, index=True)
    node_id: Mapped[str] = mapped_column(String(64), default="")


class AICall(LiveOwnerMixin, TimestampsMixin, Base):
    """One AI conversation (VoIPBIN's aicall): ``initiating`` -> ``progressing`` -> ``terminated``.
    ``metadata`` holds our extensions: usage and timing sums, the end reason, errors and warnings."""

    __tablename__ = "aicalls"
    id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True, default=uuid.uuid4)
    customer_id: Mapped[uuid.UUID] = mapped_column(Uuid(), ForeignKey("customers.id"), index=True)
    assistance_type: Mapped[str] = mapped_column(String(16), default="ai")
    assistance_id: Mapped[uuid.UUID] = mapped_column(Uuid(), default=ZERO_UUID)
    ai_engine_model: Mapped[str] = mapped_column(String(255), default="")
    ai_tts_type: Mapped[str] = mapped_column(String(32), default="")
    ai_tts_voice_id: Mapped[str] = mapped_column(String(255), default="")
    ai_stt_type: Mapped[str] = mapped_column(String(32), default="")
    ai_vad_config: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    parameter: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    activeflow_id: Mapped[uuid.UUID] = mapped_column(Uuid(), default=ZERO_UUID)
    reference_type: Mapped[str] = mapped_column(String(16), default="call")
    reference_id: Mapped[uuid.UUID] = mapped_column(Uuid(), default=ZERO_UUID, index=True)
    status: Mapped[str] = mapped_column(String(16), default="initiating")
    stt_language: Mapped[str] = mapped_column(String(32), default="")
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    tm_end: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class AIMessage(TimestampsMixin, Base):
    """One message of an aicall (system, user, assistant, tool). ``turn`` is our extension: an assistant
    message's timings and usage (see docs/api.md)."""

    __tablename__ = "aimessages"
    id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True, default=uuid.uuid4)
    customer_id: Mapped[uuid.UUID] = mapped_column(Uuid(), ForeignKey("customers.id"), index=True)
    aicall_id: Mapped[uuid.UUID] = mapped_column(Uuid(), index=True)
    activeflow_id: Mapped[uuid.UUID] = mapped_column(Uuid(), default=ZERO_UUID)
    active_ai_id: Mapped[uuid.UUID] = mapped_column(Uuid(), default=ZERO_UUID)
    role: Mapped[str] = mapped_column(String(16), default="")
    content: Mapped[str] = mapped_column(Text, default="")
    direction: Mapped[str] = mapped_column(String(16), default="")
    tool_calls: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    tool_call_id: Mapped[str] = mapped_column(String(128), default="")
    turn: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class EventOutbox(Base):
    """A webhook delivery not yet made: one row per event and destination, written in the transaction of
    the change that caused the event (owner: ``events/webhooks.py``). Delivered rows are deleted; rows
    given up on (410 Gone, or still failing after ``VOIPBIN_WEBHOOK_MAX_AGE_S``) stay ``failed`` for
    ``VOIPBIN_WEBHOOK_FAILED_RETENTION_S``.
    ``target`` is empty for the customer's own ``webhook_uri`` (read when sending, so a changed URI
    applies), else the activeflow's URI. ``seq`` orders the deliveries of one destination."""

    __tablename__ = "event_outbox"
    id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, nullable=False, index=True)
    event_id: Mapped[uuid.UUID] = mapped_column(Uuid(), nullable=False)
    customer_id: Mapped[uuid.UUID] = mapped_column(Uuid(), nullable=False, index=True)
    target: Mapped[str] = mapped_column(String(2048), default="")
    method: Mapped[str] = mapped_column(String(16), default="")
    type: Mapped[str] = mapped_column(String(64), nullable=False)
    body: Mapped[str] = mapped_column(Text, nullable=False)
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(String(512), default="")
    node_id: Mapped[str] = mapped_column(String(64), default="", index=True)
    tm_create: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    tm_next: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
