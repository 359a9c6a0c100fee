"""Stage 1, the market registry (市场监管): who exists, where, how big, since when, under which name and code."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.uscc import ALPHABET, check_characters
from synth import confounders, ids
from synth.arrays import cat, chars, fmt_dates, join_chars, pick, round_to
from synth.state import CityState
from synth.vocab import COOP_WORDS, DEV_ZONES, INDUSTRIES, LEGAL_FORMS, ROADS, SHOP_WORDS, TOWN_CHARS, TRADE_CHARS


def entities(g: CityState) -> None:
    """The entities table, and per entity: industry, district, size, water scale, registration window, names."""
    rng = g.rng("registry")
    _industry_and_size(g, rng)
    _registration(g, rng)
    etype = np.where(g.kind == "company", "1", np.where(g.kind == "shop", "2", "3"))
    division = np.where((g.kind == "company") & (rng.random(g.cfg.entities) < 0.2), g.cfg.city_division, g.dcode)
    g.uscc = uscc_codes(g, rng, etype, division)
    _names(g, rng)
    address = _addresses(g, rng)
    employees, capital = _size_columns(g, rng)
    g.tables["entities"] = pd.DataFrame(
        {
            "uscc": g.uscc,
            "name": g.name,
            "industry_code": g.code,
            "district": g.dname,
            "address": address,
            "registered_on": fmt_dates(g.reg),
            "deregistered_on": fmt_dates(g.dereg),
            "employees": employees,
            "registered_capital_wan": capital,
        }
    )


def _industry_and_size(g: CityState, rng) -> None:
    cfg, n = g.cfg, g.cfg.entities
    weights = np.array([row[2] for row in INDUSTRIES])
    g.ind = ind = rng.choice(len(INDUSTRIES), size=n, p=weights / weights.sum())
    g.code = np.array([r[0] for r in INDUSTRIES])[ind]
    g.kind = np.array([r[8] for r in INDUSTRIES])[ind]
    dw = np.asarray(cfg.district_weights, float)
    g.dist = dist = rng.choice(len(cfg.districts), size=n, p=dw / dw.sum())
    g.dname = np.array([d[0] for d in cfg.districts])[dist]
    g.dcode = np.array([d[1] for d in cfg.districts])[dist]
    g.dshort = np.array([d[2] for d in cfg.districts])[dist]
    # size: heavy-tailed employees, water scale from industry intensity
    logmed = np.array([r[6] for r in INDUSTRIES])[ind]
    g.emp = np.maximum(1, np.round(np.exp(rng.normal(logmed, 0.95)))).astype(np.int64)
    intensity = np.array([r[3] for r in INDUSTRIES])[ind]
    g.base = intensity * g.emp**0.85 * np.exp(rng.normal(0, 0.75, n))  # m3 per month
    g.coef = confounders.discharge_coefficients(g, rng, np.array([r[4] for r in INDUSTRIES])[ind])


def _registration(g: CityState, rng) -> None:
    """Registration and deregistration dates; a new firm registers inside the window."""
    n = g.cfg.entities
    age_days = rng.exponential(365 * 9, n)
    new = rng.random(n) < g.cfg.new_entity_share
    reg = g.start - np.minimum(age_days, 365 * 32).astype("timedelta64[D]")
    reg[new] = g.start + rng.integers(0, g.M * 30 - 200, new.sum()).astype("timedelta64[D]")
    dereg = np.full(n, np.datetime64("NaT"), dtype="datetime64[D]")
    gone = rng.random(n) < g.cfg.deregistered_share
    span = (g.end - reg).astype(np.int64)
    dereg[gone] = reg[gone] + (rng.uniform(0.3, 1.0, gone.sum()) * span[gone]).astype("timedelta64[D]")
    dereg[gone] = np.minimum(dereg[gone], g.end - np.timedelta64(20, "D"))
    g.reg, g.dereg = reg, dereg
    g.reg_m, g.dereg_m = g.month_of(reg), g.month_of(dereg)
    m = np.arange(g.M)
    g.active = (m[None, :] > g.reg_m[:, None]) & (m[None, :] < g.dereg_m[:, None])
    g.full_window = g.active.all(axis=1)


def organisation_check(body: np.ndarray) -> np.ndarray:
    """Check character of 8-character organisation codes (GB 11714), from an (n, 8) char array."""
    codes = np.ascontiguousarray(body.astype("<U1")).view(np.uint32).reshape(body.shape).astype(np.int64)
    values = np.where(codes <= ord("9"), codes - ord("0"), codes - ord("A") + 10)
    c = 11 - (values * np.array([3, 7, 9, 10, 5, 8, 4, 2])).sum(axis=1) % 11
    return np.where(c == 10, "X", np.where(c == 11, "0", c.astype(str)))


def uscc_codes(g: CityState, rng, etype: np.ndarray, division: np.ndarray) -> np.ndarray:
    """USCC: authority 9, type 1 company / 2 individual business / 3 cooperative, division, organisation code.

    Organisation codes are the old 8 digits, or ``MA`` + 6 characters for codes issued since the reform
    (late 2015); a keyed permutation of the entity's running number makes them unique city-wide."""
    n = len(etype)
    number = g.first_entity + np.arange(n)
    old_body = ids.digits(10**7 + ids.permute(number, 9 * 10**7, ids.key_for(g.cfg.seed, "org-old")), 8)
    ma = np.concatenate(
        [
            np.full((n, 2), "M"),
            ids.digits(ids.permute(number, len(ALPHABET) ** 6, ids.key_for(g.cfg.seed, "org-ma")), 6, ALPHABET),
        ],
        axis=1,
    )
    ma[:, 1] = "A"
    newer = (g.reg >= np.datetime64("2015-10-01")) | (rng.random(n) < 0.08)
    body = np.where(newer[:, None], ma, old_body)
    org = np.concatenate([body, organisation_check(body)[:, None]], axis=1)
    first17 = np.concatenate(
        [
            np.full((n, 1), "9"),
            etype[:, None],
            np.array([list(d) for d in np.unique(division)])[np.searchsorted(np.unique(division), division)],
            org,
        ],
        axis=1,
    )
    return join_chars(np.concatenate([first17, check_characters(first17)[:, None]], axis=1))


def _names(g: CityState, rng) -> None:
    """Registered names: prefix + trade name + industry word + legal form (shops and co-ops their own way)."""
    cfg, n, kind, code = g.cfg, g.cfg.entities, g.kind, g.code
    words = [r[1] for r in INDUSTRIES]
    word_choice = rng.integers(0, 3, n)
    word = np.array([w[0] for w in words])[g.ind]
    alt = np.array([w[-1] for w in words])[g.ind]
    word = np.where(word_choice == 0, alt, word)
    trade = cat(*chars(rng, TRADE_CHARS, (2, n)))
    old_trade = cat(*chars(rng, TRADE_CHARS, (2, n)))
    g.renamed = rng.random(n) < 0.06
    big = g.emp > 300
    form = np.where(
        big & (rng.random(n) < 0.5), pick(rng, LEGAL_FORMS[2:], n), pick(rng, LEGAL_FORMS[:2], n, [0.72, 0.28])
    )
    pk = rng.choice(5, size=n, p=[0.3, 0.17, 0.23, 0.22, 0.08])
    prefix = np.select([pk == 1, pk == 2, pk == 3], [cfg.city_short, cfg.city, g.dname], "")
    company = cat(prefix, trade, word, form)
    bracket = pk == 4  # 华宏（德州）纺织有限公司
    company = np.where(bracket, cat(trade, "（", cfg.city_short, "）", word, form), company)
    shopword = np.array([SHOP_WORDS.get(c, ("经营部",))[0] for c in code])
    shop_alt = np.array([SHOP_WORDS.get(c, ("经营部",))[-1] for c in code])
    shopword = np.where(rng.random(n) < 0.5, shop_alt, shopword)
    shop = cat(g.dname, trade, shopword)
    coop = cat(g.dname, trade, pick(rng, COOP_WORDS, n))
    name = np.select([kind == "company", kind == "shop"], [company, shop], coop)
    _unique_names(rng, name, trade, word, form, shopword, kind, g.dname, g.carry)
    g.name, g.trade, g.old_trade, g.word, g.form, g.prefix = name, trade, old_trade, word, form, prefix
    g.old_name = np.char.replace(name, trade, old_trade)


def _unique_names(rng, name, trade, word, form, shopword, kind, dname, carry) -> None:
    """The registry refuses a name already taken, in this block or an earlier one: give duplicates another
    trade name (in place), then register the names."""
    for _ in range(10):
        dup = pd.Series(name).duplicated().to_numpy() | carry.taken(name)
        if not dup.any():
            break
        t2 = cat(*chars(rng, TRADE_CHARS, (3, dup.sum())))
        name[dup] = cat(dname[dup], t2, np.where(kind[dup] == "company", cat(word[dup], form[dup]), shopword[dup]))
        trade[dup] = t2
    carry.register(name)


def _addresses(g: CityState, rng) -> np.ndarray:
    """Registered addresses: admin prefix + local part (street, development zone or village)."""
    cfg, n = g.cfg, g.cfg.entities
    road = pick(rng, ROADS, n)
    num = rng.integers(1, 1500, n).astype(str)
    zone = (g.kind == "company") & np.char.startswith(g.code, "C") & (rng.random(n) < 0.35)
    zone_name = cat(g.dshort, pick(rng, DEV_ZONES, n, [0.6, 0.2, 0.2]))
    rural = (np.char.startswith(g.code, "A") & (rng.random(n) < 0.7)) | (rng.random(n) < 0.05)
    village = cat(
        pick(rng, list(TOWN_CHARS), n),
        pick(rng, ["集镇", "庄镇", "店镇", "官镇"], n),
        pick(rng, list(TOWN_CHARS), n),
        pick(rng, ["庄村", "家村", "屯村", "楼村"], n),
    )
    local = np.where(zone, cat(zone_name, road, num, "号"), cat(road, num, "号"))
    local = np.where(rural, village, local)
    g.zone, g.zone_name, g.local = zone, zone_name, local
    address = cat(cfg.province, cfg.city, g.dname, local).astype(object)
    address[rng.random(n) < 0.02] = None
    return address


def _size_columns(g: CityState, rng) -> tuple[pd.arrays.IntegerArray, np.ndarray]:
    """Employees (often missing for shops) and registered capital (follows size loosely, often a round sum)."""
    n, kind = g.cfg.entities, g.kind
    employees = pd.array(g.emp, dtype="Int64")
    # missing for 6 % of entities, as in drops made elsewhere (`benchmarks/compare_drops.py`; 17 % until 2026-12-02)
    employees[rng.random(n) < np.where(kind == "company", 0.03, 0.14)] = pd.NA
    capital = g.emp * np.exp(rng.normal(np.log(3.0), 1.0, n))
    capital = np.where(capital > 100, round_to(capital, 10), np.maximum(np.round(capital), 1))
    rounds = np.array([10, 30, 50, 100, 200, 500, 1000, 2000, 5000])
    snap = rng.random(n) < 0.4
    capital[snap] = rounds[np.clip(np.searchsorted(rounds, capital[snap]), 0, len(rounds) - 1)]
    capital = capital.astype(float)
    capital[(kind != "company") & (rng.random(n) < 0.8)] = np.nan
    capital[rng.random(n) < 0.05] = np.nan
    return employees, capital
