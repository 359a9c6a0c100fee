"""Province runs (issue #13 item 3): several cities in one drop, settings per city, one model,
leads per city, the cities side by side."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from console_forms import post_login
from waterwatch.province import province_cities, run_province
from waterwatch.settings import CitySettings, ModelSettings, Settings

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def province_drop(tmp_path_factory) -> Path:
    from synth import SynthConfig, generate_city

    drop = tmp_path_factory.mktemp("province") / "drop"
    for i, division in enumerate(("371400", "371500")):  # small cities: what is checked does not depend on size
        generate_city(SynthConfig(entities=300, seed=20 + i, city_division=division), drop / f"city={division}")
    (drop / "province.json").write_text(json.dumps({"province": "山东省", "cities": [
        {"folder": "city=371400", "city": "德州市", "division": "371400"},
        {"folder": "city=371500", "city": "聊城市", "division": "371500"},
    ]}, ensure_ascii=False), encoding="utf-8")
    return drop


def test_province_run_keeps_cities_apart_and_ranks_them_together(province_drop, tmp_path, monkeypatch):
    """The cities' stages run here, one after the other (``scale.workers=1``): in the default process pool each
    stage of each city would start a fresh interpreter (six starts, some 40% of this test's time, measured). The
    pool is checked on its own by ``test_the_city_pool_runs_a_citys_stage_in_a_spawned_process_as_here``."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert [c["folder"] for c in province_cities(province_drop)] == ["city=371400", "city=371500"]
    settings = Settings(home=tmp_path / "var", show_progress=False, model=ModelSettings(backtest_cutoffs=2),
                        cities={"371500": CitySettings(bureau_name="聊城市水利局", tax_rate_groundwater_yuan=4.0)})
    settings.scale.workers = 1
    out = tmp_path / "out"
    result = run_province(province_drop, out, settings, trials=0)

    leads = pd.read_csv(out / "leads.csv", dtype={"uscc": str})
    assert set(leads["city"]) == {"city=371400", "city=371500"}
    assert leads["rank"].tolist() == list(range(1, len(leads) + 1))
    for folder in ("city=371400", "city=371500"):
        city = pd.read_csv(out / "cities" / folder / "leads.csv", dtype={"uscc": str})
        assert city["rank"].tolist() == list(range(1, len(city) + 1))
        assert set(city["uscc"]) == set(leads.loc[leads["city"] == folder, "uscc"])
        assert city["province_rank"].is_monotonic_increasing
    # each city signs its own messages: the configured name, or "<city>水利局"
    alerts_lc = pd.read_csv(out / "cities" / "city=371500" / "alerts.csv")
    alerts_dz = pd.read_csv(out / "cities" / "city=371400" / "alerts.csv")
    user_lc = alerts_lc.loc[alerts_lc["audience"] == "user", "message"]
    user_dz = alerts_dz.loc[alerts_dz["audience"] == "user", "message"]
    assert len(user_lc) and user_lc.str.startswith("【聊城市水利局】").all()
    assert len(user_dz) and user_dz.str.startswith("【德州市水利局】").all()

    summary = pd.read_csv(out / "province_summary.csv")
    assert summary["city"].tolist() == ["city=371400", "city=371500"]
    for row in summary.itertuples():
        alerts = pd.read_csv(out / "cities" / row.city / "alerts.csv")
        assert row.alerts == len(alerts)
        assert row.alerts_red == int((alerts["level"] == "red").sum())
        assert row.cases == len(pd.read_csv(out / "cities" / row.city / "cases.csv"))
    assert summary["entities"].sum() == len(leads)
    html = (out / "province.html").read_text(encoding="utf-8")
    assert "德州市" in html and "聊城市" in html and "<script" not in html
    assert result["summary"]["leads_top_1pct"].sum() == max(1, round(0.01 * len(leads)))
    _city_folder_publishes_with_the_province_page(out, tmp_path, monkeypatch)


def test_the_city_pool_runs_a_citys_stage_in_a_spawned_process_as_here(province_drop, tmp_path):
    """``run_province``'s default pool (``scale.workers`` > 1): a city's stage function and its arguments (the city,
    paths, the province's settings) cross to a spawned process, each city's job writes its own city, and the outputs
    equal those of the same stage run in this process."""
    from features.workspace import Workspace
    from waterwatch.province import _city_pool, _ingest_city, _per_worker

    settings = Settings(home=tmp_path / "var", show_progress=False,
                        cities={"371500": CitySettings(bureau_name="聊城市水利局")})
    cities = province_cities(province_drop)
    pooled = {c["folder"]: tmp_path / "pool" / c["folder"] for c in cities}
    with _city_pool(2) as each:
        done = each(_ingest_city, [(c, province_drop / c["folder"], pooled[c["folder"]], _per_worker(settings, 2), None)
                                   for c in cities])
    assert done == [None, None]
    here = tmp_path / "here"
    _ingest_city(cities[1], province_drop / cities[1]["folder"], here, settings, None)
    one, other = Workspace(here), Workspace(pooled[cities[1]["folder"]])
    for stage, table in (("typed", "entities"), ("typed", "supply"), ("linked", "linkage")):
        pd.testing.assert_frame_equal(one.read(stage, table), other.read(stage, table))
    first = Workspace(pooled[cities[0]["folder"]]).read("typed", "entities")
    assert len(first) and not set(first["uscc"]) & set(one.read("typed", "entities")["uscc"])


def _city_folder_publishes_with_the_province_page(out: Path, tmp_path: Path, monkeypatch) -> None:
    """A city folder of the province run is a city run: it publishes into the city's store, and the
    console's province page shows every city from it (supervisors only). The demo users (one officer per
    district of each city) are hashed at the test-only cost (auth.password_hash_cost): at the standard one they took seconds here."""
    from fastapi.testclient import TestClient

    from serving.api import create_app
    from serving.services.users import DEMO_PASSWORD
    from serving.console import console_router
    from serving.publish import publish_run
    from serving.store import Lead, open_store

    from serving.settings import AuthSettings

    settings = Settings(home=tmp_path / "store", database_url=f"sqlite:///{tmp_path / 'lc.db'}",
                        auth=AuthSettings(secret_key="test-secret-0123456789abcdef-0123456789",
                                          password_hash_cost="test-only"), show_progress=False)
    _, sessions = open_store(settings.resolved_database_url())
    assert publish_run(out / "cities" / "city=371500", sessions, settings)["city"] == "聊城市"
    with sessions() as s:
        queued = s.query(Lead).filter(Lead.in_queue.is_(True)).all()
    city = pd.read_csv(out / "cities" / "city=371500" / "leads.csv", dtype={"uscc": str})
    assert queued and {lead.uscc for lead in queued} <= set(city["uscc"])  # the city's queue holds its own leads
    liaocheng = {lead.id for lead in queued}
    # the other city into the same store: each city's queue stays its own
    assert publish_run(out / "cities" / "city=371400", sessions, settings)["city"] == "德州市"
    with sessions() as s:
        by_city = {c: {lead.id for lead in s.query(Lead).filter(Lead.in_queue.is_(True), Lead.city == c)}
                   for c in ("聊城市", "德州市")}
        assert s.query(Lead).filter(Lead.city.is_(None)).count() == 0
    assert by_city["聊城市"] == liaocheng and by_city["德州市"] and not by_city["德州市"] & liaocheng
    # both cities' runs name the one kept copy of the province model that scored them: one model serves them
    from serving.runtime import ModelHolder

    # (each names it relative to its own workspace, which lies beside the province's)
    kept = {json.loads((out / "cities" / c / "model.json").read_text(encoding="utf-8"))["artifact"]
            for c in ("city=371400", "city=371500")}
    assert len(kept) == 1 and not Path(next(iter(kept))).is_absolute()
    kept_file = (out / "cities" / "city=371400" / "workspace" / kept.pop()).resolve()
    assert kept_file.parent == (out / "workspace" / "models" / "scored").resolve() and kept_file.exists()
    served = ModelHolder(sessions).reload()
    assert served.models_differ == () and {info.city for info in served.cities} == {"聊城市", "德州市"}
    assert {info.champion.version for info in served.cities} == set(city["model_version"].astype(str))
    app = create_app(settings, session_factory=sessions, routers=[console_router()])
    with TestClient(app, base_url="http://testserver") as client:
        post_login(client, "supervisor", DEMO_PASSWORD)
        page = client.get("/province")
        assert page.status_code == 200
        assert "德州市" in page.text and "聊城市" in page.text and 'id="province-cities"' in page.text
        summary = pd.read_csv(out / "province_summary.csv")
        assert f"{int(summary['alerts'].iloc[0]):,}" in page.text
        queue = client.get("/queue?city=聊城市&status=open")
        assert queue.status_code == 200 and '<option value="德州市"' in queue.text
        shown = {int(i) for i in re.findall(r'href="/leads/(\d+)"', queue.text)}
        assert shown and shown <= liaocheng
        token = client.post("/api/v1/auth/token", data={"username": "supervisor", "password": DEMO_PASSWORD})
        api = client.get("/api/v1/leads", params={"city": "德州市", "page_size": 500},
                         headers={"Authorization": f"Bearer {token.json()['access_token']}"})
        assert api.status_code == 200 and api.json()["total"] == len(by_city["德州市"])
        assert {x["id"] for x in api.json()["items"]} <= by_city["德州市"]
    with TestClient(app, base_url="http://testserver") as officer:
        post_login(officer, "officer1", DEMO_PASSWORD)
        assert officer.get("/province").status_code == 403


# -- one store shared by a province's cities ------------------------------------------------------------------
# Two generated city runs (tests/test_store.make_run) whose districts carry the same names, published into one
# store (SQLite, and PostgreSQL when one is reachable): what each kind of user then sees and may change.

from test_store import (  # noqa: E402,F401 - the store fixtures (SQLite, PostgreSQL) and the fake run
    DEZHOU, LIAOCHENG, empty_store_url, make_run, sessions, small_settings, store_url)


@pytest.fixture(scope="module", autouse=True)
def _tiny_champion_fitted_once(tmp_path_factory):
    """make_run fits a small model for every fake run (0.3 s; two runs a test here, most of each test's time): here
    it is fitted once per version and its file copied to where make_run asks (the same fit: its seeds are fixed)."""
    import test_store

    fit, fitted = test_store._tiny_champion, {}

    def copied(path: Path, version) -> Path:
        if str(version) not in fitted:
            fitted[str(version)] = fit(tmp_path_factory.mktemp("tiny-champion") / "champion.joblib", version)
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        return Path(shutil.copyfile(fitted[str(version)], path))

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(test_store, "_tiny_champion", copied)
        yield


def _linkage(run: Path, rows: list[tuple[str, str, int]]) -> Path:
    """A linkage.csv for a run of make_run: (source, account id, the index of the entity it is linked to)."""
    leads = pd.read_csv(run / "leads.csv", dtype={"uscc": str}).sort_values("uscc")["uscc"].tolist()
    pd.DataFrame([{"source": s, "account_id": a, "account_name": f"户{a}", "uscc": leads[i], "method": "exact",
                   "status": "linked"} for s, a, i in rows]).to_csv(run / "linkage.csv", index=False)
    return run


def _province_store(sessions, tmp_path: Path, one_model: bool = False) -> None:
    """Dezhou, then Liaocheng (published last), into one store, with users bound to a city or to none. Each city's
    run has its own model, or with ``one_model`` both name Dezhou's (as a province run's cities name its one)."""
    from serving.publish import publish_run
    from serving.store import User

    settings = small_settings(k=10)
    dz = _linkage(make_run(tmp_path / "dz", n=60, city=DEZHOU), [("water", "W1", 0), ("sewer", "W1", 1)])
    publish_run(dz, sessions, settings)
    lc = _linkage(make_run(tmp_path / "lc", n=45, city=LIAOCHENG), [("water", "W1", 0)])
    if one_model:
        info = json.loads((lc / "model.json").read_text(encoding="utf-8"))
        info["artifact"] = json.loads((dz / "model.json").read_text(encoding="utf-8"))["artifact"]
        (lc / "model.json").write_text(json.dumps(info, ensure_ascii=False), encoding="utf-8")
    publish_run(lc, sessions, settings)
    with sessions() as s, s.begin():
        for name, role, city, district in (("prov", "supervisor", None, None), ("sup_lc", "supervisor", "聊城市", None),
                                           ("off_dz", "officer", "德州市", "德城区"),
                                           ("off_lc", "officer", "聊城市", "德城区")):
            s.add(User(username=name, role=role, city=city, district=district))


@pytest.fixture
def province_api(sessions, tmp_path):
    """The API and the console over a province store; ``as_(user)`` logs a client in as that user."""
    _province_store(sessions, tmp_path)
    yield from _serve(sessions)


def _serve(sessions):
    """The API and the console over ``sessions``' store, as ``as_(user)`` (a client logged in as that user)."""
    from fastapi.testclient import TestClient

    from serving.api import create_app
    from serving.console import console_router
    from test_api import bearer, settings_for

    app = create_app(settings_for("sqlite://"), sessions, routers=[console_router()], demo_users=False)

    def as_(user: str) -> TestClient:
        client = TestClient(app, base_url="http://testserver")
        headers = bearer(sessions, user)
        client.headers.update(headers)
        client.cookies.set("ww_session", headers["Authorization"].removeprefix("Bearer "))
        return client

    with TestClient(app):
        yield as_


def test_alerts_show_each_citys_live_run(province_api):
    """Gap 1: the alerts of every city's latest run, not only the run published last; a city's user sees its own."""
    prov, sup_lc = province_api("prov"), province_api("sup_lc")
    everything = prov.get("/api/v1/alerts").json()
    assert everything["total"] == 4 and {a["city"] for a in everything["items"]} == {"德州市", "聊城市"}
    assert prov.get("/api/v1/alerts", params={"city": "德州市"}).json()["total"] == 2
    mine = sup_lc.get("/api/v1/alerts").json()
    assert mine["total"] == 2 and {a["city"] for a in mine["items"]} == {"聊城市"}
    assert sup_lc.get("/api/v1/alerts", params={"city": "德州市"}).status_code == 403
    page = prov.get("/alerts")
    assert page.status_code == 200 and "371400-A1" in page.text and "371500-A1" in page.text
    page = sup_lc.get("/alerts")
    assert "371500-A1" in page.text and "371400-A1" not in page.text
    dash = prov.get("/dashboard")
    assert dash.status_code == 200 and 'data-tile="alerts">4<' in dash.text
    assert 'data-tile="alerts">2<' in sup_lc.get("/dashboard").text


def test_cases_filter_by_city_and_keep_to_the_callers(province_api):
    """Gap 2: ``GET /api/v1/cases?city=`` and the cases page; a city's user sees only its city's cases."""
    prov, sup_lc, off_dz = province_api("prov"), province_api("sup_lc"), province_api("off_dz")
    assert prov.get("/api/v1/cases").json()["total"] == 4
    dz = prov.get("/api/v1/cases", params={"city": "德州市"}).json()
    assert dz["total"] == 2 and {c["city"] for c in dz["items"]} == {"德州市"}
    lc = sup_lc.get("/api/v1/cases").json()
    assert lc["total"] == 2 and {c["city"] for c in lc["items"]} == {"聊城市"}
    assert sup_lc.get("/api/v1/cases", params={"city": "德州市"}).status_code == 403
    assert {c["city"] for c in off_dz.get("/api/v1/cases").json()["items"]} <= {"德州市"}
    page = sup_lc.get("/cases", params={"kind": "expired_permit_in_use"})
    assert page.status_code == 200 and "371500-C-expired-1" in page.text and "371400-C-expired-1" not in page.text
    page = prov.get("/cases", params={"kind": "expired_permit_in_use", "city": "德州市"})
    assert "371400-C-expired-1" in page.text and "371500-C-expired-1" not in page.text


def test_a_users_city_is_read_from_the_store_on_every_request(province_api, sessions):
    """The city comes from the store, never from the client: moving a user to another city counts from the
    next request of the same token; a ``city`` the client sends cannot widen it."""
    from sqlalchemy import update

    from serving.store import User

    sup_lc = province_api("sup_lc")
    assert {c["city"] for c in sup_lc.get("/api/v1/cases").json()["items"]} == {"聊城市"}
    with sessions() as s, s.begin():
        s.execute(update(User).where(User.username == "sup_lc").values(city="德州市"))
    assert {c["city"] for c in sup_lc.get("/api/v1/cases").json()["items"]} == {"德州市"}
    assert sup_lc.get("/api/v1/alerts", params={"city": "聊城市"}).status_code == 403
    # bound to Dezhou now: Liaocheng's leads and cases are out of reach
    lc_lead = next(x["id"] for x in province_api("prov").get("/api/v1/leads", params={"city": "聊城市"}).json()["items"])
    assert sup_lc.get(f"/api/v1/leads/{lc_lead}").status_code == 403
    assert sup_lc.post("/api/v1/cases/371500-C-tax-1/status", json={"status": "in_progress"}).status_code == 403
    assert sup_lc.post("/api/v1/cases/371400-C-tax-1/status", json={"status": "in_progress"}).status_code == 200


def test_a_district_name_two_cities_share_keeps_their_queues_apart(province_api, sessions):
    """Gap 3: both cities have a 德城区; each city's officer sees and works only their own city's."""
    from sqlalchemy import select

    from serving.store import Lead

    off_dz, off_lc, prov = province_api("off_dz"), province_api("off_lc"), province_api("prov")
    seen = off_dz.get("/api/v1/leads", params={"page_size": 500}).json()["items"]
    with sessions() as s:
        city_of = dict(s.execute(select(Lead.id, Lead.city)).all())
        lc_lead = s.scalar(select(Lead.id).where(Lead.city == "聊城市", Lead.district == "德城区",
                                                 Lead.in_queue.is_(True)).limit(1))
    assert seen and {city_of[x["id"]] for x in seen} == {"德州市"} and {x["district"] for x in seen} == {"德城区"}
    assert off_dz.get(f"/api/v1/leads/{lc_lead}").status_code == 403
    assert off_dz.post(f"/api/v1/leads/{lc_lead}/assign", json={"officer": "off_dz"}).status_code == 403
    assert prov.post(f"/api/v1/leads/{lc_lead}/assign", json={"officer": "off_dz"}).status_code == 422
    assert prov.post(f"/api/v1/leads/{lc_lead}/assign", json={"officer": "off_lc"}).status_code == 200
    page = off_lc.get(f"/leads/{lc_lead}")
    assert page.status_code == 200
    queue = off_dz.get("/queue")
    assert queue.status_code == 200 and f'href="/leads/{lc_lead}"' not in queue.text
    assert {a["city"] for a in off_dz.get("/api/v1/alerts").json()["items"]} <= {"德州市"}


def test_publishing_a_city_keeps_the_other_citys_accounts(sessions, tmp_path):
    """Gap 4: Liaocheng's water account W1 leaves Dezhou's water and sewer accounts W1 alone, re-publishing
    replaces only the city's own, and the database holds one row per (city, source, account)."""
    from sqlalchemy import select
    from sqlalchemy.exc import IntegrityError

    from serving.publish import publish_run
    from serving.store import Account

    _province_store(sessions, tmp_path)
    with sessions() as s:
        rows = sorted(s.execute(select(Account.city, Account.source, Account.account_id)).all())
    assert rows == [("德州市", "sewer", "W1"), ("德州市", "water", "W1"), ("聊城市", "water", "W1")]
    publish_run(_linkage(make_run(tmp_path / "dz2", n=60, shift=3, city=DEZHOU), [("water", "W2", 2)]),
                sessions, small_settings(k=10))
    with sessions() as s:
        rows = sorted(s.execute(select(Account.city, Account.source, Account.account_id)).all())
    assert rows == [("德州市", "water", "W2"), ("聊城市", "water", "W1")]
    with pytest.raises(IntegrityError), sessions() as s, s.begin():
        s.add(Account(city="聊城市", source="water", account_id="W1"))


def test_migration_c003_keys_an_existing_store_by_city(empty_store_url):
    """A store made before c003 (runs, accounts and users without a city) upgrades: each run gets the city of its
    model.json, each linked account the city of the runs that scored its entity ("" for a city run's and for
    unlinked ones), users none; afterwards two cities may hold the same account and the key stays unique."""
    from sqlalchemy import text

    from serving.store import make_engine, upgrade_database

    upgrade_database(empty_store_url, "c002")
    engine = make_engine(empty_store_url)
    with engine.begin() as conn:
        for run_id, info in (("r-dz", {"city": DEZHOU}), ("r-city", {"version": "1"})):
            conn.execute(text("INSERT INTO runs (run_id, model_info, entities, published_at, updated_at) "
                              "VALUES (:r, :i, 1, '2026-07-01 00:00:00', '2026-07-01 00:00:00')"),
                         {"r": run_id, "i": json.dumps(info, ensure_ascii=False)})
        for run_id, uscc in (("r-dz", "913714000000000001"), ("r-city", "913700000000000009")):
            conn.execute(text("INSERT INTO scores (run_id, uscc, rank, risk_score) VALUES (:r, :u, 1, 0.5)"),
                         {"r": run_id, "u": uscc})
        for source, account, uscc in (("water", "W1", "913714000000000001"), ("sewer", "W1", "913714000000000001"),
                                      ("water", "W9", "913700000000000009"), ("water", "W5", None)):
            conn.execute(text("INSERT INTO accounts (source, account_id, uscc) VALUES (:s, :a, :u)"),
                         {"s": source, "a": account, "u": uscc})
        conn.execute(text("INSERT INTO users (username, role, district, active, token_version, is_demo, created_at, "
                          "updated_at) VALUES ('wang', 'officer', '德城区', :t, 0, :f, '2026-07-01 00:00:00', "
                          "'2026-07-01 00:00:00')"), {"t": True, "f": False})
    upgrade_database(empty_store_url)
    with engine.begin() as conn:
        assert dict(conn.execute(text("SELECT run_id, city FROM runs")).all()) == {"r-dz": "德州市", "r-city": None}
        assert sorted(conn.execute(text("SELECT city, source, account_id FROM accounts")).all()) == [
            ("", "water", "W5"), ("", "water", "W9"), ("德州市", "sewer", "W1"), ("德州市", "water", "W1")]
        assert conn.execute(text("SELECT city FROM users WHERE username = 'wang'")).scalar() is None
        conn.execute(text("INSERT INTO accounts (city, source, account_id) VALUES ('聊城市', 'water', 'W1')"))
    with pytest.raises(Exception, match="(?i)unique|duplicate"), engine.begin() as conn:
        conn.execute(text("INSERT INTO accounts (city, source, account_id) VALUES ('聊城市', 'water', 'W1')"))
    engine.dispose()


def test_demo_officers_of_a_province_store_are_city_bound(sessions):
    """Demo officers for (city, district) pairs: one per district of each city, each bound to its city."""
    from sqlalchemy import select

    from serving.services.users import ensure_demo_users
    from serving.store import User

    with sessions() as s, s.begin():
        ensure_demo_users(s, production=False, districts=[("聊城市", "德城区"), ("德州市", "德城区")])
    with sessions() as s:
        officers = s.execute(select(User.username, User.city, User.district).where(User.role == "officer")
                             .order_by(User.username)).all()
    assert [tuple(o) for o in officers] == [("officer1", "德州市", "德城区"), ("officer2", "聊城市", "德城区")]


def _permits(run: Path, rows: list[tuple[str, int, float]]) -> Path:
    """The workspace's typed permits of a run of make_run: (permit id, the index of its entity, annual quota)."""
    leads = pd.read_csv(run / "leads.csv", dtype={"uscc": str}).sort_values("uscc")["uscc"].tolist()
    (run / "workspace" / "typed").mkdir(parents=True, exist_ok=True)
    pd.DataFrame([{"permit_id": p, "uscc": leads[i], "source": "groundwater", "purpose": "industrial",
                   "annual_quota_m3": q, "valid_from": pd.Timestamp("2025-01-01").date(),
                   "valid_to": pd.Timestamp("2027-12-31").date(), "status": "valid", "wells": 1}
                  for p, i, q in rows]).to_parquet(run / "workspace" / "typed" / "permits.parquet", index=False)
    return run


def test_two_cities_keep_their_permits_of_the_same_number(sessions, tmp_path):
    """Gap: permits keyed by their id alone, so Liaocheng's permit P1 overwrote Dezhou's P1; keyed by (city, permit),
    each city's publish replaces its own permits only, and the database keeps the key unique."""
    from sqlalchemy import select
    from sqlalchemy.exc import IntegrityError

    from serving.publish import publish_run
    from serving.store import Permit

    settings = small_settings(k=10)
    publish_run(_permits(make_run(tmp_path / "dz", n=60, city=DEZHOU), [("P1", 0, 1000.0), ("P2", 1, 2000.0)]),
                sessions, settings)
    publish_run(_permits(make_run(tmp_path / "lc", n=45, city=LIAOCHENG), [("P1", 0, 500.0)]), sessions, settings)
    with sessions() as s:
        rows = sorted(s.execute(select(Permit.city, Permit.permit_id, Permit.annual_quota_m3)).all())
    assert rows == [("德州市", "P1", 1000.0), ("德州市", "P2", 2000.0), ("聊城市", "P1", 500.0)]
    publish_run(_permits(make_run(tmp_path / "dz2", n=60, shift=3, city=DEZHOU), [("P3", 2, 300.0)]),
                sessions, settings)
    with sessions() as s:
        rows = sorted(s.execute(select(Permit.city, Permit.permit_id)).all())
    assert rows == [("德州市", "P3"), ("聊城市", "P1")]
    with pytest.raises(IntegrityError), sessions() as s, s.begin():
        s.add(Permit(city="聊城市", permit_id="P1"))


def test_migration_c004_keys_an_existing_stores_permits_by_city(empty_store_url):
    """A store made before c004 (permits keyed by their id) upgrades: each permit gets the city of the runs that
    scored its entity ("" for a city run's); afterwards two cities may hold the same permit id, once each."""
    from sqlalchemy import text

    from serving.store import make_engine, upgrade_database

    upgrade_database(empty_store_url, "c003")
    engine = make_engine(empty_store_url)
    with engine.begin() as conn:
        for run_id, city in (("r-dz", "德州市"), ("r-city", None)):
            conn.execute(text("INSERT INTO runs (run_id, model_info, entities, city, published_at, updated_at) "
                              "VALUES (:r, '{}', 1, :c, '2026-07-01 00:00:00', '2026-07-01 00:00:00')"),
                         {"r": run_id, "c": city})
        for run_id, uscc in (("r-dz", "913714000000000001"), ("r-city", "913700000000000009")):
            conn.execute(text("INSERT INTO scores (run_id, uscc, rank, risk_score) VALUES (:r, :u, 1, 0.5)"),
                         {"r": run_id, "u": uscc})
        for permit, uscc, quota in (("P1", "913714000000000001", 100.0), ("P9", "913700000000000009", 9.0),
                                    ("P5", None, 5.0)):
            conn.execute(text("INSERT INTO permits (permit_id, uscc, annual_quota_m3) VALUES (:p, :u, :q)"),
                         {"p": permit, "u": uscc, "q": quota})
    upgrade_database(empty_store_url)
    with engine.begin() as conn:
        assert sorted(conn.execute(text("SELECT city, permit_id, annual_quota_m3 FROM permits")).all()) == [
            ("", "P5", 5.0), ("", "P9", 9.0), ("德州市", "P1", 100.0)]
        conn.execute(text("INSERT INTO permits (city, permit_id) VALUES ('聊城市', 'P1')"))
    with pytest.raises(Exception, match="(?i)unique|duplicate"), engine.begin() as conn:
        conn.execute(text("INSERT INTO permits (city, permit_id) VALUES ('聊城市', 'P1')"))
    engine.dispose()


def test_migration_c004_downgrades_and_upgrades_again_keeping_what_it_can(empty_store_url):
    """c004 down to c003 and up again, on a store with permits of two cities and of a city run: the downgrade
    keeps every permit whose number is unique, whole, and of a number two cities share the row of the city first
    in the database's order (c003 keys permits by number alone); the upgrade gives each its city back from the
    runs that scored its entity, the schema matches the models again, and (city, permit) is unique again."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlalchemy import text

    from serving.store import Base, downgrade_database, make_engine, upgrade_database

    dz, lc, own = "913714000000000001", "913715000000000002", "913700000000000009"
    columns = "city, permit_id, uscc, source, purpose, annual_quota_m3, valid_from, valid_to, status, wells"
    upgrade_database(empty_store_url, "c003")
    engine = make_engine(empty_store_url)
    with engine.begin() as conn:
        for run_id, city, uscc in (("r-dz", "德州市", dz), ("r-lc", "聊城市", lc), ("r-city", None, own)):
            conn.execute(text("INSERT INTO runs (run_id, model_info, entities, city, published_at, updated_at) "
                              "VALUES (:r, '{}', 1, :c, '2026-07-01 00:00:00', '2026-07-01 00:00:00')"),
                         {"r": run_id, "c": city})
            conn.execute(text("INSERT INTO scores (run_id, uscc, rank, risk_score) VALUES (:r, :u, 1, 0.5)"),
                         {"r": run_id, "u": uscc})
    upgrade_database(empty_store_url, "c004")
    permits = [("德州市", "P1", dz, "groundwater", "industrial", 100.0, "2025-01-01", "2027-12-31", "valid", 2),
               ("聊城市", "P1", lc, "surface", "irrigation", 50.0, "2024-03-01", "2026-02-28", "expired", 1),
               ("聊城市", "P2", lc, "groundwater", "industrial", 20.0, "2025-06-01", "2028-05-31", "valid", 3),
               ("", "P9", own, "groundwater", "domestic", 9.0, "2025-01-01", "2026-12-31", "valid", 1),
               ("", "P5", None, None, None, 5.0, None, None, None, None)]
    with engine.begin() as conn:
        for row in permits:
            conn.execute(text(f"INSERT INTO permits ({columns}) VALUES "
                              f"(:c, :p, :u, :s, :pu, :q, :f, :t, :st, :w)"),
                         dict(zip(("c", "p", "u", "s", "pu", "q", "f", "t", "st", "w"), row)))
        first = conn.execute(text("SELECT city FROM permits WHERE permit_id = 'P1' ORDER BY city")).first()[0]

    def rows(conn, with_city: bool) -> list[tuple]:
        got = conn.execute(text(f"SELECT {columns if with_city else columns[6:]} FROM permits")).all()
        return sorted(tuple(str(v) if hasattr(v, "isoformat") else v for v in r) for r in got)

    kept = [r for r in permits if r[1] != "P1" or r[0] == first]
    downgrade_database(empty_store_url, "c003")
    with engine.begin() as conn:
        assert rows(conn, with_city=False) == sorted(r[1:] for r in kept)
    with pytest.raises(Exception, match="(?i)unique|duplicate"), engine.begin() as conn:
        conn.execute(text("INSERT INTO permits (permit_id) VALUES ('P2')"))  # keyed by the number alone
    upgrade_database(empty_store_url, "c004")
    with engine.begin() as conn:
        assert rows(conn, with_city=True) == sorted(kept)
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        assert [d for d in diff if "permits" in repr(d)] == []
        conn.execute(text("INSERT INTO permits (city, permit_id) VALUES (:c, 'P1')"),
                     {"c": "聊城市" if first == "德州市" else "德州市"})
    with pytest.raises(Exception, match="(?i)unique|duplicate"), engine.begin() as conn:
        conn.execute(text("INSERT INTO permits (city, permit_id) VALUES ('聊城市', 'P1')"))
    engine.dispose()


def test_scores_water_rights_and_model_answer_per_city(province_api, sessions):
    """Gap: scores, water rights and the model answered from the run published last (Liaocheng's). Each city's
    live run now answers for its city: a province caller finds an entity in its own city's run (or asks
    ``?city=``); a city-bound caller, by token or by API key (the key's user's city), sees its city only."""
    from sqlalchemy import select

    from serving.services.users import create_api_key
    from serving.store import Run, User

    prov, sup_lc = province_api("prov"), province_api("sup_lc")
    with sessions() as s:
        runs = dict(s.execute(select(Run.city, Run.run_id)).all())
    dz, lc = "913714" + "5".rjust(12, "0"), "913715" + "5".rjust(12, "0")
    assert prov.get(f"/api/v1/scores/{dz}").json()["run_id"] == runs["德州市"]
    assert prov.get(f"/api/v1/scores/{lc}").json()["run_id"] == runs["聊城市"]
    assert prov.get(f"/api/v1/scores/{dz}", params={"city": "聊城市"}).status_code == 404
    assert sup_lc.get(f"/api/v1/scores/{lc}").json()["run_id"] == runs["聊城市"]
    assert sup_lc.get(f"/api/v1/scores/{dz}").status_code == 404
    assert sup_lc.get(f"/api/v1/scores/{dz}", params={"city": "德州市"}).status_code == 403
    both = prov.post("/api/v1/scores/batch", json={"usccs": [dz, lc]}).json()
    assert {x["uscc"]: x["run_id"] for x in both["scores"]} == {dz: runs["德州市"], lc: runs["聊城市"]}
    mine = sup_lc.post("/api/v1/scores/batch", json={"usccs": [dz, lc]}).json()
    assert mine["run_id"] == runs["聊城市"] and mine["missing"] == [dz] and [x["uscc"] for x in mine["scores"]] == [lc]

    rights = prov.get("/api/v1/water-rights").json()
    assert rights["total"] == 2 and {w["seller_uscc"][:8] for w in rights["items"]} == {"91371400", "91371500"}
    dz_rights = prov.get("/api/v1/water-rights", params={"city": "德州市"}).json()["items"]
    assert [w["seller_uscc"][:8] for w in dz_rights] == ["91371400"]
    assert [w["seller_uscc"][:8] for w in sup_lc.get("/api/v1/water-rights").json()["items"]] == ["91371500"]
    assert sup_lc.get("/api/v1/water-rights", params={"city": "德州市"}).status_code == 403
    page = sup_lc.get("/water-rights")
    assert page.status_code == 200 and "913715000000000003" in page.text and "913714000000000003" not in page.text
    page = prov.get("/water-rights", params={"city": "德州市"})
    assert "913714000000000003" in page.text and "913715000000000003" not in page.text

    assert prov.get("/api/v1/model", params={"city": "德州市"}).json()["run_id"] == runs["德州市"]
    assert sup_lc.get("/api/v1/model").json()["run_id"] == runs["聊城市"]
    assert sup_lc.get("/api/v1/model", params={"city": "德州市"}).status_code == 403
    assert prov.post("/api/v1/scores/predict", params={"city": "德州市"},
                     json={"rows": [{"id": "x", "features": {}}]}).status_code == 200

    with sessions() as s, s.begin():  # another system's key, of an analyst bound to Dezhou
        s.add(User(username="sys_dz", role="analyst", city="德州市"))
        s.flush()
        key = create_api_key(s, "sys_dz", "tax system")
    system = province_api("prov")
    system.headers.pop("Authorization")
    system.cookies.clear()
    system.headers["X-API-Key"] = key
    assert system.get(f"/api/v1/scores/{dz}").json()["run_id"] == runs["德州市"]
    assert system.get(f"/api/v1/scores/{lc}").status_code == 404
    assert system.get(f"/api/v1/scores/{lc}", params={"city": "聊城市"}).status_code == 403


def test_the_outbox_keeps_to_the_callers_city(province_api):
    """Gap: the SMS outbox (API and page) listed every city's messages to everyone and had no city filter; now
    ``?city=`` for province roles, a city-bound user's own city only, and its gateway marks only its own."""
    prov, sup_lc = province_api("prov"), province_api("sup_lc")
    ids = lambda r: sorted(m["message_id"] for m in r.json()["items"])  # noqa: E731
    assert ids(prov.get("/api/v1/outbox")) == ["371400-M1", "371400-M2", "371500-M1", "371500-M2"]
    assert ids(prov.get("/api/v1/outbox", params={"city": "德州市"})) == ["371400-M1", "371400-M2"]
    assert ids(sup_lc.get("/api/v1/outbox")) == ["371500-M1", "371500-M2"]
    assert sup_lc.get("/api/v1/outbox", params={"city": "德州市"}).status_code == 403
    assert sup_lc.post("/api/v1/outbox/371400-M1/sent").status_code == 403
    assert sup_lc.post("/api/v1/outbox/371500-M1/sent").json()["status"] == "sent"
    page = sup_lc.get("/outbox")
    assert page.status_code == 200 and "371500-M2" in page.text and "371400-M2" not in page.text
    assert '<select name="city">' not in page.text
    page = prov.get("/outbox", params={"city": "德州市"})
    assert "371400-M2" in page.text and "371500-M2" not in page.text and '<option value="聊城市"' in page.text
    # "send now" of a city's supervisor sends its city's due messages only
    from test_console_modules import csrf_of

    sent = sup_lc.post("/outbox/send", data={"csrf": csrf_of(sup_lc.get("/outbox").text)}, follow_redirects=True)
    assert sent.status_code == 200
    status = {m["message_id"]: m["status"] for m in prov.get("/api/v1/outbox").json()["items"]}
    assert status == {"371400-M1": "queued", "371400-M2": "queued", "371500-M1": "sent", "371500-M2": "sent"}


def test_a_city_bound_supervisor_sees_only_its_city_on_the_province_page(province_api, sessions):
    """Gap: the province page showed every city's figures to a supervisor bound to one city. Province roles see
    the cities side by side; a city's supervisor sees its own city's row only (as everywhere else)."""
    from sqlalchemy import select

    from serving.store import Run

    summary = {"province": "山东省", "as_of": "2026-07-01", "cities": [
        {"city": folder, "name": name, "entities": n, "alerts": a, "alerts_red": 1, "alerts_orange": 0,
         "alerts_yellow": a - 1, "cases": 2, "leads_top_1pct": 1, "inspections": 0, "violations_found": 0,
         "hit_rate": None}
        for folder, name, n, a in (("city=371400", "德州市", 60, 7771), ("city=371500", "聊城市", 45, 5552))]}
    with sessions() as s, s.begin():
        for run in s.scalars(select(Run)):
            run.model_info = {**(run.model_info or {}), "province": summary}
    page = province_api("prov").get("/province")
    assert page.status_code == 200 and "7,771" in page.text and "5,552" in page.text
    assert 'id="province-own-city"' not in page.text
    page = province_api("sup_lc").get("/province")
    assert page.status_code == 200 and "5,552" in page.text and "7,771" not in page.text and "德州市" not in page.text
    assert 'id="province-own-city"' in page.text
    assert province_api("off_lc").get("/province").status_code == 403


PREDICT_ROW = {"rows": [{"id": "x", "features": {"balance_ratio_12m": 2.4}}]}


def test_predict_and_model_ask_a_province_caller_to_choose_when_the_cities_models_differ(province_api, sessions):
    """Gap: a province caller's predict and GET /model without ``?city=`` answered from the run published last
    (Liaocheng's model) even though Dezhou's live run carries another model. When the cities' models differ it is
    ambiguous: 422 naming the cities; with ``?city=`` and for a city-bound caller it answers as before."""
    from sqlalchemy import select

    from serving.store import Run

    prov, sup_lc = province_api("prov"), province_api("sup_lc")
    with sessions() as s:
        runs = dict(s.execute(select(Run.city, Run.run_id)).all())
    for answer in (prov.post("/api/v1/scores/predict", json=PREDICT_ROW), prov.get("/api/v1/model")):
        assert answer.status_code == 422, answer.text
        detail = answer.json()["detail"]
        assert "德州市" in detail and "聊城市" in detail and "?city=" in detail
    assert prov.get("/api/v1/model", params={"city": "德州市"}).json()["run_id"] == runs["德州市"]
    assert prov.post("/api/v1/scores/predict", params={"city": "德州市"}, json=PREDICT_ROW).status_code == 200
    assert sup_lc.get("/api/v1/model").json()["run_id"] == runs["聊城市"]
    assert sup_lc.post("/api/v1/scores/predict", json=PREDICT_ROW).status_code == 200


@pytest.fixture
def one_model_api(sessions, tmp_path):
    """``province_api`` over a store whose two cities' live runs carry one model."""
    _province_store(sessions, tmp_path, one_model=True)
    yield from _serve(sessions)


def test_predict_and_model_answer_a_province_caller_from_the_one_model_every_city_shares(one_model_api, sessions):
    """Both cities' live runs carry one model (a province run's): a province caller without ``?city=`` is answered
    from it, the same risk as with ``?city=`` of either city."""
    from sqlalchemy import select

    from serving.store import Run

    prov = one_model_api("prov")
    with sessions() as s:
        runs = dict(s.execute(select(Run.city, Run.run_id)).all())
    assert runs["德州市"] != runs["聊城市"]
    model = prov.get("/api/v1/model")
    assert model.status_code == 200 and model.json()["run_id"] == runs["聊城市"]  # the run published last
    risk = {city: prov.post("/api/v1/scores/predict", params=city and {"city": city}, json=PREDICT_ROW)
            for city in (None, "德州市", "聊城市")}
    assert {r.status_code for r in risk.values()} == {200}
    assert len({r.json()["scores"][0]["risk_score"] for r in risk.values()}) == 1


def test_a_city_bound_supervisor_sees_no_other_citys_users(province_api, sessions):
    """Gap check: the service has no users or audit-log page or API (users and their audit lines are the CLI's,
    on the server). Where users do show, a supervisor bound to a city sees its own city's only: the dashboard's
    officers (and their export), a lead's officers to assign, and the answer when assigning another city's officer,
    which says no more than for a username that does not exist. Province roles see every city's, or ``?city=``'s."""
    from sqlalchemy import select

    from serving.store import Lead

    prov, sup_lc = province_api("prov"), province_api("sup_lc")
    officers = lambda page: set(re.findall(r'data-officer="([^"]+)"', page.text))  # noqa: E731
    assert officers(sup_lc.get("/dashboard")) == {"off_lc"}
    assert "off_dz" not in sup_lc.get("/dashboard", params={"format": "csv", "table": "officers"}).text
    assert officers(prov.get("/dashboard")) == {"off_dz", "off_lc"}
    assert officers(prov.get("/dashboard", params={"city": "德州市"})) == {"off_dz"}
    with sessions() as s:
        lc_lead = s.scalar(select(Lead.id).where(Lead.city == "聊城市", Lead.district == "德城区",
                                                 Lead.in_queue.is_(True)).limit(1))
    page = sup_lc.get(f"/leads/{lc_lead}").text
    assert '<option value="off_lc"' in page and "off_dz" not in page
    other = sup_lc.post(f"/api/v1/leads/{lc_lead}/assign", json={"officer": "off_dz"})
    unknown = sup_lc.post(f"/api/v1/leads/{lc_lead}/assign", json={"officer": "off_xx"})
    assert other.status_code == unknown.status_code == 422
    assert other.json()["detail"] == unknown.json()["detail"].replace("off_xx", "off_dz")
    assert "德州市" in prov.post(f"/api/v1/leads/{lc_lead}/assign", json={"officer": "off_dz"}).json()["detail"]


def _city_models(sessions, models: dict[str, tuple[str, str, float]]) -> None:
    """Give each city's live run its own model version, training time and backtest (truth precision at 100)."""
    from sqlalchemy import select

    from serving.store import Run

    with sessions() as s, s.begin():
        for run in s.scalars(select(Run)):
            version, trained, precision = models[run.city]
            run.model_version = version
            run.model_info = {**(run.model_info or {}), "trained_at": trained, "backtest": {
                "truth.model.precision_at_100": precision, "truth.model.labelled_at_100": 100.0}}


MODELS = {"德州市": ("7", "2026-09-01T00:00:00+00:00", 0.611), "聊城市": ("9", "2026-10-15T00:00:00+00:00", 0.422)}


def _model_card(page) -> str:
    return page.text[page.text.index('class="card model-card"'):]


@pytest.fixture
def city_models_api(sessions, tmp_path):
    """``province_api`` whose two cities' live runs carry models of their own version, training and backtest."""
    _province_store(sessions, tmp_path)
    _city_models(sessions, MODELS)
    yield from _serve(sessions)


def test_the_dashboard_shows_each_citys_model_when_the_cities_models_differ(city_models_api):
    """Gap: the dashboard of a province role without ``?city=`` showed the model of the run published last
    (Liaocheng's) as the model in service, though Dezhou's live run carries another. When the models differ, each
    city's model is listed (version, trained, backtest), and the page names no single live run; ``?city=`` and a
    city-bound supervisor see their city's model only."""
    prov, sup_lc = city_models_api("prov"), city_models_api("sup_lc")

    page = prov.get("/dashboard")
    assert page.status_code == 200
    card = _model_card(page)
    assert "data-models-differ" in card and "各市当前运行使用的模型不同" in card
    rows = dict(re.findall(r'data-model-city="([^"]*)">.*?<td data-model-version>([^<]*)<', card))
    assert rows == {"德州市": "7", "聊城市": "9"}
    assert "2026-09-01" in card and "2026-10-15" in card
    backtests = dict(re.findall(r'data-model-backtest="([^"]*)">(.*?)</details>', card, re.S))
    assert "0.611" in backtests["德州市"] and "0.422" not in backtests["德州市"]
    assert "0.422" in backtests["聊城市"] and "0.611" not in backtests["聊城市"]
    assert "当前运行 " not in page.text  # no single run stands for every city

    for page, version, precision, other in ((prov.get("/dashboard", params={"city": "德州市"}), "7", "0.611", "0.422"),
                                            (sup_lc.get("/dashboard"), "9", "0.422", "0.611")):
        card = _model_card(page)
        assert "data-models-differ" not in card
        assert re.findall(r"data-model-version>([^<]*)<", card) == [version]
        assert precision in card and other not in card
        assert "当前运行 " in page.text
    assert "use different models" in prov.get("/dashboard", params={"lang": "en"}).text


def test_the_dashboard_shows_the_one_model_every_city_shares_once(sessions, tmp_path):
    """Both cities' live runs carry one model (a province run's): a province role without ``?city=`` sees it once."""
    _province_store(sessions, tmp_path, one_model=True)
    _city_models(sessions, {city: MODELS["德州市"] for city in MODELS})
    for as_ in _serve(sessions):
        card = _model_card(as_("prov").get("/dashboard"))
        assert "data-models-differ" not in card and re.findall(r"data-model-version>([^<]*)<", card) == ["7"]
        assert card.count("0.611") == 1


def test_the_dashboards_exports_name_each_rows_city_for_a_province_role(province_api):
    """Gap: a province role's district, officer and run exports had no city, so the two cities' 德城区 were one
    name twice. Without ``?city=`` each row now carries its city (城市); a city's export (``?city=``, or a
    city-bound supervisor's) keeps the columns a city's installation has always had."""
    from test_console_modules import csv_rows, xlsx_rows

    prov, sup_lc = province_api("prov"), province_api("sup_lc")

    def export(client, table: str, fmt: str = "csv", **params):
        answer = client.get("/dashboard", params={"table": table, "format": fmt, **params})
        assert answer.status_code == 200
        return csv_rows(answer) if fmt == "csv" else [list(r) for r in xlsx_rows(answer)]

    districts = export(prov, "districts")
    assert districts[0][:2] == ["城市", "辖区"]
    assert {("德州市", "德城区"), ("聊城市", "德城区")} <= {tuple(r[:2]) for r in districts[1:]}
    assert {r[0] for r in districts[1:]} == {"德州市", "聊城市"}
    officers = export(prov, "officers", "xlsx")
    assert officers[0][:3] == ["负责人", "城市", "辖区"]
    assert {r[0]: (r[1], r[2]) for r in officers[1:]} == {"off_dz": ("德州市", "德城区"),
                                                          "off_lc": ("聊城市", "德城区")}
    runs = export(prov, "runs", lang="en")
    assert runs[0][:2] == ["Live run", "City"] and sorted(r[1] for r in runs[1:]) == ["德州市", "聊城市"]
    assert "<th>城市</th>" in prov.get("/dashboard").text.split('data-table="runs"')[1].split("</thead>")[0]

    for rows, city in ((export(prov, "districts", city="德州市"), "德州市"), (export(sup_lc, "districts"), "聊城市")):
        assert rows[0][0] == "辖区" and "城市" not in rows[0] and "德城区" in {r[0] for r in rows[1:]}
    assert export(sup_lc, "officers")[0][:2] == ["负责人", "辖区"]
    assert [r[0] for r in export(sup_lc, "officers")[1:]] == ["off_lc"]
    runs = export(prov, "runs", city="德州市")
    assert runs[0][:2] == ["当前运行", "评估基准日"] and len(runs) == 2


def test_each_citys_run_on_the_dashboard_counts_its_own_citys_verdicts(province_api, sessions):
    """Gap found on the way: the dashboard's runs table (and its export) ended a run's time as the live run at the
    next run of any city, and counted every city's verdicts, so a Dezhou verdict recorded after Liaocheng published
    counted for Liaocheng's run. A run is its city's live run until that city's next run, and counts its city's."""
    from datetime import date

    from sqlalchemy import select

    from serving.store import Lead, Verdict, utcnow
    from test_console_modules import csv_rows

    with sessions() as s, s.begin():
        leads = [*s.scalars(select(Lead).where(Lead.city == "德州市").order_by(Lead.id).limit(2)),
                 *s.scalars(select(Lead).where(Lead.city == "聊城市").order_by(Lead.id).limit(1))]
        for lead, outcome in zip(leads, ("violation", "violation", "no_violation")):  # after both cities published
            s.add(Verdict(lead_id=lead.id, uscc=lead.uscc, officer="off_x", outcome=outcome,
                          visited_on=date(2026, 11, 20), recorded_at=utcnow()))
    rows = csv_rows(province_api("prov").get("/dashboard", params={"table": "runs", "format": "csv"}))
    header = rows[0]
    got = {r[header.index("城市")]: (r[header.index("已登记结论")], r[header.index("查实")]) for r in rows[1:]}
    assert got == {"德州市": ("2", "2"), "聊城市": ("1", "0")}
    page = province_api("sup_lc").get("/dashboard")
    assert re.search(r'data-run="[^"]+"><td>[^<]*</td><td>[^<]*</td><td class="num">[^<]*</td><td class="num">1</td>'
                     r'<td class="num">0</td>', page.text)
