"""Province runs (issue #13 item 3): several cities in one drop, settings per city, one model,
leads per city, the cities side by side."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from waterwatch.province import province_cities, run_province
from waterwatch.settings import CitySettings, Settings

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def province_drop(tmp_path_factory) -> Path:
    from synth import SynthConfig, generate_city

    drop = tmp_path_factory.mktemp("province") / "drop"
    for i, division in enumerate(("371400", "371500")):
        generate_city(SynthConfig(entities=700, seed=20 + i, city_division=division), drop / f"city={division}")
    (drop / "province.json").write_text(json.dumps({"province": "山东省", "cities": [
        {"folder": "city=371400", "city": "德州市", "division": "371400"},
        {"folder": "city=371500", "city": "聊城市", "division": "371500"},
    ]}, ensure_ascii=False), encoding="utf-8")
    return drop


def test_province_run_keeps_cities_apart_and_ranks_them_together(province_drop, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert [c["folder"] for c in province_cities(province_drop)] == ["city=371400", "city=371500"]
    settings = Settings(home=tmp_path / "var", show_progress=False,
                        cities={"371500": CitySettings(bureau_name="聊城市水利局", tax_rate_groundwater_yuan=4.0)})
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
    _city_folder_publishes_with_the_province_page(out, tmp_path)


def _city_folder_publishes_with_the_province_page(out: Path, tmp_path: Path) -> None:
    """A city folder of the province run is a city run: it publishes into the city's store, and the
    console's province page shows every city from it (supervisors only)."""
    from fastapi.testclient import TestClient

    from serving.api import create_app
    from serving.services.users import DEMO_PASSWORD
    from serving.console import console_router
    from serving.publish import publish_run
    from serving.store import Lead, open_store

    from serving.settings import AuthSettings

    settings = Settings(home=tmp_path / "store", database_url=f"sqlite:///{tmp_path / 'lc.db'}",
                        auth=AuthSettings(secret_key="test-secret-0123456789abcdef-0123456789"), show_progress=False)
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
    app = create_app(settings, session_factory=sessions, routers=[console_router()])
    with TestClient(app, base_url="http://testserver") as client:
        client.post("/login", data={"username": "supervisor", "password": DEMO_PASSWORD})
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
        officer.post("/login", data={"username": "officer1", "password": DEMO_PASSWORD})
        assert officer.get("/province").status_code == 403
