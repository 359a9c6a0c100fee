"""The SMS outbox: user-facing alerts become text messages, each queued exactly once.

A message id hashes only the alert id, and an alert id hashes (kind, level,
uscc, permit, period): the same reminder in next month's run maps to the same
message id and is skipped, while an escalation (yellow -> orange) is a new
alert and so a new message. The contract has no phone numbers, so the
recipient is the entity (uscc and registered name); the SMS gateway resolves it.
"""

from __future__ import annotations

import hashlib
import re

import pandas as pd

from models.settings import RuleSettings

OUTBOX_COLUMNS = ["message_id", "alert_id", "kind", "level", "uscc", "recipient", "text", "segments", "segment_count", "status"]
_BREAKS = re.compile(r"(?<=[，。；：！？、）】])")  # not ASCII ".": 5.4万m³ must stay whole


def message_id(alert_id: str) -> str:
    return hashlib.sha1(f"sms|{alert_id}".encode("utf-8")).hexdigest()[:16]


def split_segments(text: str, limit: int) -> list[str]:
    """Split a message into SMS segments of at most ``limit`` characters.

    Long texts carry a "(i/n)" marker so the recipient can reassemble them if the
    carrier does not; cuts fall after punctuation when a clause fits, else hard.
    """
    if limit < 8:
        raise ValueError("an SMS segment must hold at least 8 characters")
    if len(text) <= limit:
        return [text]
    clauses = [c for c in _BREAKS.split(text) if c]
    for n_guess in (9, 99, 999):  # the marker's width depends on the number of segments
        room = limit - len(f"({n_guess}/{n_guess})")
        chunks: list[str] = []
        current = ""
        for clause in clauses:
            while len(clause) > room:  # a clause too long for any segment: cut it hard
                if current:
                    chunks.append(current)
                    current = ""
                chunks.append(clause[:room])
                clause = clause[room:]
            if current and len(current) + len(clause) > room:
                chunks.append(current)
                current = clause
            else:
                current += clause
        if current:
            chunks.append(current)
        if len(chunks) <= n_guess:
            n = len(chunks)
            return [f"{chunk}({i}/{n})" for i, chunk in enumerate(chunks, 1)]
    raise ValueError("message too long to send as SMS")


def build_outbox(alerts: pd.DataFrame, entities: pd.DataFrame, already_queued: set[str], rules: RuleSettings) -> pd.DataFrame:
    """New SMS rows (status ``queued``) for user alerts whose message is not already in the outbox."""
    user = alerts[(alerts["audience"] == "user") & alerts["uscc"].fillna("").ne("")]
    user = user.drop_duplicates("alert_id")
    ids = user["alert_id"].map(message_id)
    fresh = user[~ids.isin(set(already_queued))].copy()
    fresh["message_id"] = ids[fresh.index]
    names = entities.drop_duplicates("uscc").set_index("uscc")["name"]
    fallback = fresh["name"] if "name" in fresh.columns else pd.Series("", index=fresh.index)
    fresh["recipient"] = fresh["uscc"].map(names).fillna(fallback).fillna("")
    fresh["text"] = fresh["message"].astype("str")
    # per-message string work: the outbox holds alerts, not department rows
    fresh["segments"] = [split_segments(t, rules.sms_segment_chars) for t in fresh["text"]]
    fresh["segment_count"] = fresh["segments"].map(len).astype("int64")
    fresh["status"] = "queued"
    if fresh.empty:
        return pd.DataFrame({c: pd.Series(dtype="int64" if c == "segment_count" else "object" if c == "segments" else "str") for c in OUTBOX_COLUMNS})
    return fresh[OUTBOX_COLUMNS].sort_values("message_id").reset_index(drop=True)
