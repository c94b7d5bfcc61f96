"""Password hashing, access-key tokens, at-rest encryption and masking of secrets."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.fernet import Fernet, InvalidToken

_hasher = PasswordHasher()
_ALPHABET = string.ascii_letters + string.digits
ACCESSKEY_PREFIX = "vb_"


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
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
