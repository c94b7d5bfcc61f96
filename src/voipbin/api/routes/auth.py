"""``POST /auth/login`` (no /v1.0 prefix, as in VoIPBIN), with per-address throttling of failures."""

from __future__ import annotations

import time
from collections import defaultdict, deque

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy import select

from voipbin.api.deps import JWT_LIFETIME_SECONDS, DbDep, PasswordsDep, SecretsDep, SettingsDep, issue_jwt
from voipbin.api.errors import ApiError
from voipbin.config import Settings
from voipbin.store.tables import Agent, Customer

router = APIRouter(tags=["auth"])


class LoginRequest(BaseModel):
    username: str = Field(min_length=1, max_length=255)
    password: str = Field(min_length=1, max_length=1024)


class LoginResponse(BaseModel):
    username: str
    token: str


class LoginThrottle:
    """Sliding window of failed logins per client address."""

    def __init__(self, max_failures: int, window: float) -> None:
        self.max_failures = max_failures
        self.window = window
        self._failures: dict[str, deque[float]] = defaultdict(deque)

    def _prune(self, key: str, now: float) -> deque[float]:
        q = self._failures[key]
        while q and q[0] <= now - self.window:
            q.popleft()
        if not q:
            self._failures.pop(key, None)
        return q

    def retry_after(self, key: str) -> int:
        now = time.monotonic()
        q = self._prune(key, now)
        if len(q) >= self.max_failures:
            return max(1, int(q[0] + self.window - now) + 1)
        return 0

    def failed(self, key: str) -> None:
        self._failures[key].append(time.monotonic())

    def succeeded(self, key: str) -> None:
        self._failures.pop(key, None)


def _throttle(request: Request, settings: Settings) -> LoginThrottle:
    app = request.app
    if not hasattr(app.state, "login_throttle"):
        app.state.login_throttle = LoginThrottle(settings.login_max_failures, settings.login_window_seconds)
    throttle: LoginThrottle = app.state.login_throttle
    return throttle


@router.post("/auth/login", response_model=LoginResponse, summary="Log in and get a JWT (7 days)")
async def login(
    body: LoginRequest,
    request: Request,
    response: Response,
    db: DbDep,
    settings: SettingsDep,
    secrets: SecretsDep,
    passwords: PasswordsDep,
) -> LoginResponse:
    throttle = _throttle(request, settings)
    client = request.client.host if request.client else "unknown"
    if wait := throttle.retry_after(client):
        raise ApiError(
            429,
            "RATE_LIMIT_EXCEEDED",
            "Too many failed logins from this address; try again later.",
            details=[{"limited_by": "ip"}],
            headers={"Retry-After": str(wait)},
        )
    async with db.session() as session:
        agent = (
            await session.execute(
                select(Agent).where(Agent.username == body.username, Agent.tm_delete.is_(None))
            )
        ).scalar_one_or_none()
        ok = await passwords.verify(agent.password_hash if agent else None, body.password)
        if ok and agent is not None:
            customer = await session.get(Customer, agent.customer_id)
            ok = customer is not None and customer.tm_delete is None
            if ok and passwords.needs_rehash(agent.password_hash):  # the cost was raised: upgrade it
                agent.password_hash = await passwords.hash(body.password)
                await session.commit()
    if not ok or agent is None:
        throttle.failed(client)
        raise ApiError(401, "INVALID_CREDENTIALS", "Wrong username or password.")
    throttle.succeeded(client)
    token = issue_jwt(secrets, agent)
    response.set_cookie(
        "token",
        token,
        max_age=JWT_LIFETIME_SECONDS,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return LoginResponse(username=agent.username, token=token)
