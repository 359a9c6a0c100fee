"""The service's secrets: argon2 password hashes, signed login tokens, API-key digests, the signing key.

A token names its user (``sub``, ``uid``), the user's token version at issue (``ver``: bumped when the
user is deactivated or changes password, which revokes every earlier token) and its own id (``jti``:
logging out revokes that one). Role and district are never read from a token: they come from the store
on every request (``serving.identity``).
"""

from __future__ import annotations

import hashlib
import os
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import cache
from pathlib import Path

import jwt
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from serving.errors import NotAuthenticated

JWT_ALGORITHM = "HS256"
MIN_PASSWORD_CHARS = 12
MIN_SECRET_CHARS = 32
KEY_FILE = "secret_key"
DENIED_PASSWORDS = frozenset(
    {"password", "password123", "123456", "12345678", "123456789012", "admin", "admin123", "changeme",
     "letmein", "qwerty", "waterwatch", "demo", "officer", "supervisor", "analyst", "demo-password",
     "waterwatch123", "passwordpassword", "dev-only-secret-change-me",
     "dev-only-secret-never-use-in-production"}
)

# the argon2id cost of new hashes (``auth.password_hash_cost``): the library's recommended one (RFC 9106's
# low-memory choice: 64 MiB, 3 passes, 4 lanes), or the cheapest, for the test suite only (production refuses it)
STANDARD_COST, TEST_ONLY_COST = "standard", "test-only"
_ARGON2 = {STANDARD_COST: {}, TEST_ONLY_COST: {"time_cost": 1, "memory_cost": 8, "parallelism": 1}}


@cache
def _hashing(cost: str) -> tuple[PasswordHash, str]:
    """The hasher of ``cost`` and a dummy hash of that cost, verified against when the username is unknown, so
    that a wrong name costs the same as a wrong password (a stored hash's own cost decides its check)."""
    hasher = PasswordHash((Argon2Hasher(**_ARGON2[cost]),))
    return hasher, hasher.hash(secrets.token_urlsafe(16))


class AuthError(NotAuthenticated):
    """A credential was refused; the message says why without revealing which part was wrong."""


class PasswordPolicyError(ValueError):
    pass


def check_hash_cost(cost: str, production: bool) -> None:
    """Production refuses the test suite's cheap hashes: a stolen store's passwords would fall at once."""
    if cost not in _ARGON2:
        raise ValueError(f"password_hash_cost must be one of {', '.join(_ARGON2)}, got {cost!r}")
    if production and cost != STANDARD_COST:
        raise ValueError(f"production refuses password_hash_cost={cost!r}: unset WATERWATCH_AUTH__PASSWORD_HASH_COST")


def warm_up_hashing(cost: str) -> None:
    """Make ``cost``'s dummy hash now (the service, as it starts), so that the first unknown name costs no more
    than the next ones; a process that never checks a password (the pipeline, the CLI) never makes it."""
    _hashing(cost)


def hash_password(password: str, cost: str = STANDARD_COST) -> str:
    return _hashing(cost)[0].hash(password)


def verify_password(password: str, password_hash: str | None, cost: str = STANDARD_COST) -> bool:
    """Whether ``password`` matches; without a stored hash, the same work against a dummy one of ``cost``
    (that of the install's hashes)."""
    hasher, dummy = _hashing(cost)
    try:
        ok = hasher.verify(password, password_hash or dummy)
    except Exception:  # a malformed stored hash is a refusal, not a crash
        return False
    return ok and password_hash is not None


def check_password_policy(password: str, production: bool) -> None:
    """In production: at least 12 characters and not a known default; always: not empty."""
    if not password:
        raise PasswordPolicyError("密码不能为空 (password must not be empty)")
    if production and (len(password) < MIN_PASSWORD_CHARS or password.lower() in DENIED_PASSWORDS):
        raise PasswordPolicyError(
            f"生产环境不允许使用弱密码或默认密码：至少{MIN_PASSWORD_CHARS}个字符，且不能是常见密码 "
            f"(production refuses default or short passwords: at least {MIN_PASSWORD_CHARS} characters)"
        )


def new_api_key() -> str:
    return "ww_" + secrets.token_urlsafe(32)


def key_digest(key: str) -> str:
    """What the store keeps of an API key (keys are long random tokens, not passwords: SHA-256 suffices)."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


# -- tokens ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenClaims:
    username: str
    user_id: int
    version: int
    jti: str
    expires_at: datetime


def issue_token(username: str, user_id: int, version: int, secret_key: str, minutes: int) -> tuple[str, TokenClaims]:
    now = datetime.now(timezone.utc)
    claims = TokenClaims(username, user_id, version, uuid.uuid4().hex, now + timedelta(minutes=minutes))
    token = jwt.encode({"sub": username, "uid": user_id, "ver": version, "jti": claims.jti, "iat": now,
                        "exp": claims.expires_at}, secret_key, algorithm=JWT_ALGORITHM)
    return token, claims


def read_token(token: str, secret_key: str) -> TokenClaims:
    """The claims of a token this service signed; AuthError when it is forged, malformed or expired."""
    try:
        c = jwt.decode(token, secret_key, algorithms=[JWT_ALGORITHM],
                       options={"require": ["exp", "sub", "uid", "ver", "jti"]})
    except jwt.ExpiredSignatureError as exc:
        raise AuthError("登录已过期，请重新登录 (token expired)", expired=True) from exc
    except jwt.PyJWTError as exc:
        raise AuthError("登录凭证无效 (invalid token)") from exc
    if not (isinstance(c["uid"], int) and isinstance(c["ver"], int) and isinstance(c["sub"], str)
            and isinstance(c["jti"], str)):
        raise AuthError("登录凭证无效 (invalid token)")
    return TokenClaims(c["sub"], c["uid"], c["ver"], c["jti"], datetime.fromtimestamp(c["exp"], timezone.utc))


# -- the signing key -------------------------------------------------------------------------------


def signing_key(configured: str | None, home: Path, production: bool) -> str:
    """The key that signs tokens: the configured one (production requires it, strong); elsewhere, when
    none is configured, a random key created once for this install in ``<home>/secret_key`` (mode 600)."""
    if configured:
        if production and (configured in DENIED_PASSWORDS or len(configured) < MIN_SECRET_CHARS):
            raise ValueError(f"production refuses a default or short secret_key: set WATERWATCH_AUTH__SECRET_KEY "
                             f"to a random string of at least {MIN_SECRET_CHARS} characters")
        return configured
    if production:
        raise ValueError("production needs a secret_key: set WATERWATCH_AUTH__SECRET_KEY to a random string of at "
                         f"least {MIN_SECRET_CHARS} characters")
    path = Path(home) / KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process of this install created it first
            pass
        else:
            with os.fdopen(fd, "w", encoding="ascii") as f:
                f.write(secrets.token_urlsafe(48))
    return path.read_text(encoding="ascii").strip()
