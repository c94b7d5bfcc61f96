"""Request dependencies: the node's services (one dependency each), the principal, pagination.

The composition root (``voipbin.node``) builds the services and ``app.py`` puts them on the app; routers
name the services they use (``DbDep``, ``CallRecordsDep``...) and never see the whole node.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

import jwt
from fastapi import Depends, Query, Request
from sqlalchemy import select
from starlette.requests import HTTPConnection

from voipbin.ai.actions import AIConversations
from voipbin.ai.calls import AICalls
from voipbin.ai.registry import ModelLocations
from voipbin.api.errors import ApiError
from voipbin.calls.manager import CallManager
from voipbin.calls.recordings import Recordings
from voipbin.calls.records import CallRecords
from voipbin.config import PlatformSecrets, Settings
from voipbin.events.bus import EventBus
from voipbin.events.stream import EventStream
from voipbin.events.webhooks import WebhookDispatcher
from voipbin.flow.engine import FlowEngine
from voipbin.metrics.registry import NodeMetrics
from voipbin.security import Encryptor, Passwords, hash_token, looks_like_accesskey
from voipbin.security.outbound import OutboundPolicy, policy_for
from voipbin.store.db import Database
from voipbin.store.tables import Accesskey, Agent, Customer
from voipbin.tenants import PLATFORM_ADMIN
from voipbin.transcribe.service import TranscribeService
from voipbin.transcribe.summary import SummaryService

JWT_LIFETIME_SECONDS = 7 * 24 * 3600


def _part(request: HTTPConnection, name: str) -> Any:  # HTTP requests and WebSockets alike
    return getattr(request.app.state.node, name)


def get_db(request: HTTPConnection) -> Database:
    return _part(request, "db")


def get_settings_dep(request: Request) -> Settings:
    return _part(request, "settings")


def get_secrets(request: HTTPConnection) -> PlatformSecrets:
    return _part(request, "secrets")


def get_encryptor(request: Request) -> Encryptor:
    return _part(request, "encryptor")


def get_passwords(request: Request) -> Passwords:
    return _part(request, "passwords")


def get_call_records(request: Request) -> CallRecords:
    return _part(request, "call_records")


def get_call_manager(request: Request) -> CallManager:
    return _part(request, "calls")


def get_flows(request: Request) -> FlowEngine:
    return _part(request, "flows")


def get_recordings(request: Request) -> Recordings:
    return _part(request, "recordings")


def get_transcribes(request: Request) -> TranscribeService:
    return _part(request, "transcribes")


def get_summaries(request: Request) -> SummaryService:
    return _part(request, "summaries")


def get_models(request: Request) -> ModelLocations:
    return ModelLocations.from_settings(_part(request, "settings"))


def get_outbound(request: Request) -> OutboundPolicy:
    return policy_for(_part(request, "settings").outbound_allow)


def get_events(request: Request) -> EventBus:
    return _part(request, "events")


def get_webhooks(request: Request) -> WebhookDispatcher:
    return _part(request, "webhooks")


def get_aicalls(request: Request) -> AICalls:
    return _part(request, "aicalls")


def get_ai(request: Request) -> AIConversations:
    return _part(request, "ai")


def get_stream(conn: HTTPConnection) -> EventStream:
    return _part(conn, "stream")


def get_metrics(request: Request) -> NodeMetrics:
    return _part(request, "metrics")


DbDep = Annotated[Database, Depends(get_db)]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
SecretsDep = Annotated[PlatformSecrets, Depends(get_secrets)]
EncryptorDep = Annotated[Encryptor, Depends(get_encryptor)]
PasswordsDep = Annotated[Passwords, Depends(get_passwords)]
CallRecordsDep = Annotated[CallRecords, Depends(get_call_records)]
CallManagerDep = Annotated[CallManager, Depends(get_call_manager)]
FlowsDep = Annotated[FlowEngine, Depends(get_flows)]
RecordingsDep = Annotated[Recordings, Depends(get_recordings)]
TranscribesDep = Annotated[TranscribeService, Depends(get_transcribes)]
SummariesDep = Annotated[SummaryService, Depends(get_summaries)]
WebhooksDep = Annotated[WebhookDispatcher, Depends(get_webhooks)]
EventsDep = Annotated[EventBus, Depends(get_events)]
StreamDep = Annotated[EventStream, Depends(get_stream)]
MetricsDep = Annotated[NodeMetrics, Depends(get_metrics)]
ModelsDep = Annotated[ModelLocations, Depends(get_models)]
OutboundDep = Annotated[OutboundPolicy, Depends(get_outbound)]  # the SSRF guard's allow-list
AICallsDep = Annotated[AICalls, Depends(get_aicalls)]
AIDep = Annotated[AIConversations, Depends(get_ai)]


@dataclass(frozen=True)
class Principal:
    customer_id: uuid.UUID
    agent_id: uuid.UUID | None
    username: str
    permission: str
    via: str  # "jwt" | "accesskey"

    @property
    def is_platform_admin(self) -> bool:
        return self.permission == PLATFORM_ADMIN


def issue_jwt(secrets: PlatformSecrets, agent: Agent) -> str:
    now = int(time.time())
    expire = datetime.fromtimestamp(now + JWT_LIFETIME_SECONDS, UTC)
    claims = {
        "type": "agent",
        "agent": {
            "id": str(agent.id),
            "customer_id": str(agent.customer_id),
            "username": agent.username,
            "permission": agent.permission,
        },
        "expire": expire.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "iat": now,
        "exp": now + JWT_LIFETIME_SECONDS,
    }
    return jwt.encode(claims, secrets.jwt_key, algorithm="HS256")


def _credential(request: HTTPConnection) -> tuple[str, str] | None:
    """VoIPBIN's lookup order, plus an access key sent as a Bearer token (which VoIPBIN rejects)."""
    if token := request.cookies.get("token"):
        return "jwt", token
    if token := request.query_params.get("token"):
        return "jwt", token
    auth = request.headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        value = auth[7:].strip()
        if value:
            return ("accesskey" if looks_like_accesskey(value) else "jwt"), value
    if key := request.cookies.get("accesskey"):
        return "accesskey", key
    if key := request.query_params.get("accesskey"):
        return "accesskey", key
    return None


def _invalid() -> ApiError:
    return ApiError(401, "INVALID_CREDENTIALS", "The credentials are invalid or expired.")


async def current_principal(request: HTTPConnection, db: DbDep, secrets: SecretsDep) -> Principal:
    cred = _credential(request)
    if cred is None:
        raise ApiError(401, "AUTHENTICATION_REQUIRED", "Authentication is required.")
    kind, value = cred
    async with db.session() as session:
        if kind == "jwt":
            try:
                claims = jwt.decode(value, secrets.jwt_key, algorithms=["HS256"])
                agent_id = uuid.UUID(claims["agent"]["id"])
            except (jwt.PyJWTError, KeyError, TypeError, ValueError):
                raise _invalid() from None
            agent = await session.get(Agent, agent_id)
            if agent is None or agent.tm_delete is not None:
                raise _invalid()
            principal = Principal(agent.customer_id, agent.id, agent.username, agent.permission, "jwt")
        else:
            key = (
                await session.execute(select(Accesskey).where(Accesskey.token_hash == hash_token(value)))
            ).scalar_one_or_none()
            now = datetime.now(UTC)
            if (
                key is None
                or key.tm_delete is not None
                or (key.tm_expire is not None and key.tm_expire < now)
            ):
                raise _invalid()
            principal = Principal(key.customer_id, None, key.token_prefix, key.permission, "accesskey")
        customer = await session.get(Customer, principal.customer_id)
        if customer is None or customer.tm_delete is not None:
            raise _invalid()
        if customer.status == "frozen":
            raise ApiError(403, "ACCOUNT_FROZEN", "The account is frozen.")
    request.state.principal = principal
    return principal


PrincipalDep = Annotated[Principal, Depends(current_principal)]


async def platform_admin(principal: PrincipalDep) -> Principal:
    if not principal.is_platform_admin:
        raise ApiError(403, "PERMISSION_DENIED", "This endpoint needs platform administrator permission.")
    return principal


AdminDep = Annotated[Principal, Depends(platform_admin)]


@dataclass(frozen=True)
class PageParams:
    size: int
    token: datetime | None


def page_params(
    page_size: Annotated[int | None, Query(description="Items per page (1-100, default 100).")] = None,
    page_token: Annotated[str | None, Query(description="next_page_token of the previous page.")] = None,
) -> PageParams:
    size = page_size if page_size is not None and 0 < page_size <= 100 else 100
    token = None
    if page_token:
        try:
            token = datetime.strptime(page_token, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
        except ValueError:
            raise ApiError(
                400, "INVALID_REQUEST_PARAMETER", "page_token must be a next_page_token from a previous page."
            ) from None
    return PageParams(size, token)


PageDep = Annotated[PageParams, Depends(page_params)]


def parse_id(value: str, name: str = "id") -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise ApiError(400, "INVALID_ID", f"'{name}' must be a UUID.", details=[{"field": name}]) from None
