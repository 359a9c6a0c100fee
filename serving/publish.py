"""Publishing a run: the files of an output folder into the store, in one transaction, without losing
anyone's work.

A run re-ranks the queue; it never resets it. Open leads keep their status, officer and history (an open lead
whose entity the run puts in another district moves to that district, and an officer of the old one who held it
lets it go, with an event and an audit entry); a
lead closed by a verdict stays closed and its entity takes no queue slot, unless the run holds evidence
dated after the visit (an alert of a later period, a level shift that began later) and ranks the entity
into the queue again: then it gets a new lead that points back to the closed one. Cases (documented
breaches) keep their status across runs the same way. History is appended,
never rewritten. Outbox messages already there keep their delivery status. Publishing the same run
twice changes nothing the second time. The publish locks the leads first, so verdicts posted meanwhile
wait for it and are never overwritten.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from serving import run_files as files
from serving.audit import audit
from serving.history import publish_inspections
from serving.queue import build_queue
from serving.run_models import lost_copy, recorded
from serving.run_files import PublishError, load_leads  # noqa: F401 - the publish API
from serving.store import (
    Account,
    Alert,
    Case,
    Entity,
    Lead,
    LeadEvent,
    OutboxMessage,
    Permit,
    Run,
    Score,
    Series,
    User,
    Verdict,
    WaterRight,
    begin_write,
    utcnow,
)

CHUNK = 5000
LOCKED = ("leads", "lead_events", "verdicts")
LEAD_FIELDS = ["uscc", "name", "district", "industry_code", "rank", "queue_position", "risk_score", "reasons",
               "reason_codes", "queue_probability", "exploratory"]
CASE_FACTS = [c for c in files.CASE_COLUMNS if c != "opened_as_of"]  # what a later run updates


def _bulk(session: Session, statement, rows: list[dict]) -> None:
    for start in range(0, len(rows), CHUNK):
        session.execute(statement, rows[start:start + CHUNK])


def _upsert(session: Session, model, key: str, rows: list[dict]) -> int:
    """Insert new keys, update existing ones (portable across SQLite and PostgreSQL); returns rows written."""
    existing = set(session.scalars(select(getattr(model, key))))
    _bulk(session, insert(model), [r for r in rows if r[key] not in existing])
    _bulk(session, update(model), [r for r in rows if r[key] in existing])
    return len(rows)


def _replace(session: Session, model, rows: list[dict] | None, where=None,
             scope: list[str] | None = None) -> int | None:
    """Delete then insert. ``scope`` (a province city's entities): delete only their rows, so that the other
    cities' rows stay."""
    if rows is None:
        return None
    if scope is None:
        session.execute(delete(model) if where is None else delete(model).where(where))
    else:
        for start in range(0, len(scope), CHUNK):
            session.execute(delete(model).where(model.uscc.in_(scope[start:start + CHUNK])))
    _bulk(session, insert(model), rows)
    return len(rows)


def run_city(info: dict) -> str | None:
    """The city a run is of: a province run writes ``{"city": {"folder", "name", "division"}}`` into each city
    folder's model.json (one store may hold every city); None for a city run."""
    city = info.get("city")
    if isinstance(city, dict):
        city = city.get("name") or city.get("folder")
    return str(city)[:64] if city else None


def city_is(column, city: str | None):
    """The rows of one city (NULL: a city run's)."""
    return column.is_(None) if city is None else column == city


# -- leads -----------------------------------------------------------------------------------------------


def _closed_visits(session: Session, closed: dict[str, int]) -> dict[str, date]:
    """Visit date of the verdict that closed each entity's latest lead."""
    lead_to_uscc = {lead_id: uscc for uscc, lead_id in closed.items()}
    visits: dict[str, date] = {}
    for lead_id, visited in session.execute(select(Verdict.lead_id, func.max(Verdict.visited_on))
                                            .where(Verdict.superseded.is_(False), Verdict.outcome != "unreachable")
                                            .group_by(Verdict.lead_id)):  # not the unreachable visits before it
        if lead_id in lead_to_uscc:
            visits[lead_to_uscc[lead_id]] = visited
    return visits


def _raised_again(visits: dict[str, date], evidence: dict[str, list[tuple[date, str]]]) -> dict[str, list[str]]:
    """Entities of closed leads with evidence dated after their visit, and that evidence."""
    raised = {}
    for uscc, visited in visits.items():
        later = [what for when, what in evidence.get(uscc, []) if when is not None and when > visited]
        if later:
            raised[uscc] = later
    return raised


def _lead_state(session: Session, city: str | None) -> tuple[pd.DataFrame, dict[str, int]]:
    """The city's open leads (one per entity) and, for entities without one, the id of their latest closed lead."""
    rows = pd.DataFrame(session.execute(select(Lead.id, Lead.uscc, Lead.status, Lead.run_id, Lead.district,
                                               Lead.assigned_officer).where(city_is(Lead.city, city))).all(),
                        columns=["id", "uscc", "status", "run_id", "district", "officer"])
    open_ = rows[rows["status"] != "closed"]
    closed = rows[(rows["status"] == "closed") & ~rows["uscc"].isin(open_["uscc"])]
    return open_, closed.groupby("uscc")["id"].max().to_dict()


def _new_leads(session: Session, fresh: pd.DataFrame, run_id: str, closed: dict[str, int],
               raised: dict[str, list[str]], now, city: str | None) -> int:
    rows = files.records(fresh, LEAD_FIELDS)
    for row in rows:
        row.update(run_id=run_id, city=city, status="new", in_queue=True, previous_lead_id=closed.get(row["uscc"]),
                   created_at=now, updated_at=now)
    _bulk(session, insert(Lead), rows)
    ids = dict(session.execute(select(Lead.uscc, Lead.id).where(Lead.uscc.in_(fresh["uscc"].tolist()),
                                                                Lead.status != "closed")).all())
    events = [{"lead_id": ids[r["uscc"]], "at": now, "event": "queued", "run_id": run_id,
               "detail": {"rank": int(r["rank"]), **({"previous_lead_id": r["previous_lead_id"],
                                                      "evidence": raised[r["uscc"]]} if r["previous_lead_id"] else {})}}
              for r in rows]
    _bulk(session, insert(LeadEvent), events)
    return len(rows)


def _new_district(scored: pd.DataFrame, uscc: str, district: str | None) -> str | None:
    """The entity's district in this run when it differs from its open lead's (None: the same, or none given)."""
    now = scored.loc[uscc, "district"]
    return now if isinstance(now, str) and now.strip() and now != district else None


def _move(session: Session, row: dict, events: list[dict], lead: tuple, to: str, officers: dict, city: str | None,
          run_id: str, now) -> bool:
    """An open lead follows its entity to another district (the new district's queue, its officers); an officer
    of another district who held it lets it go (an event and an audit entry; its assignments and visits stay its
    history). Returns whether it was unassigned."""
    lead_id, uscc, _status, _run, district, officer = lead
    officer = officer if isinstance(officer, str) else None  # NULL comes back from the frame as NaN
    row["district"] = to
    events.append({"lead_id": lead_id, "at": now, "event": "moved", "run_id": run_id, "actor": "system",
                   "detail": {"from": district, "to": to}})
    if officer is None or officers.get(officer) == (city, to):
        return False
    row.update(assigned_officer=None, status="new")
    events.append({"lead_id": lead_id, "at": now, "event": "unassigned", "run_id": run_id, "actor": "system",
                   "detail": {"officer": officer, "reason": "district_changed"}})
    audit(session, "system", "unassign", "lead", lead_id,
          {"officer": officer, "from": district, "to": to, "uscc": uscc, "run_id": run_id})
    return True


def _officer_districts(session: Session) -> dict[str, tuple[str | None, str | None]]:
    return {name: (c, d) for name, c, d in session.execute(select(User.username, User.city, User.district)
                                                            .where(User.role == "officer"))}


def _update_open(session: Session, open_: pd.DataFrame, leads: pd.DataFrame, queue: pd.DataFrame, run_id: str,
                 now, city: str | None = None) -> int:
    """Re-rank the open leads: in the queue when drawn or already in hand; untouched ones enter afresh. A lead whose
    entity this run puts in another district moves there (``_move``)."""
    scored, queued = leads.set_index("uscc"), queue.set_index("uscc")
    updates, events, officers = [], [], None
    for lead in open_.itertuples(index=False, name=None):
        lead_id, uscc, status, last_run, district = lead[:5]
        district = district if isinstance(district, str) else None
        in_hand = status in ("assigned", "in_progress")
        if uscc not in scored.index:  # the entity left the register: only work in hand stays in the queue
            updates.append({"id": lead_id, "in_queue": in_hand, "queue_position": None})
            continue
        q = uscc in queued.index
        src = queued.loc[uscc] if q else scored.loc[uscc]
        row = {"id": lead_id, "rank": int(src["rank"]), "risk_score": float(src["risk_score"]),
               "reasons": None if pd.isna(src["reasons"]) else src["reasons"], "reason_codes": src["reason_codes"],
               "queue_position": int(src["queue_position"]) if q else None}
        to = _new_district(scored, uscc, district)
        if to is not None:
            officers = _officer_districts(session) if officers is None else officers
            if _move(session, row, events, lead, to, officers, city, run_id, now):
                status, in_hand = "new", False
        row["in_queue"] = bool(q or in_hand)
        if status == "new" and q:  # untouched leads enter afresh: their chance of entering is this run's
            row.update(queue_probability=float(src["queue_probability"]), exploratory=bool(src["exploratory"]))
        if last_run != run_id:
            row.update(run_id=run_id, updated_at=now)
            events.append({"lead_id": lead_id, "at": now, "event": "queued" if q and not in_hand else "re-scored",
                           "run_id": run_id,
                           "detail": {"rank": int(src["rank"])}})
        updates.append(row)
    _bulk(session, update(Lead), updates)
    _bulk(session, insert(LeadEvent), events)
    return len(updates)


def _publish_leads(session: Session, run_id: str, leads: pd.DataFrame, model_settings,
                   evidence: dict[str, list[tuple[date, str]]], city: str | None) -> dict[str, int]:
    open_, closed = _lead_state(session, city)
    raised = _raised_again(_closed_visits(session, closed), evidence)
    candidates = leads[~leads["uscc"].isin(set(closed) - set(raised))]
    seed = (int(getattr(model_settings, "random_state", 0)) * 1_000_003 + int(run_id.encode().hex()[-8:], 16)) % 2**32
    queue = build_queue(candidates, int(model_settings.officer_capacity_k), float(model_settings.exploration_share),
                        seed)
    now = utcnow()
    fresh = queue[~queue["uscc"].isin(set(open_["uscc"]))]
    new = _new_leads(session, fresh, run_id, {u: closed[u] for u in raised}, raised, now, city)
    updated = _update_open(session, open_, leads, queue, run_id, now, city)
    return {"queue": len(queue), "leads_new": new, "leads_reraised": int(fresh["uscc"].isin(raised).sum()),
            "leads_updated": updated, "closed_kept_out": len(set(closed) - set(raised))}


# -- the run -----------------------------------------------------------------------------------------------


def _register_run(session: Session, run_id: str, as_of, info: dict, leads: pd.DataFrame, city: str | None,
                  version: str | None) -> None:
    """The run's row; ``version``: the model that scored its leads (``run_files.scored_version``)."""
    run = session.get(Run, run_id)
    if run is None:
        session.add(Run(run_id=run_id, as_of=None if as_of is None else as_of.date(),
                        model_version=None if version is None else str(version), model_info=info,
                        entities=len(leads), city=city))
        session.flush()
    else:
        run.model_info, run.city, run.updated_at = info, city, utcnow()


def _publish_register(session: Session, out: Path, leads: pd.DataFrame, city: str | None) -> dict[str, Any]:
    """The register: a city's run replaces that city's permits and linked accounts (and no other city's: two
    cities may number permits and accounts alike, and a water and a sewer account may share a number)."""
    entities, permits, accounts = files.read_register(out, leads)
    _replace(session, Permit, None if permits is None else [{**p, "city": city or ""} for p in permits],
             Permit.city == (city or ""))
    _replace(session, Account, None if accounts is None else [{**a, "city": city or ""} for a in accounts],
             Account.city == (city or ""))
    return {"entities": _upsert(session, Entity, "uscc", entities)}


def _publish_checks(session: Session, out: Path, run_id: str, alerts: pd.DataFrame | None,
                    city: str | None) -> dict[str, Any]:
    counts: dict[str, Any] = {}
    if alerts is not None:
        counts["alerts"] = _upsert(session, Alert, "alert_id", files.records(
            alerts.assign(run_id=run_id, city=city), files.ALERT_COLUMNS + ["run_id", "city"]))
    outbox = files.read_outbox(out)
    if outbox is not None:
        known = set(session.scalars(select(OutboxMessage.message_id)))
        outbox = outbox[~outbox["message_id"].isin(known)].assign(run_id=run_id, status="queued")
        _bulk(session, insert(OutboxMessage), files.records(outbox, files.OUTBOX_COLUMNS + ["run_id"]))
        counts["outbox_new"] = len(outbox)
    rights = files.read_rights(out)
    if rights is not None:
        counts["water_rights"] = _replace(session, WaterRight, files.records(
            rights.assign(run_id=run_id), files.RIGHTS_COLUMNS + ["run_id"]), WaterRight.run_id == run_id)
    return counts


def _publish_cases(session: Session, cases: pd.DataFrame | None, run_id: str, city: str | None) -> dict[str, int]:
    """New cases open; a case the store already has gets this run's facts and keeps its status and assignee."""
    if cases is None:
        return {}
    rows = files.records(cases.assign(run_id=run_id, city=city), files.CASE_COLUMNS + ["run_id", "city"])
    known, now = set(session.scalars(select(Case.case_id))), utcnow()
    new = [{**r, "status": "open", "created_at": now, "updated_at": now} for r in rows if r["case_id"] not in known]
    old = [{k: r[k] for k in (*CASE_FACTS, "run_id", "city")} for r in rows if r["case_id"] in known]
    _bulk(session, insert(Case), new)
    _bulk(session, update(Case), old)
    return {"cases_new": len(new), "cases_updated": len(old)}


def publish_run(out_dir: Path | str, session_factory: sessionmaker, settings) -> dict:
    """Load one run's output folder into the store, in one transaction; returns counts of what it wrote."""
    out = Path(out_dir)
    leads = files.load_leads(out / "leads.csv")
    info = files.model_info(out)
    version = files.scored_version(out, leads, info)  # refuses a model.json of another model than the leads'
    run_id, as_of = files.run_identity(out, (out / "leads.csv").read_bytes(), info)
    alerts = files.read_alerts(out)
    series = files.read_series(out, run_id)
    city = run_city(info)
    scope = None if city is None else leads["uscc"].tolist()  # a province city: the other cities' rows stay
    counts: dict[str, Any] = {"run_id": run_id, "as_of": None if as_of is None else as_of.date().isoformat(),
                              **({"city": city} if city else {})}
    with session_factory() as session, session.begin():
        begin_write(session, *LOCKED)
        stored = recorded(info, out, getattr(settings, "home", None))
        _register_run(session, run_id, as_of, stored, leads, city, version)
        session.flush()  # the run row written: a prune of kept copies waits for this transaction, or it for one
        lost = lost_copy(stored, getattr(settings, "home", None))
        if lost:  # pruned before this publish (no run named it): the leads' model is gone, predict would answer 503
            raise PublishError(f"{out / 'model.json'} names {info['artifact']}, which is gone ({lost}: pruned, no "
                               f"published run named it); score the run again (`waterwatch score --workspace WS "
                               f"--out {out / 'leads.csv'}`), then publish")
        counts.update(_publish_register(session, out, leads, city))
        counts["scores"] = _replace(session, Score, files.records(
            leads[["uscc", "rank", "risk_score", "reasons", "reason_codes"]].assign(run_id=run_id)), Score.run_id == run_id)
        counts.update(_publish_leads(session, run_id, leads, getattr(settings, "model", settings),
                                     files.dated_evidence(alerts, series), city))
        counts.update(_publish_checks(session, out, run_id, alerts, city))
        counts.update(_publish_cases(session, files.read_cases(out), run_id, city))
        counts["series"] = _replace(session, Series, series, scope=scope)
        counts["dept_inspections"] = publish_inspections(session, out, run_id, scope)
        audit(session, "system", "publish", "run", run_id, {k: v for k, v in counts.items() if k != "run_id"})
    return counts


def current_run(session: Session) -> Run | None:
    """The live run: the one published (or re-published) last."""
    return session.scalars(select(Run).order_by(Run.updated_at.desc(), Run.published_at.desc()).limit(1)).first()
