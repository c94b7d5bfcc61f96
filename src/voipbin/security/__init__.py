"""Password hashing, access-key tokens, at-rest encryption and masking of secrets."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import string
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.fernet import Fernet, InvalidToken

_ALPHABET = string.ascii_letters + string.digits
ACCESSKEY_PREFIX = "vb_"


@dataclass(frozen=True)
class Argon2Cost:
    """Argon2id cost (``VOIPBIN_PASSWORD_HASH_*``); the default is RFC 9106's low-memory profile."""

    time_cost: int = 3
    memory_kib: int = 65536
    parallelism: int = 4


class Passwords:
    """Agent password hashing (Argon2id). Each hash costs ~0.1-0.5 s of CPU by design, so the async
    methods run it on a worker thread (argon2-cffi releases the GIL): a login never stalls the event
    loop that runs SIP and flows. Hashes carry their own parameters, so changing the cost keeps old
    hashes valid; :meth:`needs_rehash` tells a login to upgrade them."""

    def __init__(self, cost: Argon2Cost | None = None) -> None:
        c = cost or Argon2Cost()
        self._hasher = PasswordHasher(
            time_cost=c.time_cost, memory_cost=c.memory_kib, parallelism=c.parallelism
        )
        self._dummy: str | None = None

    def hash_blocking(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify_blocking(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self.hash_blocking, password)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """False for a wrong password, and for no user at all after the same work (no timing oracle
        for which usernames exist)."""
        if password_hash is None:
            if self._dummy is None:
                self._dummy = await self.hash(secrets.token_urlsafe(16))
            await asyncio.to_thread(self.verify_blocking, self._dummy, password)
            return False
        return await asyncio.to_thread(self.verify_blocking, password_hash, password)

    @classmethod
    def from_settings(cls, settings: Any) -> Passwords:
        """From ``VOIPBIN_PASSWORD_HASH_*`` (a :class:`voipbin.config.Settings`)."""
        s = settings
        return cls(
            Argon2Cost(s.password_hash_time_cost, s.password_hash_memory_kib, s.password_hash_parallelism)
        )

    def needs_rehash(self, password_hash: str) -> bool:
        try:
            return self._hasher.check_needs_rehash(password_hash)
        except InvalidHashError:
            return False


def random_token(length: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def new_accesskey() -> str:
    return ACCESSKEY_PREFIX + random_token(32)


def hash_token(token: str) -> str:
    """Access keys are high-entropy, so a plain SHA-256 is the right (fast, constant) lookup hash."""
    return hashlib.sha256(token.encode()).hexdigest()


def looks_like_accesskey(value: str) -> bool:
    return value.startswith(ACCESSKEY_PREFIX) and len(value) == len(ACCESSKEY_PREFIX) + 32


def mask(secret: str) -> str:
    """``****`` + last 4 characters; short secrets are masked entirely."""
    if not secret:
        return ""
    return "****" + secret[-4:] if len(secret) > 8 else "****"


def sign_body(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class Encryptor:
    """Symmetric at-rest encryption (Fernet: AES-128-CBC + HMAC-SHA256) for secrets we must read back."""

    def __init__(self, key: str) -> None:
        self._fernet = Fernet(key.encode())

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode() if plaintext else ""

    def decrypt(self, token: str) -> str:
        if not token:
            return ""
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken as exc:  # wrong key or tampered row: never fall back to anything
            raise ValueError("stored secret cannot be decrypted with this installation's key") from exc
