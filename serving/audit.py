"""The audit log: who did what to which object, written in the same transaction as the change it records."""

from __future__ import annotations

from sqlalchemy.orm import Session

from serving.store import AuditLog


def audit(session: Session, actor: str, action: str, object_type: str, object_id, detail: dict | None = None) -> None:
    """One line of the audit log (``actor`` is a username, ``system`` or ``cli``)."""
    session.add(AuditLog(actor=str(actor)[:64], action=action, object_type=object_type, object_id=str(object_id)[:64],
                         detail=detail or {}))
