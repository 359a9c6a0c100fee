"""Summary statistics of data drops side by side: our generator's cities beside drops made elsewhere.

Reads only the nine contract tables of each drop (never truth.csv or
link_truth.csv), so it compares what a real client would see: volumes,
shares of accounts with a USCC, name variants, measured discharge, permit
use against quota, declarations against meters. It is a check, not a target:
the generator's rates come from docs/generator.md, not from these numbers.

    .venv/bin/python benchmarks/compare_drops.py [--entities 6000 --seed 11] [DROP ...]

Without DROP arguments it compares a freshly generated city with the shared
sample city and the two validation cities.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared"
if not SHARED.is_dir():  # a worktree beside the main checkout
    SHARED = Path("/work/shared")
REFERENCES = [
    SHARED / "contract" / "sample-city",
    SHARED / "validation-cities" / "dezhou-6000",
    SHARED / "validation-cities" / "liaocheng-6000",
]
TABLES = ("entities", "permits", "abstraction", "supply", "discharge", "tax", "plans", "projects", "inspections")


def read_drop(path: Path) -> dict[str, pd.DataFrame]:
    out = {}
    for name in TABLES:
        csv, parquet = path / f"{name}.csv", path / f"{name}.parquet"
        if csv.exists():
            out[name] = pd.read_csv(csv, dtype=str, keep_default_na=False, encoding="utf-8-sig")
        elif parquet.exists():
            out[name] = pd.read_parquet(parquet).astype(str).replace({"None": "", "nan": "", "<NA>": "", "NaT": ""})
        else:
            out[name] = pd.DataFrame()
        if "month" in out[name]:  # malformed rows (bad months) are left out, as ingest would quarantine them
            out[name] = out[name][out[name]["month"].str.fullmatch(r"\d{4}-(0[1-9]|1[0-2])")]
    return out


def _num(s: pd.Series) -> pd.Series:
    return pd.to_numeric(s, errors="coerce")


def _q(s: pd.Series, qs=(0.1, 0.5, 0.9, 0.99)) -> str:
    s = s.dropna()
    return "/".join(f"{v:,.0f}" for v in s.quantile(list(qs))) if len(s) else "-"


def registry_stats(t: dict) -> dict:
    e = t["entities"]
    months = sorted(set(t["supply"]["month"])) if len(t["supply"]) else []
    first = months[0] if months else "0000-00"
    emp = _num(e["employees"])
    return {
        "entities": len(e),
        "deregistered share": (e["deregistered_on"] != "").mean(),
        "registered in window": (e["registered_on"].str[:7] >= first).mean(),
        "employees p10/p50/p90/p99": _q(emp),
        "employees missing": emp.isna().mean(),
        "capital missing": (e["registered_capital_wan"] == "").mean(),
        "section C / F / H / A": "/".join(f"{(e['industry_code'].str[0] == s).mean():.2f}" for s in "CFHA"),
        "names with 有限公司": e["name"].str.contains("有限").mean(),
    }


def _misread_share(a: pd.DataFrame) -> float:
    """Share of an account's months that look keyed with an extra digit (``features.profile_series``'s rule)."""
    from features.profile_series import without_misreads

    wide = a.pivot_table(index="account_id", columns="month", values="v", aggfunc="sum")
    return float(without_misreads(wide.to_numpy())[1].sum() / max(wide.notna().to_numpy().sum(), 1))


def _zero_bill_stats(a: pd.DataFrame) -> tuple[float, float]:
    """Share of accounts read every second month (0 in at least 80 % of their odd months, in under 20 % of their
    even ones), and the bills per 1,000 that ``features.profile_series.zero_bills`` reads as unknown."""
    from features.profile_series import zero_bills

    wide = a.pivot_table(index="account_id", columns="month", values="v", aggfunc="sum")
    wide = wide.loc[:, [c for c in wide.columns if len(str(c)) == 7 and str(c)[5:].isdigit()]]
    odd = np.array([int(str(c)[5:]) % 2 == 1 for c in wide.columns])
    zero = (wide == 0).to_numpy()
    billed = wide.notna().to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        z_odd = zero[:, odd].sum(1) / billed[:, odd].sum(1)
        z_even = zero[:, ~odd].sum(1) / billed[:, ~odd].sum(1)
    every_second = float(np.mean((z_odd >= 0.8) & (z_even < 0.2))) if len(wide) else np.nan
    return every_second, 1000 * float(zero_bills(wide.to_numpy()).sum() / max(billed.sum(), 1))


def _gap_share(a: pd.DataFrame) -> float:
    """Share of accounts with a month of no row between two billed months."""
    month = a["month"].astype("str")
    ok = month.str.match(r"^[0-9]{4}-(0[1-9]|1[0-2])$")
    number = month[ok].str[:4].astype(int) * 12 + month[ok].str[5:7].astype(int)
    span = number.groupby(a.loc[ok, "account_id"]).agg(["min", "max", "nunique"])
    return float(((span["max"] - span["min"] + 1) > span["nunique"]).mean()) if len(span) else np.nan


def account_stats(t: dict, source: str) -> dict:
    a = t[source]
    e = t["entities"]
    if a.empty:
        return {}
    acc = a.groupby("account_id").agg(name=("account_name", "last"), uscc=("uscc", "last"), rows=("month", "size"))
    vol = _num(a["volume_m3"])
    out = {
        f"{source} accounts per entity": len(acc) / max(len(e), 1),
        f"{source} months per account": acc["rows"].mean(),
        f"{source} accounts with uscc": (acc["uscc"] != "").mean(),
        f"{source} names = registered name": acc["name"].isin(set(e["name"])).mean(),
        f"{source} m3/month p10/p50/p90/p99": _q(vol),
        f"{source} zero months": (vol == 0).mean(),
        f"{source} misread months (per 1,000)": 1000 * _misread_share(a.assign(v=vol)),
        f"{source} accounts missing a bill between two": _gap_share(a),
    }
    every_second, lone_zeros = _zero_bill_stats(a.assign(v=vol))
    out[f"{source} accounts read every second month"] = every_second
    out[f"{source} lone zero bills (per 1,000)"] = lone_zeros
    if source == "discharge":
        measured = a["measured"].str.lower() == "true"
        out["discharge measured rows"] = measured.mean()
        est = a[~measured].assign(year=lambda d: d["month"].str[:4])
        flat = est.groupby(["account_id", "year"])["volume_m3"].nunique()
        out["estimated account-years flat"] = (flat == 1).mean() if len(flat) else np.nan
        m = a[measured].assign(v=lambda d: _num(d["volume_m3"]), wet=lambda d: d["month"].str[5:].isin(["07", "08"]))
        wet = m.groupby(["account_id", "wet"])["v"].mean().unstack()
        if True in wet and False in wet:
            out["measured accounts wet/dry > 1.5"] = ((wet[True] / wet[False]) > 1.5).mean()
    return out


def _per_entity(a: pd.DataFrame, months: list[str]) -> pd.Series:
    """Last-12-month volume per USCC written on the account (accounts without a code are left out)."""
    recent = a[(a["uscc"] != "") & a["month"].isin(months[-12:])]
    return recent.assign(v=_num(recent["volume_m3"])).groupby("uscc")["v"].sum()


def balance_stats(t: dict) -> dict:
    s, d = t["supply"], t["discharge"]
    if s.empty or d.empty:
        return {}
    months = sorted(set(s["month"]))
    sup, dis = _per_entity(s, months), _per_entity(d, months)
    ab = _metered_per_entity(t, months[-12:])
    both = sup.index.intersection(dis.index)
    water = sup.reindex(both).fillna(0) + ab.reindex(both).fillna(0)
    ratio = dis.reindex(both) / water.where(water > 0)
    sup_codes = set(s.loc[s["uscc"] != "", "uscc"])
    dis_codes = set(d.loc[d["uscc"] != "", "uscc"])
    return {
        "discharge/(supply+metered) p10/p50/p90 (x100)": _q(ratio * 100, (0.1, 0.5, 0.9)),
        "ratio > 1.2": (ratio > 1.2).mean(),
        "ratio > 2": (ratio > 2).mean(),
        "coded supply entities with coded discharge": len(sup_codes & dis_codes) / max(len(sup_codes), 1),
    }


def _metered_per_entity(t: dict, months: list[str]) -> pd.Series:
    ab, p = t["abstraction"], t["permits"]
    if ab.empty:
        return pd.Series(dtype=float)
    rows = ab[ab["month"].isin(months)].merge(p[["permit_id", "uscc"]], on="permit_id")
    return rows.assign(v=_num(rows["volume_m3"])).groupby("uscc")["v"].sum()


def permit_stats(t: dict) -> dict:
    p, ab = t["permits"], t["abstraction"]
    if p.empty:
        return {}
    holders = p["uscc"].nunique()
    months = sorted(set(ab["month"]))
    out = {
        "permits per 1000 entities": 1000 * len(p) / len(t["entities"]),
        "permits per holder": len(p) / holders,
        "status valid/cancelled/revoked": "/".join(f"{(p['status'] == s).mean():.2f}" for s in ("valid", "cancelled", "revoked")),
        "groundwater share": (p["source"] == "groundwater").mean(),
        "quota p10/p50/p90": _q(_num(p["annual_quota_m3"]), (0.1, 0.5, 0.9)),
        "meters per permit in use": ab.groupby("permit_id")["meter_id"].nunique().mean(),
        "abstraction online rows": (ab["reading"] == "online").mean(),
        "abstraction m3/month p10/p50/p90/p99": _q(_num(ab["volume_m3"])),
    }
    out.update(_quota_use(p, ab, months))
    out.update(_after_expiry(p, ab))
    return out


def _quota_use(p: pd.DataFrame, ab: pd.DataFrame, months: list[str]) -> dict:
    """Metered volume of each full calendar year over the quota of the permit it was recorded under."""
    years = [y for y in sorted({m[:4] for m in months}) if sum(m[:4] == y for m in months) == 12]
    rows = ab.assign(year=ab["month"].str[:4], v=_num(ab["volume_m3"]))
    rows = rows[rows["year"].isin(years)].groupby(["permit_id", "year"])["v"].sum().reset_index()
    rows = rows.merge(p[["permit_id", "annual_quota_m3"]], on="permit_id")
    r = rows["v"] / _num(rows["annual_quota_m3"])
    return {
        "permit-years metered/quota p50/p90": _q(r * 100, (0.5, 0.9)) + " %",
        "permit-years over quota (>1.0 / >1.1 / >1.3)": "/".join(f"{(r > x).mean():.3f}" for x in (1.0, 1.1, 1.3)),
    }


def _after_expiry(p: pd.DataFrame, ab: pd.DataFrame) -> dict:
    """Meter months recorded under a permit after its valid_to month: how many, and how long."""
    rows = ab.merge(p[["permit_id", "valid_to"]], on="permit_id")
    late = rows[rows["month"] > rows["valid_to"].str[:7]]
    per = late.groupby("permit_id")["month"].nunique()
    return {
        "permits metered after expiry": len(per) / max(ab["permit_id"].nunique(), 1),
        "their late months p50/max": f"{per.median():.0f}/{per.max():.0f}" if len(per) else "-",
    }


def tax_stats(t: dict) -> dict:
    tax, p, ab = t["tax"], t["permits"], t["abstraction"]
    if tax.empty or ab.empty:
        return {}
    rows = ab.merge(p[["permit_id", "uscc", "source"]], on="permit_id")
    per = pd.PeriodIndex(rows["month"], freq="M").asfreq("Q")
    rows = rows.assign(period=per.year.astype(str) + "-Q" + per.quarter.astype(str), v=_num(rows["volume_m3"]))
    metered = rows.groupby(["uscc", "period", "source"])["v"].sum()
    declared = tax.assign(v=_num(tax["declared_m3"])).groupby(["uscc", "period", "source"])["v"].sum()
    r = (declared / metered.reindex(declared.index)).dropna()
    r = r[np.isfinite(r)]
    return {
        "tax rows per taxpayer": len(tax) / max(tax["uscc"].nunique(), 1),
        "declared/metered p5/p25/p50/p75/p95 (x100)": _q(r * 100, (0.05, 0.25, 0.5, 0.75, 0.95)),
        "within 3 % / within 15 % / below 70 %": "/".join(
            f"{v:.3f}" for v in ((r - 1).abs().le(0.03).mean(), (r - 1).abs().le(0.15).mean(), (r < 0.7).mean())
        ),
        "taxpayers without a permit": 1 - tax["uscc"].isin(set(p["uscc"])).mean(),
    }


def other_stats(t: dict) -> dict:
    n = len(t["entities"]) / 1000
    ins = t["inspections"]
    return {
        "plans per 1000 entities": len(t["plans"]) / n,
        "projects per 1000 entities": len(t["projects"]) / n,
        "projects with dewatering": (t["projects"]["dewatering"].str.lower() == "true").mean(),
        "inspections per 1000 entities": len(ins) / n,
        "inspection outcomes violation/none/unreachable": "/".join(
            f"{(ins['outcome'] == o).mean():.2f}" for o in ("violation", "no_violation", "unreachable")
        ),
    }


def summary(path: Path) -> dict:
    t = read_drop(path)
    out = {}
    for part in (registry_stats(t), account_stats(t, "supply"), account_stats(t, "discharge"), balance_stats(t),
                 permit_stats(t), tax_stats(t), other_stats(t)):  # fmt: skip
        out.update(part)
    return out


def _fmt(v) -> str:
    if isinstance(v, float):
        return "-" if np.isnan(v) else (f"{v:.3f}" if abs(v) < 10 else f"{v:,.1f}")
    return str(v)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("drops", nargs="*", type=Path)
    parser.add_argument("--entities", type=int, default=6000)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    drops = list(args.drops)
    with tempfile.TemporaryDirectory() as tmp:
        if not drops:
            from synth import SynthConfig, generate_city

            ours = Path(tmp) / f"ours-{args.entities}-{args.seed}"
            generate_city(SynthConfig(entities=args.entities, seed=args.seed), ours)
            drops = [ours] + [p for p in REFERENCES if p.is_dir()]
        stats = {p.name: summary(p) for p in drops}
    table = pd.DataFrame(stats)
    width = max(len(str(i)) for i in table.index)
    print(f"{'':<{width}}  " + "  ".join(f"{c[:18]:>18}" for c in table.columns))
    for key, row in table.iterrows():
        print(f"{key:<{width}}  " + "  ".join(f"{_fmt(v):>18}" for v in row))


if __name__ == "__main__":
    main()
