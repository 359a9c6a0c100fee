"""A synthetic city: the ten departments' data drop with planted violations and their truth.

Modelled on how the departments' data really look, so that the platform can be
measured on cities it has never seen: the registry (市场监管) writes full
names; the water company's and the drainage company's clerks write short
names, branch suffixes, old names and typos, and fill the uscc for only part
of the accounts; water use has industry scale, seasonality, growth and
decline; discharge is a coefficient of total use, estimated for some accounts
and swollen by rain for combined sewers. Violations leave the trace they
leave in reality, next to confounders that make naive rules fail.

Everything is generated as whole (entity x month) matrices; the only Python
loops run over a handful of categories.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from features.contract import TABLES, VIOLATION_TYPES
from features.synth_io import break_rows, for_csv, for_parquet, table_formats
from features.synth_vocab import (
    BRANCH_SUFFIXES,
    COOP_WORDS,
    DEV_ZONES,
    DEZHOU_DISTRICTS,
    DISTRICT_WEIGHTS,
    DOOR_SUFFIXES,
    INDUSTRIES,
    LEGAL_FORMS,
    ORPHAN_PUBLIC,
    ORPHAN_RESIDENTIAL,
    RAIN_MM,
    ROADS,
    SEASONS,
    SHOP_WORDS,
    TOWN_CHARS,
    TRADE_CHARS,
    TYPO_CHARS,
)
from features.uscc import ALPHABET

DEFAULT_MIX: tuple[tuple[str, float], ...] = (
    ("private_well", 0.25),
    ("unpermitted_abstraction", 0.15),
    ("meter_tampering", 0.20),
    ("over_permit", 0.15),
    ("expired_permit", 0.10),
    ("tax_underreport", 0.15),
)
PERMIT_VIOLATIONS = ("meter_tampering", "over_permit", "expired_permit", "tax_underreport")


@dataclass(frozen=True)
class SynthConfig:
    """What the city looks like; every share is of registered entities unless said otherwise."""

    entities: int = 2000
    months: int = 36
    seed: int = 0
    end_month: str = "2026-10"
    province: str = "山东省"
    city: str = "德州市"
    city_short: str = "德州"
    city_division: str = "371400"
    permit_prefix: str = "取水(鲁德)字"
    districts: tuple[tuple[str, str, str], ...] = DEZHOU_DISTRICTS  # (name, division code, short)
    district_weights: tuple[float, ...] = DISTRICT_WEIGHTS
    violation_rate: float = 0.04
    violation_mix: tuple[tuple[str, float], ...] = DEFAULT_MIX
    supply_share: float = 0.85  # entities with a public-supply account
    discharge_share: float = 0.38  # entities with a discharge account (more for industry)
    uscc_filled_supply: float = 0.35
    uscc_filled_discharge: float = 0.5
    uscc_typo_share: float = 0.02  # of filled codes, mistyped by the clerk
    second_account_share: float = 0.06
    orphan_account_share: float = 0.08  # accounts of no registered entity, per entity
    park_share: float = 0.05  # small firms sharing an industrial-park account
    deregistered_share: float = 0.08
    permit_holder_boost: float = 0.6  # scales the industries' chance of holding a permit
    combined_sewer_share: float = 0.3
    estimated_discharge_share: float = 0.35
    efficiency_drop_share: float = 0.04
    growth_share: float = 0.12
    meter_replacement_share: float = 0.06
    inspections: int | None = None  # default scales with entities
    projects: int | None = None
    file_format: str = "csv"  # csv | parquet | mixed
    malformed_rows: int = 0

    def with_tampering_share(self, share: float) -> "SynthConfig":
        """A copy where ``share`` of the violations are meter tampering, the others keeping their proportions."""
        if not 0.0 <= share <= 1.0:
            raise ValueError("tampering share must be within [0, 1]")
        others = [(t, w) for t, w in self.violation_mix if t != "meter_tampering"]
        total = sum(w for _, w in others) or 1.0
        mix = tuple((t, (1.0 - share) * w / total) for t, w in others) + (("meter_tampering", share),)
        return dataclasses.replace(self, violation_mix=mix)

    def __post_init__(self):
        if self.file_format not in ("csv", "parquet", "mixed"):
            raise ValueError("file_format must be csv, parquet or mixed")
        if self.months < 15:
            raise ValueError("at least 15 months are needed to plant violations with a before and an after")
        unknown = {t for t, _ in self.violation_mix} - set(VIOLATION_TYPES)
        if unknown:
            raise ValueError(f"unknown violation types {sorted(unknown)}")


@dataclass
class City:
    """A generated city: the drop's tables plus the generator's own knowledge (evaluation only)."""

    tables: dict[str, pd.DataFrame]
    truth: pd.DataFrame
    link_truth: pd.DataFrame
    park_members: pd.DataFrame  # source, account_id, uscc: who is behind each shared account
    malformed: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["table", "row_number", "column"]))
    internal: object = None  # the generator's state: true volumes, owners, lines (evaluation and tests only)


# -- small vectorised helpers ---------------------------------------------------


def _cat(*parts) -> np.ndarray:
    out = np.asarray(parts[0]).astype(str)
    for p in parts[1:]:
        out = np.char.add(out, np.asarray(p).astype(str))
    return out


def _pick(rng, pool, n, p=None) -> np.ndarray:
    return np.asarray(pool)[rng.choice(len(pool), size=n, p=p)]


def _chars(rng, alphabet: str, shape) -> np.ndarray:
    return np.array(list(alphabet))[rng.integers(0, len(alphabet), size=shape)]


def _join_chars(chars: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(chars.astype("<U1")).view(f"<U{chars.shape[1]}").ravel()


def _gb11714_check(body: np.ndarray) -> np.ndarray:
    """Check character of 8-character organisation codes (GB 11714), from an (n, 8) char array."""
    codes = np.ascontiguousarray(body.astype("<U1")).view(np.uint32).reshape(body.shape).astype(np.int64)
    values = np.where(codes <= ord("9"), codes - ord("0"), codes - ord("A") + 10)
    c = 11 - (values * np.array([3, 7, 9, 10, 5, 8, 4, 2])).sum(axis=1) % 11
    return np.where(c == 10, "X", np.where(c == 11, "0", c.astype(str)))


def uscc_check_characters(first17: np.ndarray) -> np.ndarray:
    """GB 32100 check characters of an (n, 17) char array (same rule as ``features.uscc.check_character``)."""
    lut = np.full(128, -1, dtype=np.int64)
    for i, ch in enumerate(ALPHABET):
        lut[ord(ch)] = i
    codes = np.ascontiguousarray(first17.astype("<U1")).view(np.uint32).reshape(first17.shape)
    weights = np.array([pow(3, i, 31) for i in range(17)], dtype=np.int64)
    total = (lut[codes] * weights).sum(axis=1)
    return np.array(list(ALPHABET))[(31 - total % 31) % 31]


def _round_to(x: np.ndarray, step: np.ndarray | float) -> np.ndarray:
    return np.round(np.asarray(x) / step) * step


def _fmt_dates(d: np.ndarray) -> np.ndarray:
    """datetime64[D] -> 'YYYY-MM-DD' text, NaT -> empty."""
    out = np.datetime_as_string(d.astype("datetime64[D]"), unit="D").astype(object)
    out[np.isnat(d)] = None
    return out


# -- the city ---------------------------------------------------------------------


class _Gen:
    """One generation run; attributes are the generator's internal state, all numpy arrays."""

    def __init__(self, cfg: SynthConfig):
        self.cfg = cfg
        seeds = np.random.SeedSequence(cfg.seed).spawn(12)
        self.rngs = [np.random.default_rng(s) for s in seeds]
        self.periods = pd.period_range(end=cfg.end_month, periods=cfg.months, freq="M")
        self.M = cfg.months
        self.cal = self.periods.month.to_numpy() - 1  # 0..11
        self.year = self.periods.year.to_numpy()
        self.month_text = self.periods.strftime("%Y-%m").to_numpy().astype(str)
        self.start = np.datetime64(self.periods[0].start_time.date(), "D")
        self.end = np.datetime64(self.periods[-1].end_time.date(), "D")
        self.month_start = self.periods.start_time.to_numpy().astype("datetime64[D]")
        self.tables: dict[str, pd.DataFrame] = {}

    def month_of(self, d: np.ndarray) -> np.ndarray:
        """Month index of dates (negative before the window, >= M after)."""
        m = d.astype("datetime64[M]").astype(np.int64) - self.month_start[0].astype("datetime64[M]").astype(np.int64)
        return np.where(np.isnat(d), 10**6, m)

    # entities ----------------------------------------------------------------
    def entities(self):
        cfg, rng, n = self.cfg, self.rngs[0], self.cfg.entities
        weights = np.array([row[2] for row in INDUSTRIES])
        ind = rng.choice(len(INDUSTRIES), size=n, p=weights / weights.sum())
        self.ind = ind
        code = np.array([r[0] for r in INDUSTRIES])[ind]
        kind = np.array([r[8] for r in INDUSTRIES])[ind]
        dw = np.asarray(cfg.district_weights, float)
        dist = rng.choice(len(cfg.districts), size=n, p=dw / dw.sum())
        self.dist = dist
        dname = np.array([d[0] for d in cfg.districts])[dist]
        dcode = np.array([d[1] for d in cfg.districts])[dist]
        dshort = np.array([d[2] for d in cfg.districts])[dist]

        # size: heavy-tailed employees, water scale from industry intensity
        logmed = np.array([r[6] for r in INDUSTRIES])[ind]
        emp = np.maximum(1, np.round(np.exp(rng.normal(logmed, 0.95)))).astype(np.int64)
        self.emp = emp
        intensity = np.array([r[3] for r in INDUSTRIES])[ind]
        self.base = intensity * emp**0.85 * np.exp(rng.normal(0, 0.5, n))  # m3 per month
        self.coef = np.clip(np.array([r[4] for r in INDUSTRIES])[ind] * rng.uniform(0.85, 1.12, n), 0.02, 1.2)

        # registration and deregistration
        age_days = rng.exponential(365 * 9, n)
        new = rng.random(n) < 0.12
        reg = self.start - np.minimum(age_days, 365 * 32).astype("timedelta64[D]")
        reg[new] = self.start + rng.integers(0, self.M * 30 - 200, new.sum()).astype("timedelta64[D]")
        dereg = np.full(n, np.datetime64("NaT"), dtype="datetime64[D]")
        gone = rng.random(n) < cfg.deregistered_share
        span = (self.end - reg).astype(np.int64)
        dereg[gone] = reg[gone] + (rng.uniform(0.3, 1.0, gone.sum()) * span[gone]).astype("timedelta64[D]")
        dereg[gone] = np.minimum(dereg[gone], self.end - np.timedelta64(20, "D"))
        self.reg, self.dereg = reg, dereg
        self.reg_m, self.dereg_m = self.month_of(reg), self.month_of(dereg)
        m = np.arange(self.M)
        self.active = (m[None, :] > self.reg_m[:, None]) & (m[None, :] < self.dereg_m[:, None])
        self.full_window = self.active.all(axis=1)

        # USCC: authority 9, type 1 company / 2 individual business / 3 cooperative
        etype = np.where(kind == "company", "1", np.where(kind == "shop", "2", "3"))
        division = np.where((kind == "company") & (rng.random(n) < 0.2), cfg.city_division, dcode)
        uscc = self._uscc(rng, etype, division, reg)
        self.uscc = uscc

        # names: prefix + trade name + industry word + legal form
        words = [r[1] for r in INDUSTRIES]
        word_choice = rng.integers(0, 3, n)
        word = np.array([w[0] for w in words])[ind]
        alt = np.array([w[-1] for w in words])[ind]
        word = np.where(word_choice == 0, alt, word)
        trade = _cat(*_chars(rng, TRADE_CHARS, (2, n)))
        old_trade = _cat(*_chars(rng, TRADE_CHARS, (2, n)))
        self.renamed = rng.random(n) < 0.06
        big = emp > 300
        form = np.where(
            big & (rng.random(n) < 0.5), _pick(rng, LEGAL_FORMS[2:], n), _pick(rng, LEGAL_FORMS[:2], n, [0.72, 0.28])
        )
        pk = rng.choice(5, size=n, p=[0.3, 0.17, 0.23, 0.22, 0.08])
        prefix = np.select([pk == 1, pk == 2, pk == 3], [cfg.city_short, cfg.city, dname], "")
        company = _cat(prefix, trade, word, form)
        bracket = pk == 4  # 华宏（德州）纺织有限公司
        company = np.where(bracket, _cat(trade, "（", cfg.city_short, "）", word, form), company)
        shopword = np.array([SHOP_WORDS.get(c, ("经营部",))[0] for c in code])
        shop_alt = np.array([SHOP_WORDS.get(c, ("经营部",))[-1] for c in code])
        shopword = np.where(rng.random(n) < 0.5, shop_alt, shopword)
        shop = _cat(dname, trade, shopword)
        coop = _cat(dname, trade, _pick(rng, COOP_WORDS, n))
        name = np.select([kind == "company", kind == "shop"], [company, shop], coop)
        # the registry refuses duplicate names: give duplicates another trade name
        for _ in range(10):
            dup = pd.Series(name).duplicated().to_numpy()
            if not dup.any():
                break
            t2 = _cat(*_chars(rng, TRADE_CHARS, (3, dup.sum())))
            name[dup] = _cat(
                dname[dup], t2, np.where(kind[dup] == "company", _cat(word[dup], form[dup]), shopword[dup])
            )
            trade[dup] = t2
        self.name, self.trade, self.old_trade, self.word, self.form = name, trade, old_trade, word, form
        self.prefix, self.kind, self.code = prefix, kind, code
        self.old_name = np.char.replace(name, trade, old_trade)

        # addresses: admin prefix + local part (street, dev zone or village)
        road = _pick(rng, ROADS, n)
        num = rng.integers(1, 1500, n).astype(str)
        zone = (kind == "company") & np.char.startswith(code, "C") & (rng.random(n) < 0.35)
        zone_name = _cat(dshort, _pick(rng, DEV_ZONES, n, [0.6, 0.2, 0.2]))
        rural = (np.char.startswith(code, "A") & (rng.random(n) < 0.7)) | (rng.random(n) < 0.05)
        village = _cat(
            _pick(rng, list(TOWN_CHARS), n),
            _pick(rng, ["集镇", "庄镇", "店镇", "官镇"], n),
            _pick(rng, list(TOWN_CHARS), n),
            _pick(rng, ["庄村", "家村", "屯村", "楼村"], n),
        )
        local = np.where(zone, _cat(zone_name, road, num, "号"), _cat(road, num, "号"))
        local = np.where(rural, village, local)
        self.zone, self.zone_name, self.local, self.dname, self.dshort = zone, zone_name, local, dname, dshort
        address = _cat(cfg.province, cfg.city, dname, local).astype(object)
        address[rng.random(n) < 0.02] = None

        employees = pd.array(emp, dtype="Int64")
        employees[rng.random(n) < np.where(kind == "company", 0.1, 0.35)] = pd.NA
        # registered capital follows size loosely; many firms register round sums
        capital = emp * np.exp(rng.normal(np.log(3.0), 1.0, n))
        capital = np.where(capital > 100, _round_to(capital, 10), np.maximum(np.round(capital), 1))
        rounds = np.array([10, 30, 50, 100, 200, 500, 1000, 2000, 5000])
        snap = rng.random(n) < 0.4
        capital[snap] = rounds[np.clip(np.searchsorted(rounds, capital[snap]), 0, len(rounds) - 1)]
        capital = capital.astype(float)
        capital[(kind != "company") & (rng.random(n) < 0.8)] = np.nan
        capital[rng.random(n) < 0.05] = np.nan
        self.tables["entities"] = pd.DataFrame(
            {
                "uscc": uscc,
                "name": name,
                "industry_code": code,
                "district": dname,
                "address": address,
                "registered_on": _fmt_dates(reg),
                "deregistered_on": _fmt_dates(dereg),
                "employees": employees,
                "registered_capital_wan": capital,
            }
        )

    def _uscc(self, rng, etype, division, reg) -> np.ndarray:
        n = len(etype)
        digits = _chars(rng, "0123456789", (n, 8))
        digits[:, 0] = _chars(rng, "123456789", n)
        old_body = digits
        ma = _chars(rng, ALPHABET, (n, 8))
        ma[:, 0], ma[:, 1] = "M", "A"
        newer = (reg >= np.datetime64("2015-10-01")) | (rng.random(n) < 0.08)
        body = np.where(newer[:, None], ma, old_body)
        org = np.concatenate([body, _gb11714_check(body)[:, None]], axis=1)
        first17 = np.concatenate(
            [
                np.full((n, 1), "9"),
                etype[:, None],
                np.array([list(d) for d in np.unique(division)])[np.searchsorted(np.unique(division), division)],
                org,
            ],
            axis=1,
        )
        codes = _join_chars(np.concatenate([first17, uscc_check_characters(first17)[:, None]], axis=1))
        dup = pd.Series(codes).duplicated().to_numpy()
        if dup.any():  # vanishingly rare; re-draw the colliding organisation codes
            codes[dup] = self._uscc(rng, etype[dup], division[dup], reg[dup])
        return codes

    # water use ------------------------------------------------------------------
    def water_use(self):
        rng, n, M = self.rngs[1], self.cfg.entities, self.M
        season = np.array([SEASONS[r[5]] for r in INDUSTRIES])[self.ind][:, self.cal]  # (n, M)
        amp = rng.uniform(0.6, 1.2, n)[:, None]
        t = (np.arange(M) / 12.0)[None, :]
        growth = rng.normal(0.0, 0.05, n)
        grow = rng.random(n) < self.cfg.growth_share
        growth[grow] = rng.uniform(0.15, 0.45, grow.sum())
        decline = ~grow & (rng.random(n) < 0.08)
        growth[decline] = rng.uniform(-0.3, -0.1, decline.sum())
        use = self.base[:, None] * season**amp * np.exp(growth[:, None] * t)
        use *= np.exp(rng.normal(0, 0.1, (n, M)))
        # legitimate efficiency drops (water-saving retrofit): a step down in all use
        self.efficiency = rng.random(n) < self.cfg.efficiency_drop_share
        step = rng.integers(4, M - 4, n)
        factor = np.where(self.efficiency, rng.uniform(0.55, 0.8, n), 1.0)
        use *= np.where(np.arange(M)[None, :] >= step[:, None], factor[:, None], 1.0)
        # new firms ramp up over their first months
        since_open = np.arange(M)[None, :] - self.reg_m[:, None]
        use *= np.clip(since_open / 4.0, 0.25, 1.0)
        self.use = np.where(self.active, use, 0.0)

    # permits and metered abstraction ---------------------------------------------------
    def permits(self):
        """Permit holders, their permit chains (old -> current -> renewal) and meters."""
        cfg, rng, n, M = self.cfg, self.rngs[2], self.cfg.entities, self.M
        prop = np.array([r[7] for r in INDUSTRIES])[self.ind] * cfg.permit_holder_boost
        size = np.clip((self.base / 300.0) ** 0.35, 0.2, 1.6)
        holder = (rng.random(n) < prop * size) & self.active.any(axis=1)
        self.holder_e = np.flatnonzero(holder)
        H = len(self.holder_e)
        self.self_share = np.zeros(n)
        self.self_share[self.holder_e] = rng.uniform(0.4, 0.95, H)
        second = rng.random(H) < 0.12
        # lines: one main line per holder, a second one (other source) for some
        le = np.concatenate([self.holder_e, self.holder_e[second]])
        L = len(le)
        is_agri = np.char.startswith(self.code[le], "A")
        main_src = np.where(rng.random(H) < np.where(is_agri[:H], 0.45, 0.2), "surface", "groundwater")
        src = np.concatenate([main_src, np.where(main_src[second] == "surface", "groundwater", "surface")])
        lshare = np.concatenate([np.where(second, 0.7, 1.0), np.full(second.sum(), 0.3)])
        purpose = np.select(
            [
                is_agri,
                np.char.startswith(self.code[le], "C") | np.char.startswith(self.code[le], "D"),
                np.char.startswith(self.code[le], "H") | np.char.startswith(self.code[le], "O"),
            ],
            ["agriculture", "industrial", "services"],
            "domestic",
        )
        self.line_e, self.line_src, self.line_share, self.line_purpose = le, src, lshare, purpose
        self.line_main = np.arange(L) < H
        years = np.where(rng.random(L) < 0.8, 5, 10)
        self.line_years = years
        # current permit: expires somewhere within its term after the window start
        to1 = self.start + (rng.uniform(0.02, 1.0, L) * years * 365).astype("timedelta64[D]")
        self.line_to1 = to1
        expires_in = to1 < self.end
        self.line_renewed = expires_in & (rng.random(L) < 0.85)
        self.line_lapsed = expires_in & ~self.line_renewed
        self.line_revoked = ~expires_in & (rng.random(L) < 0.02)
        self.line_revoke_m = rng.integers(3, M - 2, L)
        self.line_history = rng.random(L) < 0.35
        self.line_wells = np.where(src == "surface", 1, rng.choice([1, 1, 1, 2, 2, 3], L))
        self.line_forced_renew = np.zeros(L, bool)

    def line_activity(self) -> np.ndarray:
        """(L, M) months in which a line legally abstracts (before lapse or revocation)."""
        m = np.arange(self.M)[None, :]
        lapse_m = self.month_of(self.line_to1)
        act = np.ones((len(self.line_e), self.M), bool)
        act &= ~(self.line_lapsed[:, None] & (m > lapse_m[:, None]))
        act &= ~(self.line_revoked[:, None] & (m >= self.line_revoke_m[:, None]))
        return act & self.active[self.line_e]

    # violations ------------------------------------------------------------------
    def plan_violations(self):
        cfg, rng, n, M = self.cfg, self.rngs[3], self.cfg.entities, self.M
        eligible = self.full_window.copy()
        n_v = int(round(cfg.violation_rate * eligible.sum()))
        types = [t for t, _ in cfg.violation_mix]
        w = np.array([w for _, w in cfg.violation_mix], float)
        w = w / w.sum() if w.sum() > 0 else w
        raw = w * n_v
        counts = np.floor(raw).astype(int)
        counts[np.argsort(-(raw - counts), kind="stable")[: n_v - counts.sum()]] += 1
        vtype = np.full(n, "", dtype=object)
        taken = np.zeros(n, bool)
        line_ok = self.line_main & ~self.line_revoked & eligible[self.line_e]
        holder_pool = np.zeros(n, bool)
        holder_pool[self.line_e[line_ok]] = True
        non_holder = eligible & ~np.isin(np.arange(n), self.holder_e)
        order = np.argsort([t in PERMIT_VIOLATIONS for t in types])[::-1]  # permit types first: scarcer pool
        for k in order:
            t, c = types[k], counts[k]
            if c == 0:
                continue
            if t in PERMIT_VIOLATIONS:
                pool = holder_pool & ~taken
            elif t == "unpermitted_abstraction":
                pool = non_holder & ~taken
            else:  # private wells: anyone whose use is worth a well
                pool = eligible & ~taken & (self.base > 20)
            idx = np.flatnonzero(pool)
            if not len(idx):
                continue
            p = np.sqrt(self.base[idx])
            chosen = rng.choice(idx, size=min(c, len(idx)), replace=False, p=p / p.sum())
            vtype[chosen] = t
            taken[chosen] = True
        self.vtype = vtype
        self.violator = taken
        self.since = np.full(n, -1)
        self.since[taken] = rng.integers(6, M - 6, taken.sum())
        # unpermitted abstraction shows as a supply swap, an expansion fed by a well, or unpermitted dewatering
        self.unp_mode = np.where(vtype == "unpermitted_abstraction", rng.choice(3, n, p=[0.45, 0.3, 0.25]), -1)
        # permit violators keep their main permit alive (renewed), except those letting it expire
        main_line = np.full(n, -1)
        main_line[self.line_e[self.line_main]] = np.flatnonzero(self.line_main)
        self.main_line = main_line
        pv = np.isin(vtype, PERMIT_VIOLATIONS)
        lines = main_line[pv]
        self.line_revoked[lines] = False
        renew = self.line_to1[lines] < self.end
        self.line_renewed[lines] = renew
        self.line_lapsed[lines] = False
        exp = np.flatnonzero(vtype == "expired_permit")
        el = main_line[exp]
        month_end = self.month_start[self.since[exp]] - np.timedelta64(1, "D")
        self.line_to1[el] = month_end
        self.line_renewed[el] = False
        self.line_lapsed[el] = False  # keeps pumping: that is the violation

    # volumes -------------------------------------------------------------------------
    def volumes(self):
        rng, n, M = self.rngs[4], self.cfg.entities, self.M
        m = np.arange(M)[None, :]
        after = (m >= self.since[:, None]) & self.violator[:, None]
        act = self.line_activity()
        line_true = self.use[self.line_e] * self.self_share[self.line_e][:, None] * self.line_share[:, None] * act
        supply_use = self.use.copy()
        np.subtract.at(supply_use, self.line_e, line_true)
        supply_use = np.maximum(supply_use, 0)
        well = np.zeros((n, M))
        vt = self.vtype
        # private wells and unpermitted supply swaps: part of the supply moves to an unmetered well
        swap = (vt == "private_well") | ((vt == "unpermitted_abstraction") & (self.unp_mode == 0))
        keep = np.where(swap, rng.uniform(0.15, 0.6, n), 1.0)[:, None]
        moved = np.where(after & swap[:, None], supply_use * (1 - keep), 0.0)
        supply_use -= moved
        well += moved
        # unpermitted expansion: a new production line fed by a new well
        grow = (vt == "unpermitted_abstraction") & (self.unp_mode == 1)
        extra = np.where(after & grow[:, None], self.use * rng.uniform(0.6, 1.5, n)[:, None], 0.0)
        self.use = self.use + extra
        well += extra
        # over permit: the main line pumps far more from since_month on
        over = np.flatnonzero(vt == "over_permit")
        ol = self.main_line[over]
        self.line_quota_base = line_true.copy()  # use the quota was sized on (before the violation)
        factor = rng.uniform(1.6, 2.3, len(ol))[:, None]
        add = np.where(m >= self.since[over][:, None], line_true[ol] * (factor - 1), 0.0)
        line_true[ol] += add
        self.use[over] += add
        self.line_true = line_true
        self.supply_use = supply_use
        self.well = well
        # what the meters record: tampering lowers it, the true use carries on
        metered = line_true.copy()
        tamper = np.flatnonzero(vt == "meter_tampering")
        tl = self.main_line[tamper]
        mode = rng.choice(3, len(tl), p=[0.5, 0.3, 0.2])
        s = self.since[tamper][:, None]
        pre_mean = (
            np.nanmean(np.where((m < s) & (m >= s - 6), line_true[tl], np.nan), axis=1) if len(tl) else np.zeros(0)
        )
        drop = metered[tl] * rng.uniform(0.15, 0.5, len(tl))[:, None]
        flat = np.round(pre_mean * rng.uniform(0.25, 0.5, len(tl)), -1)[:, None] * np.ones((1, M))
        new = np.select([mode[:, None] == 0, mode[:, None] == 1], [drop, flat], 0.0)
        metered[tl] = np.where(m >= s, new, metered[tl])
        self.metered = metered
        # discharge: a coefficient of all water used, noisy; dewatering water goes to the sewer too
        self.discharge_use = self.coef[:, None] * self.use * np.exp(rng.normal(0, 0.08, (n, M)))
        self.dewater = np.zeros((n, M))
        dw = np.flatnonzero((vt == "unpermitted_abstraction") & (self.unp_mode == 2))
        dur = rng.integers(5, 11, len(dw))
        vol = rng.uniform(3000, 25000, len(dw))
        window = (m >= self.since[dw][:, None]) & (m < (self.since[dw] + dur)[:, None])
        self.dewater[dw] = np.where(window, vol[:, None] * np.exp(rng.normal(0, 0.15, (len(dw), M))), 0.0)
        self.discharge_use += 0.9 * self.dewater

    # accounts -------------------------------------------------------------------
    def accounts(self):
        """Supply and discharge accounts: own, second, industrial-park (shared) and orphan accounts."""
        cfg, rng, n = self.cfg, self.rngs[5], self.cfg.entities
        live = self.active.any(axis=1)
        vt = self.vtype
        small_factory = live & np.char.startswith(self.code, "C") & (self.emp < 60) & ~self.violator
        small_factory &= ~np.isin(np.arange(n), self.holder_e)
        in_park = small_factory & (rng.random(n) < cfg.park_share / 0.35)
        # parks: groups of 2-6 small factories of one district behind one account
        park_e = np.flatnonzero(in_park)
        park_e = park_e[np.lexsort((rng.random(len(park_e)), self.dist[park_e]))]
        sizes = rng.integers(2, 7, max(1, len(park_e)))
        park_id = np.repeat(np.arange(len(sizes)), sizes)[: len(park_e)]
        brk = np.r_[True, self.dist[park_e][1:] != self.dist[park_e][:-1]]  # a park never spans districts
        park_id = np.cumsum(brk | np.r_[True, park_id[1:] != park_id[:-1]]) - 1
        single = np.bincount(park_id)[park_id] < 2 if len(park_e) else np.zeros(0, bool)
        in_park[park_e[single]] = False  # a lone firm rents on its own account
        park_e = park_e[~single]
        park_id = np.unique(park_id[~single], return_inverse=True)[1] if len(park_e) else park_id[:0]
        P = int(park_id.max() + 1) if len(park_e) else 0
        self.park_e, self.park_id, self.P = park_e, park_id, P

        p_sup = np.where(np.char.startswith(self.code, "A"), 0.45, cfg.supply_share)
        has_sup = live & ~in_park & (rng.random(n) < p_sup)
        needs_supply = (vt == "private_well") | (self.unp_mode == 0) | self.line_lapsed_e() | (self.self_share > 0)
        has_sup |= live & ~in_park & needs_supply
        industrial = np.char.startswith(self.code, "C") | np.char.startswith(self.code, "D")
        p_dis = np.clip(
            cfg.discharge_share * np.where(industrial, 1.6, 0.8) * np.where(self.coef < 0.1, 0.2, 1.0), 0, 0.95
        )
        has_dis = live & ~in_park & (rng.random(n) < p_dis)
        has_dis |= live & self.violator & (rng.random(n) < 0.85) & ~in_park
        has_dis |= live & (self.unp_mode == 2)
        has_dis |= live & (self.self_share > 0) & (rng.random(n) < 0.8)
        # a sewer account needs water from somewhere: the mains, a permit, or the dewatering pit
        has_dis &= has_sup | (self.self_share > 0) | self.violator
        second = has_sup & (rng.random(n) < cfg.second_account_share)
        split = np.where(second, rng.uniform(0.55, 0.85, n), 1.0)

        # orphans: residential compounds and public bodies
        O = int(round(cfg.orphan_account_share * n))
        o_dist = rng.choice(len(cfg.districts), O, p=np.asarray(cfg.district_weights) / sum(cfg.district_weights))
        residential = rng.random(O) < 0.6
        dnames = np.array([d[0] for d in cfg.districts])
        o_name = np.where(
            residential,
            _cat(
                _cat(*_chars(rng, TRADE_CHARS, (2, O))),
                _pick(rng, ORPHAN_RESIDENTIAL, O),
                np.where(rng.random(O) < 0.3, "物业", ""),
            ),
            _cat(dnames[o_dist], _pick(rng, ORPHAN_PUBLIC, O)),
        )
        o_addr = _cat(
            np.where(rng.random(O) < 0.5, dnames[o_dist], ""),
            _pick(rng, ROADS, O),
            rng.integers(1, 1500, O).astype(str),
            "号",
        )
        o_base = np.where(
            residential, np.exp(rng.normal(np.log(3000), 0.8, O)), np.exp(rng.normal(np.log(600), 1.0, O))
        )
        o_season = np.where(
            residential[:, None],
            np.array(SEASONS["residential"])[self.cal][None, :],
            np.array(SEASONS["school"])[self.cal][None, :],
        )
        o_use = o_base[:, None] * o_season * np.exp(rng.normal(0, 0.1, (O, self.M)))

        # park accounts: names and summed use
        p_dist = self.dist[park_e][np.r_[True, park_id[1:] != park_id[:-1]]] if P else np.zeros(0, int)
        dshort = np.array([d[2] for d in cfg.districts])
        p_name = _cat(
            dshort[p_dist],
            _pick(rng, ["经济开发区", "工业园", "创业园", "中小企业孵化园"], P),
            "标准化厂房",
            rng.integers(1, 30, P).astype(str),
            "号楼",
        )
        p_addr = _cat(
            dnames[p_dist],
            dshort[p_dist],
            "经济开发区",
            _pick(rng, ROADS, P),
            rng.integers(1, 800, P).astype(str),
            "号",
        )
        p_sup = np.zeros((P, self.M))
        p_dis = np.zeros((P, self.M))
        np.add.at(p_sup, park_id, self.supply_use[park_e])
        np.add.at(p_dis, park_id, self.discharge_use[park_e])

        self.acc = {
            "supply": self._account_frame(
                "supply", has_sup, second, split, o_name, o_addr, o_use, p_name, p_addr, p_sup, rng
            ),
            "discharge": self._account_frame(
                "discharge",
                has_dis,
                np.zeros(n, bool),
                np.ones(n),
                o_name,
                o_addr,
                o_use * 0.85,
                p_name,
                p_addr,
                p_dis,
                rng,
            ),
        }

    def line_lapsed_e(self) -> np.ndarray:
        out = np.zeros(self.cfg.entities, bool)
        out[self.line_e[self.line_lapsed | self.line_revoked]] = True
        return out

    def _account_frame(self, source, has, second, split, o_name, o_addr, o_use, p_name, p_addr, p_vol, rng):
        """One row per account: owner (entity index, -1 none), written name/address/uscc, and its (A, M) volumes."""
        cfg, M = self.cfg, self.M
        own = np.flatnonzero(has)
        sec = np.flatnonzero(second)
        owner = np.concatenate([own, sec, np.full(len(p_name), -1), np.full(len(o_name), -1)])
        kind = np.concatenate(
            [
                np.full(len(own), "own"),
                np.full(len(sec), "second"),
                np.full(len(p_name), "park"),
                np.full(len(o_name), "orphan"),
            ]
        )
        A = len(owner)
        e = np.maximum(owner, 0)
        vol_src = self.supply_use if source == "supply" else self.discharge_use
        vol = np.zeros((A, M))
        k_own, k_sec = slice(0, len(own)), slice(len(own), len(own) + len(sec))
        vol[k_own] = vol_src[own] * split[own][:, None]
        vol[k_sec] = vol_src[sec] * (1 - split[sec])[:, None]
        vol[len(own) + len(sec) : len(own) + len(sec) + len(p_name)] = p_vol
        orphan_rows = slice(A - len(o_name), A)
        # orphans keep their accounts for the whole window; a few orphans exist in one source only
        vol[orphan_rows] = o_use
        active = np.zeros((A, M), bool)
        active[: len(own) + len(sec)] = self.active[owner[: len(own) + len(sec)]]
        active[len(own) + len(sec) :] = True
        keep = np.ones(A, bool)
        keep[orphan_rows] = rng.random(len(o_name)) < (0.97 if source == "supply" else 0.45)
        if source == "discharge":
            keep[len(own) + len(sec) : len(own) + len(sec) + len(p_name)] = rng.random(len(p_name)) < 0.5

        # names and addresses as the clerks wrote them
        ent = owner >= 0
        reg_name = np.where(ent, self.name[e], "")
        short = _cat(self.trade[e], self.word[e])
        u = rng.random(A)
        written = np.select(
            [u < 0.42, u < 0.62, u < 0.72, u < 0.78],
            [
                reg_name,
                np.where(self.kind[e] == "company", short, reg_name),
                np.where(self.prefix[e] == "", _cat(cfg.city, reg_name), np.char.replace(reg_name, self.prefix[e], "")),
                np.where(self.renamed[e], self.old_name[e], reg_name),
            ],
            np.char.replace(reg_name, "有限公司", "公司"),
        )
        branch = (kind == "second") | (ent & (rng.random(A) < 0.04))
        written = np.where(branch, _cat(written, _pick(rng, BRANCH_SUFFIXES, A)), written)
        brackets = ent & (self.kind[e] == "company") & (rng.random(A) < 0.05)
        written = np.where(brackets, _cat(self.trade[e], "(", cfg.city_short, ")", self.word[e], self.form[e]), written)
        written = self._typos(rng, written, ent & (rng.random(A) < 0.07))
        first_park = len(own) + len(sec)
        written = written.astype(object)
        written[first_park : first_park + len(p_name)] = p_name
        written[A - len(o_name) :] = o_name

        v = rng.random(A)
        full = _cat(cfg.province, cfg.city, self.dname[e], self.local[e])
        addr = np.select(
            [v < 0.15, v < 0.5, v < 0.8],
            [full, _cat(cfg.city, self.dname[e], self.local[e]), _cat(self.dname[e], self.local[e])],
            self.local[e],
        )
        addr = np.where(
            self.zone[e] & (rng.random(A) < 0.3),
            np.char.replace(addr, self.zone_name[e], _cat(self.dshort[e], "开发区")),
            addr,
        )
        addr = np.where(rng.random(A) < 0.1, _cat(addr, _pick(rng, DOOR_SUFFIXES, A)), addr)
        addr = addr.astype(object)
        addr[first_park : first_park + len(p_name)] = p_addr
        addr[A - len(o_name) :] = o_addr
        addr[rng.random(A) < 0.03] = None

        filled = ent & (rng.random(A) < (cfg.uscc_filled_supply if source == "supply" else cfg.uscc_filled_discharge))
        code = np.where(ent, self.uscc[e], "")
        typo = filled & (rng.random(A) < cfg.uscc_typo_share)
        if typo.any():
            chars = np.array([list(c) for c in code[typo]])
            pos = rng.integers(8, 17, typo.sum())
            chars[np.arange(typo.sum()), pos] = _chars(rng, "0123456789", typo.sum())
            code[typo] = _join_chars(chars)
        written_uscc = np.where(filled, code, None).astype(object)

        prefix = "0" if source == "supply" else "PS"
        ids = 10**7 + rng.choice(9 * 10**7, size=A, replace=False)
        account_id = np.char.add(prefix, ids.astype(str))
        frame = pd.DataFrame(
            {
                "account_id": account_id,
                "account_name": written,
                "address": addr,
                "uscc": written_uscc,
                "owner": owner,
                "kind": kind,
                "park": np.concatenate(
                    [np.full(len(own) + len(sec), -1), np.arange(len(p_name)), np.full(len(o_name), -1)]
                ),
            }
        )[keep]
        self_vol = vol[keep]
        self_act = active[keep]
        return frame.reset_index(drop=True), self_vol, self_act

    def _typos(self, rng, names: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Swap two neighbouring characters or type a wrong one, as clerks do."""
        idx = np.flatnonzero(mask & (np.char.str_len(names.astype(str)) >= 4))
        if not len(idx):
            return names
        width = max(np.char.str_len(names[idx]).max(), 4)
        arr = names[idx].astype(f"<U{width}")
        codes = arr.view(np.uint32).reshape(len(idx), width).copy()
        lens = np.char.str_len(arr)
        pos = (rng.random(len(idx)) * (lens - 2)).astype(int)
        rows = np.arange(len(idx))
        swap = rng.random(len(idx)) < 0.5
        a, b = codes[rows, pos].copy(), codes[rows, pos + 1].copy()
        codes[rows[swap], pos[swap]], codes[rows[swap], pos[swap] + 1] = b[swap], a[swap]
        wrong = np.array([ord(c) for c in TYPO_CHARS])[rng.integers(0, len(TYPO_CHARS), len(idx))]
        codes[rows[~swap], pos[~swap]] = wrong[~swap]
        out = names.astype(object).copy()
        out[idx] = codes.view(f"<U{width}").ravel()
        return out.astype(str)

    # projects -------------------------------------------------------------------
    def projects(self):
        """Project approvals; dewatering works pump groundwater into the sewer, with a permit or without."""
        cfg, rng, n, M = self.cfg, self.rngs[6], self.cfg.entities, self.M
        live = self.full_window
        sec = np.array([c[0] for c in self.code])
        owners_pool = np.flatnonzero(live & np.isin(sec, ["K", "E", "C"]) & ~self.violator)
        count = cfg.projects if cfg.projects is not None else max(5, int(round(0.012 * n)))
        own = (
            rng.choice(owners_pool, size=min(count, len(owners_pool)), replace=False)
            if len(owners_pool)
            else np.zeros(0, int)
        )
        unp = np.flatnonzero(self.unp_mode == 2)
        owner = np.concatenate([own, unp])
        J = len(owner)
        osec = sec[owner]
        kind = np.select(
            [osec == "K", (osec == "E") & (rng.random(J) < 0.6), osec == "C"],
            ["real_estate", "infrastructure", "industrial"],
            "other",
        )
        window_days = (self.end - self.start).astype(int)
        approved = (
            self.start - np.timedelta64(365, "D") + rng.integers(0, window_days + 365 - 60, J).astype("timedelta64[D]")
        )
        start = approved + rng.integers(30, 300, J).astype("timedelta64[D]")
        started = (start <= self.end) & (rng.random(J) < 0.85)
        dewater = np.where(np.isin(kind, ["real_estate", "infrastructure"]), rng.random(J) < 0.4, rng.random(J) < 0.08)
        is_unp = np.arange(J) >= len(own)
        # the unpermitted dewatering: works start in the violation month
        start[is_unp] = self.month_start[self.since[unp]] + rng.integers(0, 20, len(unp)).astype("timedelta64[D]")
        approved[is_unp] = start[is_unp] - rng.integers(40, 200, len(unp)).astype("timedelta64[D]")
        started[is_unp] = True
        dewater[is_unp] = True
        expected = np.round(rng.uniform(2000, 60000, J), -2)
        expected[rng.random(J) < 0.4] = np.nan
        names = np.select(
            [kind == "real_estate", kind == "infrastructure", kind == "industrial"],
            [
                _cat(self.trade[owner], _pick(rng, ["花园住宅小区项目", "家园二期项目", "商住楼项目"], J)),
                _cat(self.dshort[owner], _pick(rng, ["道路改造工程", "污水管网工程", "雨污分流改造工程"], J)),
                _cat(self.word[owner], _pick(rng, ["生产线扩建项目", "技术改造项目", "新建厂房项目"], J)),
            ],
            _cat(self.trade[owner], "综合楼项目"),
        )
        seq = 10**5 + rng.choice(9 * 10**5, J, replace=False)
        ind2 = np.select(
            [kind == "real_estate", kind == "infrastructure", kind == "industrial"],
            ["70-02", "48-03", "36-03"],
            "72-03",
        )
        dcode = np.array([d[1] for d in cfg.districts])[self.dist[owner]]
        pid = _cat(approved.astype("datetime64[Y]").astype(str), "-", dcode, "-", ind2, "-", seq.astype(str))
        uscc = self.uscc[owner].astype(object)
        uscc[(rng.random(J) < 0.03) & ~is_unp] = None
        self.tables["projects"] = pd.DataFrame(
            {
                "project_id": pid,
                "uscc": uscc,
                "project_name": names,
                "kind": kind,
                "approved_on": _fmt_dates(approved),
                "construction_start_on": _fmt_dates(np.where(started, start, np.datetime64("NaT"))),
                "district": self.dname[owner],
                "dewatering": dewater,
                "expected_annual_water_m3": expected,
            }
        )
        # legal dewatering: a dewatering permit, a meter, and the pumped water in the sewer
        legal = np.flatnonzero(dewater & started & ~is_unp)
        m0 = self.month_of(start[legal])
        in_window = (m0 >= 0) & (m0 < M)
        legal, m0 = legal[in_window], m0[in_window]
        dur = rng.integers(4, 11, len(legal))
        vol = rng.uniform(2000, 20000, len(legal))
        m = np.arange(M)[None, :]
        pumped = np.where(
            (m >= m0[:, None]) & (m < (m0 + dur)[:, None]),
            vol[:, None] * np.exp(rng.normal(0, 0.15, (len(legal), M))),
            0.0,
        )
        self.dw_e = owner[legal]
        self.dw_from = start[legal]
        self.dw_quota = np.round(vol * dur * rng.uniform(1.3, 1.7, len(legal)), -2)
        self.dw_pumped = pumped
        np.add.at(self.discharge_use, self.dw_e, 0.9 * pumped)

    # monthly tables ---------------------------------------------------------------
    def monthly(self):
        rng, M = self.rngs[7], self.M
        out = {}
        for source in ("supply", "discharge"):
            frame, vol, act = self.acc[source]
            A = len(frame)
            if source == "supply":
                # a meter read once in two months: zero, then double
                catch = rng.random(A) < 0.03
                g = rng.integers(1, M - 1, A)
                rows = np.flatnonzero(catch)
                vol = vol.copy()
                vol[rows, g[rows] + 1] += vol[rows, g[rows]]
                vol[rows, g[rows]] = 0.0
                values = np.round(vol)
                measured = None
            else:
                base_mean = np.where(act, vol, np.nan)
                mean = np.nan_to_num(np.nanmean(np.where(act.any(1)[:, None], base_mean, 0.0), axis=1))
                small = mean < np.quantile(mean, 0.5) if A else np.zeros(0, bool)
                estimated = rng.random(A) < np.where(small, 1.4, 0.6) * self.cfg.estimated_discharge_share
                combined = ~estimated & (rng.random(A) < self.cfg.combined_sewer_share)
                years = np.unique(self.year)
                # combined sewers take storm water in the wet season (June to September)
                wet = np.isin(self.cal, [5, 6, 7, 8])
                rain = np.where(wet, np.array(RAIN_MM)[self.cal] * np.exp(rng.normal(0, 0.35, M)), 0.0)
                inflow = combined[:, None] * rng.uniform(0.3, 1.6, A)[:, None] * mean[:, None] * rain[None, :] / 100.0
                measured_vol = vol * np.exp(rng.normal(0, 0.06, (A, M))) + inflow
                # estimates are made from billed supply (own accounts) or last year's level, flat within a year
                basis = vol.copy()
                owner = frame["owner"].to_numpy()
                ent = owner >= 0
                s_use = self.supply_use[np.maximum(owner, 0)]
                basis[ent] = np.where(s_use[ent].sum(1, keepdims=True) > 0, 0.85 * s_use[ent], vol[ent])
                est = np.zeros((A, M))
                step = np.where(mean > 2000, 100.0, 10.0)[:, None]
                for k, y in enumerate(years):
                    cols = self.year == y
                    prev = self.year == (y - 1) if k > 0 else cols
                    level = np.nanmean(np.where(act[:, prev], basis[:, prev], np.nan), axis=1)
                    est[:, cols] = np.nan_to_num(_round_to(level, step[:, 0]))[:, None]
                values = np.round(np.where(estimated[:, None], est, measured_vol), 1)
                measured = np.repeat(~estimated, act.sum(1))
                self.acc_discharge_flags = (estimated, combined)
            ai, mi = np.nonzero(act)
            cols = {
                "account_id": frame["account_id"].to_numpy()[ai],
                "account_name": frame["account_name"].to_numpy()[ai],
                "address": frame["address"].to_numpy()[ai],
                "uscc": frame["uscc"].to_numpy()[ai],
                "month": self.month_text[mi],
                "volume_m3": values[ai, mi] if source == "discharge" else values[ai, mi].astype(np.int64),
            }
            if measured is not None:
                cols["measured"] = np.where(measured, "true", "false")
            out[source] = pd.DataFrame(cols)
            self.acc_values = getattr(self, "acc_values", {})
            self.acc_values[source] = np.where(act, values, 0.0)
        self.tables.update(out)

    # permits, abstraction, tax -----------------------------------------------------------
    def permits_tables(self):
        cfg, rng, M = self.cfg, self.rngs[8], self.M
        L = len(self.line_e)
        m = np.arange(M)[None, :]
        # quota sized on normal use: the best year's level, or the pre-violation level
        monthly = np.where(self.active[self.line_e], self.line_quota_base, np.nan)
        level = np.nan_to_num(
            np.nanmax(
                np.stack(
                    [
                        np.nanmean(np.where(self.year[None, :] == y, monthly, np.nan), axis=1)
                        for y in np.unique(self.year)
                    ]
                ),
                axis=0,
            )
        )
        over_lines = self.main_line[self.vtype == "over_permit"]
        over_since = self.since[self.vtype == "over_permit"]
        pre = np.where(m < over_since[:, None], monthly[over_lines], np.nan)
        level[over_lines] = np.nanmean(pre, axis=1)
        quota_ok = level * 12 * rng.uniform(1.15, 1.5, L)
        quota_ok[over_lines] = level[over_lines] * 12 * rng.uniform(1.03, 1.15, len(over_lines))
        quota = np.maximum(_round_to(quota_ok, np.where(quota_ok > 20000, 1000, 100)), 100)

        years = self.line_years
        to1 = self.line_to1
        from1 = to1 - (years * 365).astype("timedelta64[D]") + np.timedelta64(1, "D")
        to2 = to1 + (years * 365).astype("timedelta64[D]")
        status1 = np.where(
            self.line_revoked, "revoked", np.where(self.line_lapsed & (rng.random(L) < 0.6), "cancelled", "valid")
        )
        rows = []
        e = self.line_e
        holder = np.where(rng.random(L) < 0.1, self.old_name[e], self.name[e]).astype(object)
        holder[rng.random(L) < 0.04] = None
        divisions = np.array([d[1] for d in cfg.districts])[self.dist[e]]
        # old permits (before the window), current ones, renewals
        h = self.line_history
        rows.append(
            (
                "old",
                np.flatnonzero(h),
                from1[h] - (years[h] * 365).astype("timedelta64[D]"),
                from1[h] - np.timedelta64(1, "D"),
                np.where(rng.random(h.sum()) < 0.3, "cancelled", "valid"),
                quota[h] * rng.uniform(0.6, 1.0, h.sum()),
            )
        )
        rows.append(("cur", np.arange(L), from1, to1, status1, quota))
        r = self.line_renewed
        rows.append(
            (
                "new",
                np.flatnonzero(r),
                to1[r] + np.timedelta64(1, "D"),
                to2[r],
                np.full(r.sum(), "valid"),
                quota[r] * rng.uniform(1.0, 1.15, r.sum()),
            )
        )
        parts = []
        for tag, li, vf, vt, st, q in rows:
            parts.append(
                pd.DataFrame(
                    {
                        "line": li,
                        "tag": tag,
                        "uscc": self.uscc[e[li]],
                        "holder_name": holder[li],
                        "source": self.line_src[li],
                        "purpose": self.line_purpose[li],
                        "annual_quota_m3": np.maximum(_round_to(q, 100), 100),
                        "valid_from": vf,
                        "valid_to": vt,
                        "status": st,
                        "wells": self.line_wells[li],
                        "division": divisions[li],
                    }
                )
            )
        # dewatering permits of legal works
        D = len(self.dw_e)
        parts.append(
            pd.DataFrame(
                {
                    "line": L + np.arange(D),
                    "tag": "dw",
                    "uscc": self.uscc[self.dw_e],
                    "holder_name": self.name[self.dw_e].astype(object),
                    "source": "groundwater",
                    "purpose": "dewatering",
                    "annual_quota_m3": self.dw_quota,
                    "valid_from": self.dw_from,
                    "valid_to": self.dw_from + np.timedelta64(364, "D"),
                    "status": "valid",
                    "wells": rng.integers(2, 9, D),
                    "division": np.array([d[1] for d in cfg.districts])[self.dist[self.dw_e]],
                }
            )
        )
        # permits of the past: firms that stopped abstracting (and some unpermitted abstractors who had one)
        n = cfg.entities
        past = (self.active.any(1) & (self.self_share == 0) & (rng.random(n) < 0.03)) | (
            (self.vtype == "unpermitted_abstraction") & (rng.random(n) < 0.4)
        )
        pe = np.flatnonzero(past)
        limit = np.where(self.violator[pe], self.month_start[np.maximum(self.since[pe], 0)], self.start)
        p_to = limit - rng.integers(20, 1500, len(pe)).astype("timedelta64[D]")
        sec = np.array([c[0] for c in self.code[pe]])
        parts.append(
            pd.DataFrame(
                {
                    "line": L + D + np.arange(len(pe)),
                    "tag": "past",
                    "uscc": self.uscc[pe],
                    "holder_name": self.name[pe].astype(object),
                    "source": "groundwater",
                    "purpose": np.select(
                        [sec == "A", np.isin(sec, ["C", "D"]), np.isin(sec, ["H", "O"])],
                        ["agriculture", "industrial", "services"],
                        "domestic",
                    ),
                    "annual_quota_m3": np.maximum(
                        _round_to(self.base[pe] * 12 * rng.uniform(0.3, 0.9, len(pe)), 100), 100
                    ),
                    "valid_from": p_to - np.timedelta64(5 * 365, "D"),
                    "valid_to": p_to,
                    "status": _pick(rng, ["cancelled", "valid", "revoked"], len(pe), [0.5, 0.4, 0.1]),
                    "wells": np.ones(len(pe), int),
                    "division": np.array([d[1] for d in cfg.districts])[self.dist[pe]],
                }
            )
        )
        permits = pd.concat(parts, ignore_index=True)
        permits = permits.sort_values(["valid_from", "line"], kind="stable").reset_index(drop=True)
        vf_year = permits["valid_from"].to_numpy().astype("datetime64[Y]").astype(str)
        seq = permits.groupby(vf_year).cumcount().to_numpy() + 1
        permits["permit_id"] = _cat(
            cfg.permit_prefix, "[", vf_year, "]第", np.char.zfill((seq + 0).astype(str), 4), "号"
        )
        self.permit_index = permits
        out = permits[
            [
                "permit_id",
                "uscc",
                "holder_name",
                "source",
                "purpose",
                "annual_quota_m3",
                "valid_from",
                "valid_to",
                "status",
                "wells",
            ]
        ].copy()
        out["valid_from"] = _fmt_dates(permits["valid_from"].to_numpy().astype("datetime64[D]"))
        out["valid_to"] = _fmt_dates(permits["valid_to"].to_numpy().astype("datetime64[D]"))
        self.tables["permits"] = out.sample(frac=1.0, random_state=int(rng.integers(2**31))).reset_index(drop=True)

        # meters: one per well or intake; a replaced meter leaves a gap and comes back under a new id
        ids_of = permits.set_index(["tag", "line"])["permit_id"]
        cur_id = ids_of.loc["cur"].reindex(np.arange(L)).to_numpy().astype(str)
        new_id = (
            ids_of.loc["new"].reindex(np.arange(L)).fillna(pd.Series(cur_id)).to_numpy().astype(str)
            if r.any()
            else cur_id
        )
        renew_m = self.month_of(to1 + np.timedelta64(1, "D"))
        line_vol = np.concatenate([self.metered, self.dw_pumped]) if D else self.metered
        line_act = (
            np.concatenate([self.line_activity() | (self.metered > 0), self.dw_pumped > 0])
            if D
            else self.line_activity() | (self.metered > 0)
        )
        wells = np.concatenate([self.line_wells, np.ones(D, int)])
        line_of = np.repeat(np.arange(L + D), wells)
        K = len(line_of)
        w = rng.gamma(2.0, 1.0, K)
        share = w / np.bincount(line_of, w, minlength=L + D)[line_of]
        vol = line_vol[line_of] * share[:, None] * np.exp(rng.normal(0, 0.05, (K, M)))
        act = line_act[line_of] & self.active[np.concatenate([self.line_e, self.dw_e])[line_of]]
        online = rng.random(K) < np.where(line_vol[line_of].mean(1) > 3000, 0.85, 0.3)
        vol = np.where(online[:, None], np.round(vol, 1), np.round(vol))
        replaced = rng.random(K) < cfg.meter_replacement_share
        gap_at = rng.integers(2, M - 4, K)
        gap_len = rng.integers(1, 4, K)
        in_gap = replaced[:, None] & (m >= gap_at[:, None]) & (m < (gap_at + gap_len)[:, None])
        act &= ~in_gap
        meter_no = (10**7 + rng.choice(9 * 10**7, 2 * K, replace=False)).astype(str)
        ki, mi = np.nonzero(act)
        after_gap = replaced[ki] & (mi >= gap_at[ki] + gap_len[ki])
        meter_id = np.where(after_gap, np.char.add("JL", meter_no[K + ki]), np.char.add("JL", meter_no[ki]))
        li = line_of[ki]
        dw_ids = permits.loc[permits["tag"] == "dw"].sort_values("line")["permit_id"].to_numpy()
        is_dw = li >= L
        lic = np.minimum(li, max(L - 1, 0))
        permit_id = np.where(mi >= renew_m[lic] if L else False, new_id[lic] if L else "", cur_id[lic] if L else "")
        if D:
            permit_id = np.where(is_dw, dw_ids[np.maximum(li - L, 0)], permit_id)
        self.tables["abstraction"] = pd.DataFrame(
            {
                "permit_id": permit_id,
                "meter_id": meter_id,
                "month": self.month_text[mi],
                "volume_m3": vol[ki, mi],
                "reading": np.where(online[ki], "online", "manual"),
            }
        )
        # what each line's meters recorded, for the tax declarations
        recorded = np.zeros((L + D, M))
        np.add.at(recorded, (li, mi), vol[ki, mi])
        self.recorded = recorded

    def tax(self):
        rng, _M = self.rngs[9], self.M
        q = self.cal // 3
        qkey = self.year * 4 + q
        complete = pd.Series(qkey).map(pd.Series(qkey).value_counts()).to_numpy() == 3
        quarters = np.unique(qkey[complete])
        _L, D = len(self.line_e), len(self.dw_e)
        ents = np.concatenate([self.line_e, self.dw_e])
        src = np.concatenate([self.line_src, np.full(D, "groundwater")])
        purpose = np.concatenate([self.line_purpose, np.full(D, "dewatering")])
        qsum = np.stack([self.recorded[:, qkey == k].sum(1) for k in quarters], axis=1)  # (lines, Q)
        decl = qsum * rng.uniform(0.97, 1.03, qsum.shape)
        under = self.vtype[ents] == "tax_underreport"
        qstart = np.array([np.flatnonzero(qkey == k)[0] for k in quarters])
        cut = under[:, None] & (qstart[None, :] >= self.since[ents][:, None])
        decl = np.where(cut, decl * rng.uniform(0.3, 0.6, len(ents))[:, None], decl)
        # some unpermitted abstractors declare their well water anyway
        wells_e = np.flatnonzero(
            (self.vtype == "unpermitted_abstraction") & (self.well.sum(1) > 0) & (rng.random(len(self.vtype)) < 0.35)
        )
        wq = np.stack([self.well[wells_e][:, qkey == k].sum(1) for k in quarters], axis=1) * rng.uniform(
            0.5, 1.0, (len(wells_e), 1)
        )
        ents = np.concatenate([ents, wells_e])
        src = np.concatenate([src, np.full(len(wells_e), "groundwater")])
        purpose = np.concatenate([purpose, np.full(len(wells_e), "industrial")])
        decl = np.concatenate([decl, wq])
        li, qi = np.nonzero(decl >= 1)
        frame = pd.DataFrame(
            {
                "uscc": self.uscc[ents[li]],
                "source": src[li],
                "purpose": purpose[li],
                "k": quarters[qi],
                "declared_m3": np.round(decl[li, qi]),
            }
        )
        frame = frame.groupby(["uscc", "k", "source"], as_index=False, sort=True).agg(
            declared_m3=("declared_m3", "sum"), purpose=("purpose", "first")
        )
        rate = np.where(
            frame["source"] == "groundwater",
            frame["purpose"]
            .map({"industrial": 2.0, "services": 4.0, "domestic": 1.0, "agriculture": 0.2, "dewatering": 1.0})
            .to_numpy(),
            0.4,
        )
        tax_yuan = np.round(frame["declared_m3"].to_numpy() * rate, 2)
        tax_yuan[rng.random(len(frame)) < 0.04] = np.nan
        late = rng.random(len(frame)) < 0.02
        period = _cat((frame["k"] // 4).astype(str).to_numpy(), "-Q", (frame["k"] % 4 + 1).astype(str).to_numpy())
        self.tables["tax"] = pd.DataFrame(
            {
                "uscc": frame["uscc"].to_numpy(),
                "period": period,
                "source": frame["source"].to_numpy(),
                "declared_m3": frame["declared_m3"].to_numpy(),
                "tax_yuan": tax_yuan,
            }
        )[~late].reset_index(drop=True)

    def plans(self):
        rng, _n = self.rngs[10], self.cfg.entities
        annual_supply = self.supply_use.sum(1) * 12 / self.M
        big = annual_supply >= max(np.quantile(annual_supply, 0.96), 3000)
        who = np.flatnonzero(big | (self.self_share > 0))
        years = np.unique(self.year)
        parts = []
        for k, y in enumerate(years):
            cols = self.year == (y - 1) if k > 0 else self.year == y
            level = self.use[who][:, cols].mean(1) * 12
            alive = self.active[who][:, self.year == y].any(1) & (level > 0)
            planned = np.maximum(_round_to(level * rng.uniform(1.0, 1.25, len(who)), 100), 100)
            parts.append(pd.DataFrame({"uscc": self.uscc[who][alive], "year": y, "planned_m3": planned[alive]}))
        self.tables["plans"] = pd.concat(parts, ignore_index=True)

    # inspections ---------------------------------------------------------------------
    def inspections(self):
        """Officers went where an old rule pointed (high discharge/supply ratio, big users), plus tip-offs."""
        cfg, rng, n, _M = self.cfg, self.rngs[11], self.cfg.entities, self.M
        count = cfg.inspections if cfg.inspections is not None else int(np.clip(round(0.012 * n), 30, 400))
        dis = np.zeros(n)
        sup = np.zeros(n)
        for source, target in (("supply", sup), ("discharge", dis)):
            frame = self.acc[source][0]
            owner = frame["owner"].to_numpy()
            ent = owner >= 0
            np.add.at(target, owner[ent], self.acc_values[source][ent].sum(1))
        ratio = np.where(sup > 0, dis / np.maximum(sup, 1), np.where(dis > 0, 3.0, 0.0))
        live = self.active.any(1)
        score = (
            0.6 * pd.Series(ratio).rank(pct=True).to_numpy()
            + 0.4 * pd.Series(self.use.sum(1)).rank(pct=True).to_numpy()
        )
        weight = np.where(live, np.exp(6 * score), 0.0)
        tip = rng.random(n) < 0.1
        weight = np.where(live & tip, weight + np.exp(6 * 0.5), weight)
        who = rng.choice(n, size=min(count, int((weight > 0).sum())), replace=False, p=weight / weight.sum())
        again = who[rng.random(len(who)) < 0.1]
        who = np.concatenate([who, again])
        N = len(who)
        first_day = self.end - np.timedelta64(730, "D")
        day = first_day + rng.integers(0, 730, N).astype("timedelta64[D]")
        day_m = self.month_of(day)
        found = self.violator[who] & (day_m >= self.since[who]) & (rng.random(N) < 0.85)
        gone = ~np.isnat(self.dereg[who]) & (self.dereg[who] < day)
        unreachable = gone | (rng.random(N) < 0.05)
        outcome = np.where(unreachable, "unreachable", np.where(found, "violation", "no_violation"))
        vtype = np.where(outcome == "violation", self.vtype[who], None).astype(object)
        order = np.argsort(day, kind="stable")
        day, who, outcome, vtype = day[order], who[order], outcome[order], vtype[order]
        officer = _cat(
            "WS",
            np.array([d[1] for d in cfg.districts])[self.dist[who]],
            "-",
            np.char.zfill(rng.integers(1, 9, N).astype(str), 2),
        )
        ids = _cat(
            "HC", np.char.replace(_fmt_dates(day).astype(str), "-", ""), np.char.zfill(np.arange(N).astype(str), 4)
        )
        self.tables["inspections"] = pd.DataFrame(
            {
                "inspection_id": ids,
                "uscc": self.uscc[who],
                "inspected_on": _fmt_dates(day),
                "officer_id": officer,
                "outcome": outcome,
                "violation_type": vtype,
            }
        )

    # truth ------------------------------------------------------------------------------
    def truth(self) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        v = np.flatnonzero(self.violator)
        truth = pd.DataFrame(
            {
                "uscc": self.uscc[v],
                "violation_type": self.vtype[v].astype(str),
                "since_month": self.month_text[self.since[v]],
            }
        )
        links, members = [], []
        for source in ("supply", "discharge"):
            frame = self.acc[source][0]
            owner = frame["owner"].to_numpy()
            links.append(
                pd.DataFrame(
                    {
                        "source": source,
                        "account_id": frame["account_id"],
                        "uscc": np.where(owner >= 0, self.uscc[np.maximum(owner, 0)], ""),
                        "shared": np.where(frame["kind"] == "park", "true", "false"),
                    }
                )
            )
            parks = frame[frame["kind"] == "park"]
            account = (
                pd.Series(parks["account_id"].to_numpy(), index=parks["park"].to_numpy())
                .reindex(self.park_id)
                .to_numpy()
            )
            has = pd.notna(account)
            members.append(
                pd.DataFrame(
                    {"source": source, "account_id": account[has].astype(str), "uscc": self.uscc[self.park_e[has]]}
                )
            )
        return (
            truth.sort_values("uscc").reset_index(drop=True),
            pd.concat(links, ignore_index=True),
            pd.concat(members, ignore_index=True),
        )


def build_city(config: SynthConfig) -> City:
    """Generate the whole city in memory (tests use this to see the generator's internal state)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Mean of empty slice", RuntimeWarning)
        warnings.filterwarnings("ignore", "All-NaN slice", RuntimeWarning)
        return _build(config)


def _build(config: SynthConfig) -> City:
    g = _Gen(config)
    g.entities()
    g.water_use()
    g.permits()
    g.plan_violations()
    g.volumes()
    g.projects()
    g.accounts()
    g.monthly()
    g.permits_tables()
    g.tax()
    g.plans()
    g.inspections()
    truth, link_truth, members = g.truth()
    tables = {name: g.tables[name][list(TABLES[name].column_names)] for name in TABLES}
    city = City(tables=tables, truth=truth, link_truth=link_truth, park_members=members)
    if config.malformed_rows:
        city.tables, city.malformed = break_rows(
            city.tables, config.malformed_rows, np.random.default_rng([config.seed, 99])
        )
    city.internal = g
    return city


def generate_city(config: SynthConfig, out_dir: Path | str) -> dict[str, int]:
    """Write the drop (9 tables) plus truth.csv, link_truth.csv and, with malformed rows, malformed.csv."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    city = build_city(config)
    formats = table_formats(config.file_format, config.seed)
    counts: dict[str, int] = {}
    for name, frame in city.tables.items():
        for ext in ("csv", "parquet"):  # never leave the other format of a table behind
            (out / f"{name}.{ext}").unlink(missing_ok=True)
        if formats[name] == "parquet":
            for_parquet(frame, name).to_parquet(out / f"{name}.parquet", index=False)
        else:
            for_csv(frame).to_csv(out / f"{name}.csv", index=False, encoding="utf-8")
        counts[name] = int(len(frame))
    city.truth.to_csv(out / "truth.csv", index=False, encoding="utf-8")
    city.link_truth.to_csv(out / "link_truth.csv", index=False, encoding="utf-8")
    counts["truth"] = int(len(city.truth))
    counts["link_truth"] = int(len(city.link_truth))
    (out / "malformed.csv").unlink(missing_ok=True)
    if config.malformed_rows:
        city.malformed.to_csv(out / "malformed.csv", index=False, encoding="utf-8")
        counts["malformed"] = int(len(city.malformed))
    return counts
