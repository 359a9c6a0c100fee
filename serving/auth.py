"""Who may do what: users with roles, argon2 passwords, signed login tokens and API keys for systems.

Officers act only within their own district; supervisors assign; analysts read; admins also run the
service (reload the model). Other systems (the SMS gateway, the tax bureau) call with an API key
bound to a user and its role. Production refuses weak passwords and never creates demo users.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import jwt
from pwdlib import PasswordHash
from sqlalchemy import select
from sqlalchemy.orm import Session

from serving.errors import NotAuthenticated
from serving.roles import ROLES
from serving.store import ApiKey, AuditLog, User

JWT_ALGORITHM = "HS256"
MIN_PASSWORD_CHARS = 12
DENIED_PASSWORDS = frozenset(
    {"password", "password123", "123456", "12345678", "123456789012", "admin", "admin123", "changeme",
     "letmein", "qwerty", "waterwatch", "demo", "officer", "supervisor", "analyst", "demo-password",
     "waterwatch123", "passwordpassword", "dev-only-secret-change-me",
     "dev-only-secret-never-use-in-production"}
)
DEMO_PASSWORD = "demo-password"
# demo users of a non-production install: (username, role, district)
DEMO_USERS = (("supervisor", "supervisor", None), ("analyst", "analyst", None), ("admin", "admin", None))

_hasher = PasswordHash.recommended()


class AuthError(NotAuthenticated):
    """A credential was refused; the message says why without revealing which part was wrong."""


class PasswordPolicyError(ValueError):
    pass


@dataclass(frozen=True)
class Principal:
    """The caller of a request: a logged-in user or a system with an API key."""

    username: str
    role: str
    district: str | None = None
    via: str = "token"

    @property
    def is_officer(self) -> bool:
        return self.role == "officer"


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password: str, password_hash: str | None) -> bool:
    if not password_hash:
        return False
    try:
        return _hasher.verify(password, password_hash)
    except Exception:  # a malformed stored hash is a refusal, not a crash
        return False


def check_password_policy(password: str, production: bool) -> None:
    """In production: at least 12 characters and not a known default; always: not empty."""
    if not password:
        raise PasswordPolicyError("密码不能为空 (password must not be empty)")
    if production and (len(password) < MIN_PASSWORD_CHARS or password.lower() in DENIED_PASSWORDS):
        raise PasswordPolicyError(
            f"生产环境不允许使用弱密码或默认密码：至少{MIN_PASSWORD_CHARS}个字符，且不能是常见密码 "
            f"(production refuses default or short passwords: at least {MIN_PASSWORD_CHARS} characters)"
        )


def create_user(
    session: Session, username: str, password: str | None, role: str, district: str | None = None,
    production: bool = False,
) -> User:
    """Add a user (``waterwatch users add``). Officers need a district; systems may have no password."""
    username = (username or "").strip()
    if not username:
        raise ValueError("username must not be empty")
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    if role == "officer" and not district:
        raise ValueError("an officer needs a district")
    if password is not None:
        check_password_policy(password, production)
    if session.scalar(select(User).where(User.username == username)) is not None:
        raise ValueError(f"user {username!r} already exists")
    user = User(username=username, password_hash=hash_password(password) if password else None, role=role,
                district=district)
    session.add(user)
    session.flush()
    return user


def set_password(session: Session, username: str, password: str, production: bool = False) -> None:
    check_password_policy(password, production)
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise ValueError(f"no user {username!r}")
    user.password_hash = hash_password(password)


def create_api_key(session: Session, username: str, label: str | None = None) -> str:
    """A new key for ``username``; the plain key is returned once and only its hash is kept."""
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise ValueError(f"no user {username!r}")
    key = "ww_" + secrets.token_urlsafe(32)
    session.add(ApiKey(user_id=user.id, key_hash=_key_hash(key), label=label))
    session.flush()
    return key


def _key_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def authenticate(session: Session, username: str, password: str) -> Principal:
    user = session.scalar(select(User).where(User.username == username))
    if user is None or not user.active or not verify_password(password, user.password_hash):
        raise AuthError("用户名或密码错误 (wrong username or password)")
    return Principal(user.username, user.role, user.district, via="password")


def principal_from_api_key(session: Session, key: str) -> Principal:
    row = session.execute(
        select(User, ApiKey).join(ApiKey, ApiKey.user_id == User.id).where(ApiKey.key_hash == _key_hash(key))
    ).first()
    if row is None or row.ApiKey.revoked or not row.User.active:
        raise AuthError("API key 无效或已撤销 (invalid or revoked API key)")
    return Principal(row.User.username, row.User.role, row.User.district, via="api_key")


def issue_token(principal: Principal, secret_key: str, minutes: int) -> str:
    now = datetime.now(timezone.utc)
    claims = {"sub": principal.username, "role": principal.role, "district": principal.district,
              "iat": now, "exp": now + timedelta(minutes=minutes)}
    return jwt.encode(claims, secret_key, algorithm=JWT_ALGORITHM)


def principal_from_token(token: str, secret_key: str) -> Principal:
    try:
        claims = jwt.decode(token, secret_key, algorithms=[JWT_ALGORITHM], options={"require": ["exp", "sub"]})
    except jwt.ExpiredSignatureError as exc:
        raise AuthError("登录已过期，请重新登录 (token expired)", expired=True) from exc
    except jwt.PyJWTError as exc:
        raise AuthError("登录凭证无效 (invalid token)") from exc
    if claims.get("role") not in ROLES:
        raise AuthError("登录凭证无效 (invalid token)")
    return Principal(str(claims["sub"]), claims["role"], claims.get("district"), via="token")


def audit(session: Session, actor: str, action: str, object_type: str, object_id, detail: dict | None = None) -> None:
    """One line of the audit log; written in the same transaction as the change it records."""
    session.add(AuditLog(actor=actor, action=action, object_type=object_type, object_id=str(object_id),
                         detail=detail or {}))


def ensure_demo_users(session: Session, production: bool, districts: list[str] | tuple[str, ...] = ()) -> list[str]:
    """Demo supervisor/analyst/admin and one officer per district (password ``demo-password``), only
    outside production. Returns the usernames created."""
    if production:
        return []
    wanted = list(DEMO_USERS) + [(f"officer{i + 1}", "officer", d) for i, d in enumerate(sorted(set(districts)))]
    existing = set(session.scalars(select(User.username).where(User.username.in_([w[0] for w in wanted]))))
    created = []
    for username, role, district in wanted:
        if username not in existing:
            create_user(session, username, DEMO_PASSWORD, role, district, production=False)
            created.append(username)
    return created
