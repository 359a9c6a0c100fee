"""The service under load: single-entity score lookups and single-row predictions at a steady rate, and the
50-lead queue page.

Publishes a fake 20,000-entity, 36-month run into a fresh SQLite store (or the empty database of
``--database-url``), starts uvicorn with one worker on 127.0.0.1, drives ``GET /api/v1/scores/{uscc}`` at 200 requests/s for 20 s from an
open-loop async httpx client (bounded concurrency; latency measured from each request's scheduled
start, so queueing delay counts), then times the queue page of 50 leads.
Then generates a city (--predict-entities), runs the pipeline, publishes the run (its champion model) and drives
``POST /api/v1/scores/predict`` with one entity's snapshot features per request, at the same rate and with the
same clock, checking each returned score against the run's leads.csv.
Targets: p99 < 50 ms for score lookups and single-row predictions, < 100 ms for the queue page.

    .venv/bin/python benchmarks/bench_api.py [--rate 200] [--seconds 20] [--entities 20000] [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SECRET = "benchmark-secret-key-of-at-least-32-chars"
PASSWORD = "benchmark-password-long"


def app_factory():
    """uvicorn --factory entry: the app over the store the benchmark prepared (URL given by the parent)."""
    from serving.api import create_app
    from serving.settings import AuthSettings
    from waterwatch.settings import Settings

    settings = Settings(database_url=os.environ["WW_BENCH_DATABASE_URL"], auth=AuthSettings(secret_key=SECRET))
    return create_app(settings, demo_users=False)


def fake_run(out: Path, n: int, months: int = 36, districts: int = 11, seed: int = 0) -> list[str]:
    """A run output folder shaped like the pipeline's (leads, profiles, alerts, outbox, model.json)."""
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    uscc = np.array([f"91371400{i:010d}" for i in range(n)])
    names = np.array([f"德州市测试企业{i}有限公司" for i in range(n)])
    district = np.array([f"区县{i % districts:02d}" for i in range(n)])
    industry = rng.choice(["C1713", "C3489", "F5100", "H6110", "E4700", "A0111"], n)
    risk = np.sort(rng.beta(1, 8, n))[::-1]
    order = rng.permutation(n)
    pd.DataFrame({"rank": np.arange(1, n + 1), "uscc": uscc[order], "name": names[order], "district": district[order],
                  "industry_code": industry[order], "risk_score": risk,
                  "reasons": "近12个月排水量是自来水供水量的2.4倍；近一季纳税申报水量仅为计量取水量的35%；无有效取水许可",
                  "model_version": "7"}).to_csv(out / "leads.csv", index=False)
    month = pd.date_range("2023-10-01", periods=months, freq="MS")
    prof = pd.DataFrame({"uscc": np.repeat(uscc, months), "month": np.tile(month, n)})
    for col in ("supply_m3", "abstraction_m3", "discharge_m3", "tax_declared_m3_q"):
        prof[col] = rng.gamma(2.0, 300.0, len(prof)).round(1)
    prof.to_parquet(out / "profiles.parquet", index=False)
    k = n // 20
    pd.DataFrame({"alert_id": [f"A{i}" for i in range(k)], "kind": "quota", "level": "yellow", "uscc": uscc[:k],
                  "name": names[:k], "permit_id": None, "district": district[:k], "period": "2026", "value": 0.85,
                  "threshold": 0.8, "unit": "share", "message": "年度取水量已达许可水量的85%",
                  "audience": "user"}).to_csv(out / "alerts.csv", index=False)
    pd.DataFrame({"message_id": [f"M{i}" for i in range(k)], "alert_id": [f"A{i}" for i in range(k)],
                  "uscc": uscc[:k], "recipient": "13800000000", "text": "提醒", "segments": 1,
                  "status": "queued"}).to_csv(out / "outbox.csv", index=False)
    (out / "model.json").write_text(json.dumps({"version": "7", "trained_at": "2026-11-01T00:00:00+00:00",
                                                "as_of": "2026-10-01", "backtest": {"precision_at_k": 0.5}}))
    return uscc.tolist()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc), to tell CPU cost from contention."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_note(server_ms: float) -> str:
    """The server's CPU per request and the single-core ceiling it implies: less sensitive to a busy machine
    than the throughput (which other processes' load depresses), with the load averages beside it."""
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    return (f"CPU per request: server {server_ms:.2f} ms (single-core ceiling {1000 / server_ms:.0f} req/s); "
            f"load averages {load} on {os.cpu_count()} cores")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def drive(base: str, headers: dict, codes: list[str], rate: float, seconds: float, limit: int = 64,
                bodies: dict | None = None, answers: list | None = None):
    """Open-loop load: GET /scores/{code}, or POST /scores/predict with ``bodies[code]`` when given (each
    response's score then kept in ``answers`` as (code, score))."""
    import httpx

    rng = np.random.default_rng(1)
    total = int(rate * seconds)
    latencies = np.full(total, np.nan)
    statuses = np.zeros(total, dtype=int)
    sem = asyncio.Semaphore(limit)
    limits = httpx.Limits(max_connections=limit, max_keepalive_connections=limit)
    async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits, timeout=10) as client:
        start = time.perf_counter()

        async def one(i: int, code: str):
            scheduled = start + i / rate
            async with sem:
                try:
                    if bodies is None:
                        r = await client.get(f"/api/v1/scores/{code}")
                    else:
                        r = await client.post("/api/v1/scores/predict", json=bodies[code])
                except httpx.TransportError:  # e.g. a keep-alive connection the server closed: counted, not fatal
                    latencies[i] = time.perf_counter() - scheduled
                    return
            latencies[i] = time.perf_counter() - scheduled
            statuses[i] = r.status_code
            if answers is not None and r.status_code == 200:
                answers.append((code, r.json()["scores"][0]["risk_score"]))

        tasks = []
        for i, code in enumerate(rng.choice(codes, total)):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i, str(code))))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - start
    return latencies * 1000, statuses, elapsed


def start_server(url: str):
    """uvicorn, one worker, on a free port, over the store at ``url``, as ``waterwatch serve`` runs it (httptools,
    uvloop); returns (process, base URL)."""
    import httpx

    port = free_port()
    env = {**os.environ, "WW_BENCH_DATABASE_URL": url}
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "bench_api:app_factory", "--factory", "--host", "127.0.0.1",
         "--port", str(port), "--workers", "1", "--http", "httptools", "--loop", "uvloop",
         "--log-level", "warning", "--no-access-log",
         "--app-dir", str(Path(__file__).parent)],
        env=env, cwd=str(ROOT),
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                return server, base
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    server.terminate()
    raise SystemExit("uvicorn did not come up")


def bench_predict(tmp: Path, entities: int, rate: float, seconds: float, url: str | None = None) -> None:
    """Single-row POST /scores/predict against a real champion: generated city, pipeline, publish (into ``url``,
    default a temporary SQLite file), load."""
    import httpx

    from sqlalchemy import select

    from serving.publish import publish_run
    from serving.services import users
    from serving.settings import AuthSettings
    from serving.store import User, open_store
    from synth import SynthConfig, generate_city
    from training.artifacts import load_champion
    from waterwatch.pipeline import run_pipeline
    from waterwatch.settings import Settings

    drop, out = tmp / "predict-drop", tmp / "predict-out"
    generate_city(SynthConfig(entities=entities, seed=7), drop)
    url = url or f"sqlite:///{tmp / 'predict-store.db'}"
    settings = Settings(home=tmp / "predict-var", database_url=url, auth=AuthSettings(secret_key=SECRET),
                        show_progress=False)
    t = time.perf_counter()
    run_pipeline(drop, out, settings, trials=0)
    print(f"predict: pipeline on a generated city of {entities:,} entities: {time.perf_counter() - t:.0f} s", flush=True)
    engine, sessions = open_store(url)
    publish_run(out, sessions, settings)
    with sessions() as s, s.begin():
        if s.scalar(select(User.id).where(User.username == "bench_sup")) is None:  # the lookups phase made it?
            users.create_user(s, "bench_sup", PASSWORD, "supervisor")
        key = users.create_api_key(s, "bench_sup", "benchmark")
    engine.dispose()
    bundle = load_champion(out / "workspace")
    snapshot = pd.read_parquet(out / "workspace" / "profiles" / "snapshot.parquet").set_index("uscc")
    rows = snapshot.reindex(columns=bundle.features)
    bodies = {}
    for uscc, row in rows.iterrows():
        features = {k: (None if pd.isna(v) else v if isinstance(v, str) else float(v)) for k, v in row.items()}
        bodies[str(uscc)] = {"rows": [{"id": str(uscc), "features": features}]}
    published = pd.read_csv(out / "leads.csv", dtype={"uscc": str}).set_index("uscc")["risk_score"]
    server, base = start_server(url)
    try:
        headers = {"X-API-Key": key}
        codes = list(bodies)
        with httpx.Client(base_url=base, timeout=10, headers=headers) as c:
            for code in codes[:50]:  # warm up
                r = c.post("/api/v1/scores/predict", json=bodies[code])
                assert r.status_code == 200, r.text[:300]
        answers: list = []
        cpu0, own0 = cpu_seconds(server.pid), time.process_time()
        lat, statuses, elapsed = asyncio.run(drive(base, headers, codes, rate, seconds, bodies=bodies, answers=answers))
        server_ms = (cpu_seconds(server.pid) - cpu0) / len(lat) * 1000
        client_ms = (time.process_time() - own0) / len(lat) * 1000
        equal = np.mean([abs(published[c] - p) <= 1e-12 * max(1.0, abs(p)) for c, p in answers]) if answers else 0.0
        backend = url.split(":", 1)[0].split("+", 1)[0]
        print(f"single-row predict (API key, {backend}): {len(lat):,} requests in {elapsed:.1f} s ({len(lat) / elapsed:.0f}/s), "
              f"{(statuses == 200).mean():.1%} 200, p50 {np.nanpercentile(lat, 50):.1f} ms, "
              f"p99 {np.nanpercentile(lat, 99):.1f} ms, max {np.nanmax(lat):.1f} ms (target p99 < 50 ms); "
              f"{equal:.1%} of scores equal to leads.csv; load client {client_ms:.2f} ms CPU per request; "
              f"{cpu_note(server_ms)}", flush=True)
    finally:
        server.terminate()
        server.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entities", type=int, default=20_000)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--database-url", default=None,
                        help="an empty database to publish into (e.g. a PostgreSQL one); default: a temporary SQLite file")
    parser.add_argument("--predict-entities", type=int, default=2_000, help="generated city for the predict phase")
    parser.add_argument("--only-predict", action="store_true", help="skip the lookups and the queue page")
    args = parser.parse_args()
    if args.only_predict:
        with tempfile.TemporaryDirectory(prefix="ww-bench-predict-") as tmp:
            bench_predict(Path(tmp), args.predict_entities, args.rate, args.seconds, args.database_url)
        return

    import httpx

    from serving.services import users
    from serving.publish import publish_run
    from serving.store import open_store
    from serving.settings import AuthSettings
    from waterwatch.settings import Settings

    with tempfile.TemporaryDirectory(prefix="ww-bench-api-") as tmp:
        tmp = Path(tmp)
        codes = fake_run(tmp / "out", args.entities)
        url = args.database_url or f"sqlite:///{tmp / 'store.db'}"
        settings = Settings(database_url=url, auth=AuthSettings(secret_key=SECRET))
        engine, sessions = open_store(url)
        t = time.perf_counter()
        counts = publish_run(tmp / "out", sessions, settings)
        print(f"publish {args.entities:,} entities x 36 months: {time.perf_counter() - t:.2f} s "
              f"(queue {counts['queue']}, series {counts['series']:,})", flush=True)
        t = time.perf_counter()
        publish_run(tmp / "out", sessions, settings)
        print(f"re-publish (idempotent): {time.perf_counter() - t:.2f} s", flush=True)
        with sessions() as s, s.begin():
            users.create_user(s, "bench_sup", PASSWORD, "supervisor")
            users.create_user(s, "bench_off", PASSWORD, "officer", "区县03")
            key = users.create_api_key(s, "bench_sup", "benchmark")
        engine.dispose()

        server, base = start_server(url)
        try:
            with httpx.Client(base_url=base, timeout=10) as c:
                tok = c.post("/api/v1/auth/token", data={"username": "bench_sup", "password": PASSWORD}).json()
                sup = {"Authorization": f"Bearer {tok['access_token']}"}
                tok = c.post("/api/v1/auth/token", data={"username": "bench_off", "password": PASSWORD}).json()
                off = {"Authorization": f"Bearer {tok['access_token']}"}
                for code in codes[:50]:  # warm up
                    c.get(f"/api/v1/scores/{code}", headers={"X-API-Key": key})

            for label, headers in (("API key", {"X-API-Key": key}), ("bearer token", sup)):
                cpu0, own0 = cpu_seconds(server.pid), time.process_time()
                lat, statuses, elapsed = asyncio.run(drive(base, headers, codes, args.rate, args.seconds))
                server_ms = (cpu_seconds(server.pid) - cpu0) / len(lat) * 1000
                client_ms = (time.process_time() - own0) / len(lat) * 1000
                ok = (statuses == 200).mean()
                print(f"score lookups ({label}): {len(lat):,} requests in {elapsed:.1f} s "
                      f"({len(lat) / elapsed:.0f}/s), {ok:.1%} 200, p50 {np.nanpercentile(lat, 50):.1f} ms, "
                      f"p99 {np.nanpercentile(lat, 99):.1f} ms, max {np.nanmax(lat):.1f} ms (target p99 < 50 ms); "
                      f"load client {client_ms:.2f} ms CPU per request; {cpu_note(server_ms)}", flush=True)

            with httpx.Client(base_url=base, timeout=10) as c:
                for label, headers, params in (
                    ("supervisor city queue", sup, {"page_size": 50}),
                    ("supervisor queue page 5", sup, {"page_size": 50, "page": 5}),
                    ("officer district queue", off, {"page_size": 50}),
                ):
                    times = []
                    for _ in range(50):
                        t = time.perf_counter()
                        r = c.get("/api/v1/leads", headers=headers, params=params)
                        times.append((time.perf_counter() - t) * 1000)
                        assert r.status_code == 200 and len(r.json()["items"]) == 50, r.text[:200]
                    print(f"lead queue page of 50 ({label}): p50 {np.percentile(times, 50):.1f} ms, "
                          f"max {max(times):.1f} ms over 50 calls (target < 100 ms)", flush=True)
                lead_id = c.get("/api/v1/leads", headers=off, params={"page_size": 1}).json()["items"][0]["id"]
                times = []
                for _ in range(50):
                    t = time.perf_counter()
                    assert c.get(f"/api/v1/leads/{lead_id}", headers=off).status_code == 200
                    times.append((time.perf_counter() - t) * 1000)
                print(f"lead detail with 36-month series: p50 {np.percentile(times, 50):.1f} ms, "
                      f"max {max(times):.1f} ms", flush=True)
        finally:
            server.terminate()
            server.wait(timeout=10)
        bench_predict(tmp, args.predict_entities, args.rate, args.seconds, args.database_url)


if __name__ == "__main__":
    main()
