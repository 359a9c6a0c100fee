"""Users and API keys: create, list, deactivate, reactivate, new password, keys; every change audited.

Deactivating a user or changing a password bumps the user's token version, which revokes every token
issued before, at once. Deactivating also revokes the user's API keys for good: a key shut off because it
leaked must not come back when the account does, so a reactivated system account needs new keys. An
officer's district must be one the store's published leads know (a typo would leave them an empty queue).
Demo users exist only outside production, and production refuses to start while one of them (or any
account still on the demo password) can log in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from serving.audit import audit
from serving.roles import ROLES
from serving.security import (STANDARD_COST, check_hash_cost, check_password_policy, hash_password, key_digest,
                              new_api_key, verify_password)
from serving.store import ApiKey, Lead, User, utcnow

DEMO_PASSWORD = "demo-password"
# demo users of a non-production install: (username, role, district); officers follow, one per district
DEMO_USERS = (("supervisor", "supervisor", None), ("analyst", "analyst", None), ("admin", "admin", None))


def _user(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise ValueError(f"no user {username!r}")
    return user


def create_user(session: Session, username: str, password: str | None, role: str, district: str | None = None,
                production: bool = False, actor: str = "cli", is_demo: bool = False, city: str | None = None,
                hash_cost: str = STANDARD_COST) -> User:
    """Add a user (``waterwatch users add``). Officers need a district (of ``city`` in a province's store: an
    officer works one city's district); ``city`` binds any user to that city; systems may have no password.
    ``hash_cost``: ``auth.password_hash_cost``."""
    username = (username or "").strip()
    if not username or len(username) > 64:
        raise ValueError("username must be 1 to 64 characters")
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    district = (district or "").strip()[:64] or None
    if role == "officer" and not district:
        raise ValueError("an officer needs a district")
    if district is not None:
        check_district(session, district, city or None)
    if password is not None:
        check_password_policy(password, production)
        check_hash_cost(hash_cost, production)
    if session.scalar(select(User).where(User.username == username)) is not None:
        raise ValueError(f"user {username!r} already exists")
    user = User(username=username, password_hash=hash_password(password, hash_cost) if password else None, role=role,
                district=district, city=city or None, is_demo=is_demo)
    session.add(user)
    session.flush()
    audit(session, actor, "user_create", "user", username, {"role": role, "district": district, "city": city})
    return user


def known_districts(session: Session, city: str | None = None) -> list[str]:
    """The districts of the leads published for ``city`` (None: a city run's), where officers can work."""
    where = Lead.city.is_(None) if city is None else Lead.city == city
    return sorted(d for d in session.scalars(select(Lead.district).distinct().where(where)) if d)


def check_district(session: Session, district: str, city: str | None = None) -> None:
    """Refuse a district the store's published leads of ``city`` do not know (a typo would give the officer
    an empty queue and no hint). A store with nothing published there yet cannot tell: the CLI warns."""
    known = known_districts(session, city)
    if known and district not in known:
        raise ValueError(f"unknown district {district!r}{' in ' + city if city else ''}; "
                         f"the published districts are: {', '.join(known)}")


def set_password(session: Session, username: str, password: str, production: bool = False,
                 actor: str = "cli", hash_cost: str = STANDARD_COST) -> None:
    """A new password; every token issued before stops working."""
    check_password_policy(password, production)
    check_hash_cost(hash_cost, production)
    user = _user(session, username)
    user.password_hash, user.is_demo = hash_password(password, hash_cost), False
    user.token_version, user.updated_at = user.token_version + 1, utcnow()
    audit(session, actor, "user_password", "user", username)


def set_active(session: Session, username: str, active: bool, actor: str = "cli") -> User:
    """Deactivate a user (every token and API key of it stops working at once, for good) or reactivate it
    (it logs in again with its password; earlier tokens and keys stay revoked: a system needs a new key).
    Keys a deactivation made before keys were revoked with it left live are revoked on reactivation."""
    user = _user(session, username)
    if user.active != active:
        was_active = user.active
        user.active, user.updated_at = active, utcnow()
        if not active:
            user.token_version += 1
        audit(session, actor, "user_reactivate" if active else "user_deactivate", "user", username)
        revoke_keys(session, username, actor=actor, reason="user_deactivate" if was_active else "user_reactivate")
    return user


def set_city(session: Session, username: str, city: str | None, district: str | None = None,
             actor: str = "cli") -> User:
    """Bind a user to another city of a province's store (None: to every city, a province role). The city is
    read from the store on every request, so the move counts from the user's next request and no token is
    revoked. An officer works a district of their city: moved to another city, they need its district."""
    user = _user(session, username)
    city = (city or "").strip()[:64] or None
    district = (district or "").strip()[:64] or None
    if user.role == "officer" and city != user.city and district is None:
        raise ValueError("an officer moved to another city needs --district (a district of that city)")
    if district is not None:
        check_district(session, district, city)
    before = {"city": user.city, "district": user.district}
    user.city, user.district = city, district or user.district
    user.updated_at = utcnow()
    audit(session, actor, "user_city", "user", username, {"from": before, "city": city, "district": user.district})
    return user


@dataclass(frozen=True)
class UserRow:
    username: str
    role: str
    district: str | None
    active: bool
    keys: int  # API keys not revoked
    created_at: datetime
    city: str | None = None


def list_users(session: Session) -> list[UserRow]:
    keys = dict(session.execute(select(ApiKey.user_id, func.count()).where(ApiKey.revoked.is_(False))
                                .group_by(ApiKey.user_id)).all())
    return [UserRow(u.username, u.role, u.district, bool(u.active), keys.get(u.id, 0), u.created_at, u.city)
            for u in session.scalars(select(User).order_by(User.username))]


def create_api_key(session: Session, username: str, label: str | None = None, actor: str = "cli") -> str:
    """A new key for ``username``; the plain key is returned once and only its digest is kept."""
    user = _user(session, username)
    key = new_api_key()
    row = ApiKey(user_id=user.id, key_hash=key_digest(key), label=label)
    session.add(row)
    session.flush()
    audit(session, actor, "key_create", "api_key", row.id, {"user": username, "label": label})
    return key


def revoke_keys(session: Session, username: str, key_id: int | None = None, actor: str = "cli",
                reason: str | None = None) -> int:
    """Revoke one key of ``username`` (``key_id``) or all of them; returns how many were revoked. ``reason``
    (audited): the user change that revoked them, when not a revocation of its own."""
    user = _user(session, username)
    q = select(ApiKey).where(ApiKey.user_id == user.id, ApiKey.revoked.is_(False))
    keys = list(session.scalars(q if key_id is None else q.where(ApiKey.id == key_id)))
    for key in keys:
        key.revoked = True
        audit(session, actor, "key_revoke", "api_key", key.id,
              {"user": username, "label": key.label, **({"reason": reason} if reason else {})})
    return len(keys)


def ensure_demo_users(session: Session, production: bool, districts=(), hash_cost: str = STANDARD_COST) -> list[str]:
    """Demo supervisor/analyst/admin and one officer per district (password ``demo-password``), only
    outside production; ``districts``: names, or (city, district) pairs in a store a province's cities share
    (an officer works one city's district). Returns the usernames created."""
    if production:
        return []
    places = sorted({d if isinstance(d, tuple) else (None, d) for d in districts}, key=lambda p: (p[0] or "", p[1]))
    wanted = [(*u, None) for u in DEMO_USERS] + [(f"officer{i + 1}", "officer", d, c)
                                                 for i, (c, d) in enumerate(places)]
    existing = set(session.scalars(select(User.username).where(User.username.in_([w[0] for w in wanted]))))
    created = []
    for username, role, district, city in wanted:
        if username not in existing:
            create_user(session, username, DEMO_PASSWORD, role, district, actor="system", is_demo=True, city=city,
                        hash_cost=hash_cost)
            created.append(username)
    return created


def demo_logins(session: Session) -> list[str]:
    """Active accounts a demo login still opens: created as demo users, or named like one and still on the
    demo password (stores made before demo users were marked)."""
    demo_names = [name for name, _, _ in DEMO_USERS]
    users = session.scalars(select(User).where(User.active.is_(True), User.password_hash.is_not(None),
                                               (User.is_demo.is_(True)) | User.username.in_(demo_names)
                                               | User.username.like("officer%"))).all()
    return sorted(u.username for u in users if u.is_demo or verify_password(DEMO_PASSWORD, u.password_hash))
