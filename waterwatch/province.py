"""Province runs: a drop holding several cities, each run as its own city, one model for the province.

Layout (agreed with the generator, INTERFACES.md 06:12): ``DROP/city=<division>/`` is a complete
contract drop per city; ``DROP/province.json`` lists the cities ({"province", "cities": [{"folder",
"city", "division", ...}]}). Without province.json, every ``city=*`` sub-folder is a city.

Each city is ingested, linked, profiled and checked on its own (its own settings: bureau name that
signs its SMS, tax rates, district codes; ``Settings.cities``), into ``OUT/cities/<folder>/``: the
same files a city run writes. The risk model is trained once on every city's entities (features mean
the same everywhere; the province has more verdicts than any city), on a sample per backtest cut-off,
fitted on all; leads are ranked province-wide (``OUT/leads.csv`` with a ``city`` column) and per city
(``OUT/cities/<folder>/leads.csv``): queues stay per city and district. ``OUT/province.html`` and
``OUT/province_summary.csv`` put the cities side by side.
"""

from __future__ import annotations

import json
import os
import shutil
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from features.workspace import Workspace
from waterwatch.settings import CitySettings, Settings

PROVINCE_FILE = "province.json"
CITY_OUTPUTS = ("quarantine.csv", "linkage.csv", "alerts.csv", "cases.csv", "water_rights.csv", "outbox.csv")


def province_cities(drop: Path | str) -> list[dict] | None:
    """The cities of a province drop (folder, city, division), or None for a city drop."""
    drop = Path(drop)
    listing = drop / PROVINCE_FILE
    if listing.exists():
        data = json.loads(listing.read_text(encoding="utf-8"))
        return [{**c, "province": data.get("province", "")} for c in data["cities"]]
    folders = sorted(p for p in drop.glob("city=*") if p.is_dir())
    if not folders:
        return None
    return [{"folder": p.name, "city": p.name.split("=", 1)[1], "division": p.name.split("=", 1)[1]} for p in folders]


def city_settings(settings: Settings, city: dict) -> Settings:
    """The settings a city runs with: its entry in ``settings.cities`` (by division code or folder) over
    the province's; a city without one signs its messages as "<city>水利局"."""
    own = settings.cities.get(str(city.get("division"))) or settings.cities.get(city["folder"]) or CitySettings()
    rules = settings.rules.model_copy(update={
        "bureau_name": own.bureau_name or (f"{city['city']}水利局" if city.get("city") and not city["city"].isdigit() else settings.rules.bureau_name),
        **({"tax_rate_groundwater_yuan": own.tax_rate_groundwater_yuan} if own.tax_rate_groundwater_yuan is not None else {}),
        **({"tax_rate_surface_yuan": own.tax_rate_surface_yuan} if own.tax_rate_surface_yuan is not None else {}),
    })
    return settings.model_copy(update={"rules": rules})


def _say(settings: Settings, message: str) -> None:
    if settings.show_progress:
        print(message, flush=True)


def _link_parts(source: Path, target: Path, prefix: str) -> None:
    """Every partition of a city's output folder into the province's, without copying (hard links)."""
    target.mkdir(parents=True, exist_ok=True)
    for part in sorted(source.glob("part-*.parquet")):
        dest = target / f"part-{prefix}-{part.name.split('-', 1)[1]}"
        try:
            os.link(part, dest)
        except OSError:
            shutil.copyfile(part, dest)


def province_workspace(root: Path, cities: list[dict], city_ws: dict[str, Workspace], as_of: pd.Timestamp) -> Workspace:
    """The province's training workspace: every city's saved snapshots (as-of and cut-offs) and
    inspections, and each monthly table's first month (all training reads)."""
    if root.exists():
        shutil.rmtree(root)
    ws = Workspace(root)
    for i, c in enumerate(cities):
        folder = city_ws[c["folder"]].stage("profiles")
        for snap in sorted(folder.glob("snapshot*.parquet")):
            _link_parts(snap, ws.stage("profiles") / snap.name, f"{i:03d}")
    typed = ws.stage("typed")
    typed.mkdir(parents=True)
    inspections = [city_ws[c["folder"]].read("typed", "inspections") for c in cities if city_ws[c["folder"]].has("typed", "inspections")]
    if inspections:
        pd.concat(inspections, ignore_index=True).to_parquet(typed / "inspections.parquet", index=False)
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    for name in ("supply", "discharge", "abstraction"):
        firsts = []
        for c in cities:
            path = city_ws[c["folder"]].table_path("typed", name)
            if path.exists():
                first = pc.min(pq.read_table(path, columns=["month"]).column("month")).as_py()
                if first is not None:
                    firsts.append(pd.Timestamp(first))
        if firsts:
            pd.DataFrame({"month": pd.to_datetime([min(firsts)]).astype("datetime64[s]")}).to_parquet(typed / f"{name}.parquet", index=False)
    latest = [city_ws[c["folder"]].manifest().get("latest_as_of") for c in cities]
    ws.update_manifest(as_of=as_of.date().isoformat(), profiles_as_of=as_of.date().isoformat(),
                       cities=[c["folder"] for c in cities],  # the province's latest as-of: its shortest city's
                       latest_as_of=None if None in latest else min(latest))
    return ws


def run_province(drop: Path, out: Path, settings: Settings, as_of: str | None = None, trials: int | None = None,
                 stage_timer=None) -> dict:
    """Every city of a province drop through ingest, linkage, profiles and checks; one province model;
    leads province-wide and per city; the province summary. ``stage_timer(name)`` (optional) is a context
    manager wrapped around each stage (the benchmarks measure with it)."""
    from contextlib import nullcontext

    from waterwatch.pipeline import run_score, run_train

    timer = stage_timer or (lambda name: nullcontext())
    drop, out = Path(drop), Path(out)
    cities = province_cities(drop)
    if not cities:
        raise ValueError(f"{drop} is not a province drop (no {PROVINCE_FILE} and no city=* folders)")
    out.mkdir(parents=True, exist_ok=True)
    city_ws = {c["folder"]: Workspace(out / "cities" / c["folder"] / "workspace") for c in cities}
    workers = min(settings.scale.workers, len(cities))
    with _city_pool(workers) as each:
        city_run = _per_worker(settings, workers)  # what each city runs with
        with timer("ingest + link"):
            each(_ingest_city, [(c, drop / c["folder"], city_ws[c["folder"]].root, city_run, as_of) for c in cities])
        common = min(ws.as_of() for ws in city_ws.values())  # no city's features see a month another lacks
        for ws in city_ws.values():
            if ws.as_of() != common:
                ws.update_manifest(as_of=common.date().isoformat())
        with timer("profiles + snapshots"):
            each(_profile_city, [(c, city_ws[c["folder"]].root, city_run) for c in cities])
        with timer("checks"):
            found = each(_check_city, [(c, city_ws[c["folder"]].root, out / "cities" / c["folder"], city_run) for c in cities])
    checked = {c["folder"]: chk for c, chk in zip(cities, found)}
    pws = province_workspace(out / "workspace", cities, city_ws, common)
    with timer("train"):
        result = run_train(pws, settings, trials=trials)
    with timer("score"):
        leads = run_score(pws, settings)
        leads = _city_leads(leads, cities, city_ws)
        leads.to_csv(out / "leads.csv", index=False)
        for c in cities:
            mine = leads[leads["city"] == c["folder"]].drop(columns=["city"]).copy()
            mine.insert(1, "province_rank", mine.pop("rank"))
            mine.insert(0, "rank", range(1, len(mine) + 1))
            mine.to_csv(out / "cities" / c["folder"] / "leads.csv", index=False)
    summary = province_summary(cities, city_ws, checked, leads)
    model = json.loads((pws.stage("models") / "model.json").read_text(encoding="utf-8"))
    model["province"] = {  # the console's province page reads it from the published run
        "province": cities[0].get("province", ""), "as_of": common.date().isoformat(),
        "cities": [{k: (None if isinstance(v, float) and v != v else v) for k, v in row.items()}
                   for row in summary.to_dict("records")],
    }
    text = json.dumps(model, ensure_ascii=False, indent=2, default=str)
    (out / "model.json").write_text(text, encoding="utf-8")
    _write_city_models(out, cities, pws, model)
    summary.to_csv(out / "province_summary.csv", index=False)
    (out / "province.html").write_text(province_report(summary, cities, common), encoding="utf-8")
    return {"cities": [c["folder"] for c in cities], "as_of": common, "leads": len(leads), "train": result,
            "summary": summary}


def _write_city_models(out: Path, cities: list[dict], pws: Workspace, model: dict) -> None:
    """Each city folder is a city run of that city: `waterwatch publish` loads it into a store, the city's own or one
    shared by the province (leads, alerts and cases then carry the city). Its model.json is the province's, with the
    city, its ``artifact`` naming the province workspace's copy from the city's own workspace (``run_model_info``)."""
    from waterwatch.pipeline import run_model_info

    for c in cities:
        own = {**run_model_info(pws, model, out / "cities" / c["folder"]),
               "city": {"folder": c["folder"], "name": c.get("city", ""), "division": c.get("division", "")}}
        (out / "cities" / c["folder"] / "model.json").write_text(
            json.dumps(own, ensure_ascii=False, indent=2, default=str), encoding="utf-8")


def _per_worker(settings: Settings, workers: int) -> Settings:
    """With several cities at once, each city's partitions and ingest chunks that many times smaller: the
    run's memory stays about that of one city at a time (no output depends on either size)."""
    if workers <= 1:
        return settings
    scale = settings.scale.model_copy(update={"bucket_entities": max(1, settings.scale.bucket_entities // workers),
                                              "chunk_rows": max(1, settings.scale.chunk_rows // workers)})
    return settings.model_copy(update={"scale": scale})


@contextmanager
def _city_pool(workers: int):
    """``each(fn, jobs)``: ``fn(*job)`` for every job, in order, in ``workers`` processes at once (cities are
    independent until the province model), or here when one is enough."""
    if workers <= 1:
        yield lambda fn, jobs: [fn(*job) for job in jobs]
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # spawn, not fork: the parent may hold threads (DuckDB, a memory sampler); a fresh process per city, so
    # that memory a city's stage took goes back to the system when it ends
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), max_tasks_per_child=1) as pool:
        yield lambda fn, jobs: list(pool.map(fn, *zip(*jobs))) if jobs else []


def _ingest_city(city: dict, data: Path, root: Path, settings: Settings, as_of: str | None) -> None:
    from waterwatch.pipeline import run_ingest

    _say(settings, f"[{city['folder']}] ingest and link")
    run_ingest(data, root, city_settings(settings, city), as_of=as_of)


def _profile_city(city: dict, root: Path, settings: Settings) -> None:
    from waterwatch.pipeline import run_profiles

    _say(settings, f"[{city['folder']}] profiles")
    run_profiles(Workspace(root), city_settings(settings, city), load=False)


def _check_city(city: dict, root: Path, folder: Path, settings: Settings) -> dict:
    """The city's checks, its output files; the alerts and cases the province summary counts."""
    from waterwatch.pipeline import run_checks

    _say(settings, f"[{city['folder']}] checks")
    ws = Workspace(root)
    checked = run_checks(ws, city_settings(settings, city))
    _write_city_outputs(folder, ws, checked)
    return {"alerts": checked["alerts"], "cases": checked["cases"]}


def _write_city_outputs(folder: Path, ws: Workspace, checked: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(ws.stage("quarantine") / "quarantine.csv", folder / "quarantine.csv")
    (folder / "ingest_summary.json").write_text(json.dumps(ws.manifest().get("ingest_summary", {}), indent=2), encoding="utf-8")
    links = ws.read("linked", "linkage")
    links[["source", "account_id", "account_name", "uscc", "method", "confidence", "status"]].to_csv(folder / "linkage.csv", index=False)
    for name in ("alerts", "cases", "water_rights", "outbox"):
        if name in checked:
            checked[name].to_csv(folder / f"{name}.csv", index=False)


def _city_leads(leads: pd.DataFrame, cities: list[dict], city_ws: dict[str, Workspace]) -> pd.DataFrame:
    """Province leads with each entity's city (by the city whose registry holds it)."""
    import pyarrow.parquet as pq

    owner = pd.concat([
        pd.DataFrame({"uscc": pq.read_table(city_ws[c["folder"]].table_path("typed", "entities"), columns=["uscc"]).column("uscc").to_pylist(),
                      "city": c["folder"]})
        for c in cities
    ]).drop_duplicates("uscc").set_index("uscc")["city"]
    out = leads.copy()
    out.insert(2, "city", out["uscc"].map(owner).fillna(""))
    return out


LEVELS = ("red", "orange", "yellow")


def province_summary(cities: list[dict], city_ws: dict[str, Workspace], checked: dict, leads: pd.DataFrame) -> pd.DataFrame:
    """One row per city: entities, alerts by colour, cases, leads in the province's top 1 %, inspections
    (leads worked) and their hit rate (violations found per inspection with a verdict)."""
    top = max(1, int(round(0.01 * len(leads))))
    rows = []
    for c in cities:
        ws, chk = city_ws[c["folder"]], checked[c["folder"]]
        alerts, cases = chk["alerts"], chk.get("cases", pd.DataFrame())
        insp = ws.read("typed", "inspections") if ws.has("typed", "inspections") else pd.DataFrame(columns=["outcome"])
        decided = insp[insp["outcome"].isin(["violation", "no_violation"])]
        row = {
            "city": c["folder"], "name": c.get("city", ""), "division": c.get("division", ""),
            "entities": int((leads["city"] == c["folder"]).sum()),
            "alerts": len(alerts),
            **{f"alerts_{lvl}": int((alerts["level"] == lvl).sum()) for lvl in LEVELS},
            "cases": len(cases),
            "leads_top_1pct": int((leads.head(top)["city"] == c["folder"]).sum()),
            "inspections": len(insp),
            "violations_found": int((decided["outcome"] == "violation").sum()),
            "hit_rate": float((decided["outcome"] == "violation").mean()) if len(decided) else float("nan"),
        }
        rows.append(row)
    return pd.DataFrame(rows)


def province_report(summary: pd.DataFrame, cities: list[dict], as_of: pd.Timestamp) -> str:
    """A self-contained HTML page: the cities side by side (no script, no outside address)."""
    from html import escape

    head = ["城市 City", "行政区划 Division", "主体 Entities", "预警 Alerts", "红 Red", "橙 Orange", "黄 Yellow",
            "案件 Cases", "全省前1%线索 Top 1 % leads", "核查 Inspections", "查实 Found", "命中率 Hit rate"]
    cells = []
    for r in summary.itertuples(index=False):
        hit = "—" if pd.isna(r.hit_rate) else f"{r.hit_rate:.0%}"
        vals = [r.name or r.city, r.division, f"{r.entities:,}", f"{r.alerts:,}", f"{r.alerts_red:,}", f"{r.alerts_orange:,}",
                f"{r.alerts_yellow:,}", f"{r.cases:,}", f"{r.leads_top_1pct:,}", f"{r.inspections:,}", f"{r.violations_found:,}", hit]
        cells.append("<tr>" + "".join(f"<td>{escape(str(v))}</td>" for v in vals) + "</tr>")
    width = max(1, int(summary["alerts"].max()) if len(summary) else 1)
    bars = "".join(
        f'<div class="bar"><span>{escape(str(r.name or r.city))}</span>'
        + "".join(f'<i class="{lvl}" style="width:{300 * getattr(r, "alerts_" + lvl) / width:.1f}px"></i>' for lvl in LEVELS)
        + "</div>"
        for r in summary.itertuples(index=False)
    )
    province = escape(str(cities[0].get("province", ""))) if cities else ""
    return f"""<!doctype html><html lang="zh"><head><meta charset="utf-8"><title>{province} 全省汇总 Province summary</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}
td:first-child{{text-align:left}}.bar{{margin:2px 0}}.bar span{{display:inline-block;width:8em}}.bar i{{display:inline-block;height:12px}}
.red{{background:#d73027}}.orange{{background:#fc8d59}}.yellow{{background:#fee08b}}</style></head><body>
<h1>{province} 全省汇总 <small>Province summary</small></h1>
<p>数据截至 {as_of:%Y年%m月} 之前（as of {as_of:%Y-%m-%d}）；{len(summary)} 个城市 cities。</p>
<table><thead><tr>{''.join(f'<th>{escape(h)}</th>' for h in head)}</tr></thead><tbody>{''.join(cells)}</tbody></table>
<h2>预警按颜色 Alerts by colour</h2>{bars}
<p>命中率 = 有结论的核查中查实违法的比例 (hit rate = violations found per inspection with a verdict).</p>
</body></html>"""
