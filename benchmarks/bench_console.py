"""Console page times on a city-sized store: 20,000 entities x 36 months, 11 districts.

Builds a run folder, publishes it into a temporary SQLite store and times the pages an officer and a
supervisor open (TestClient, median of 5). Usage: ``.venv/bin/python benchmarks/bench_console.py``.
"""

from __future__ import annotations

import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fastapi.testclient import TestClient  # noqa: E402

from serving.api import create_app  # noqa: E402
from serving.services.users import DEMO_PASSWORD  # noqa: E402
from serving.console import console_router  # noqa: E402
from serving.publish import publish_run  # noqa: E402
from serving.store import open_store  # noqa: E402
from serving.settings import AuthSettings  # noqa: E402
from waterwatch.settings import Settings  # noqa: E402

N, MONTHS, DISTRICTS = 20_000, 36, [f"区县{i:02d}" for i in range(11)]


def build(out: Path) -> None:
    rng = np.random.default_rng(1)
    out.mkdir(parents=True)
    uscc = [f"91371400MB{i:08d}" for i in range(N)]
    district = np.array(DISTRICTS)[rng.integers(0, len(DISTRICTS), N)]
    pd.DataFrame({"rank": np.arange(1, N + 1), "uscc": uscc, "name": [f"企业{i}" for i in range(N)],
                  "district": district, "industry_code": np.array(["C1713", "F5100", "H6110"])[np.arange(N) % 3],
                  "risk_score": np.linspace(1, 0, N), "reasons": "近12个月排水量是供水量的3.1倍；无取水许可"}
                 ).to_csv(out / "leads.csv", index=False)
    months = pd.date_range("2023-07-01", periods=MONTHS, freq="MS")
    prof = pd.DataFrame({"uscc": np.repeat(uscc, MONTHS), "month": np.tile(months, N)})
    for col in ("supply_m3", "abstraction_m3", "discharge_m3"):
        prof[col] = rng.gamma(2, 500, len(prof)).round(1)
    prof.to_parquet(out / "profiles.parquet")
    kinds = np.array(["quota", "unpermitted", "tax_mismatch", "renewal"])
    levels = np.array(["red", "orange", "yellow", "reminder_90"])
    k = rng.integers(0, 4, 3000)
    pd.DataFrame({"alert_id": [f"A{i}" for i in range(3000)], "kind": kinds[k], "level": levels[k],
                  "uscc": rng.choice(uscc, 3000), "district": rng.choice(DISTRICTS, 3000), "period": "2026-06",
                  "message": "提示"}).to_csv(out / "alerts.csv", index=False)
    (out / "model.json").write_text(json.dumps({"version": "1", "as_of": "2026-07-01", "backtest": {}}))


def timed(client: TestClient, url: str) -> float:
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        r = client.get(url)
        times.append(time.perf_counter() - t0)
        assert r.status_code == 200, (url, r.status_code)
    return statistics.median(times)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        settings = Settings(home=tmp, database_url=f"sqlite:///{tmp / 'ww.db'}", show_progress=False,
                            auth=AuthSettings(secret_key="bench-secret-0123456789abcdef-0123456789"))
        t0 = time.perf_counter()
        build(tmp / "out")
        _, sessions = open_store(settings.resolved_database_url())
        publish_run(tmp / "out", sessions, settings)
        print(f"build + publish: {time.perf_counter() - t0:.1f} s")
        app = create_app(settings, session_factory=sessions, routers=[console_router()])
        officer = TestClient(app)
        officer.__enter__()  # the lifespan loads the live run and creates the demo users
        officer.post("/login", data={"username": "officer1", "password": DEMO_PASSWORD})
        queue = officer.get("/queue").text
        lead = re.search(r'data-lead-id="(\d+)"', queue).group(1)
        sup = TestClient(app)
        sup.post("/login", data={"username": "supervisor", "password": DEMO_PASSWORD})
        for name, client, url in (("officer queue", officer, "/queue"), ("officer queue, text filter", officer, "/queue?q=无取水"),
                                  ("lead page", officer, f"/leads/{lead}"), ("supervisor queue", sup, "/queue"),
                                  ("dashboard", sup, "/dashboard")):
            print(f"{name:28s} {timed(client, url) * 1000:7.1f} ms")


if __name__ == "__main__":
    main()
