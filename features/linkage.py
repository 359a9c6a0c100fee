"""Link water-supply and sewer accounts to registered entities.

The water company's accounts carry a social credit code for only part of the
customers; the rest are written as clerks wrote them (short names, branch
suffixes, typos, old names). The linker trusts a valid registered code, repairs
a one-character typo in a code when the name agrees, and otherwise matches
normalised names within the account's district, with the address as supporting
evidence. It never guesses: close calls go to ``review`` with their candidates.
Industrial-park accounts serving several registered entities are ``shared``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from rapidfuzz import fuzz, process

from features.link_candidates import CITY, candidate_pairs
from features.names import ZONE_WORDS, Gazetteer, is_park_like, normalise_addresses, normalise_names
from features.uscc import ALPHABET, uscc_valid
from features.settings import LinkageSettings

LINK_COLUMNS = ["source", "account_id", "account_name", "address", "uscc", "method", "confidence", "status", "candidates"]


ACCOUNT_COLUMNS = ["account_id", "account_name", "address", "uscc", "month"]  # what linkage reads of a monthly table


def latest_accounts(monthly: pd.DataFrame, source: str) -> pd.DataFrame:
    """One row per account with its name, address and code as written in its most recent month."""
    cols = ["account_id", "account_name", "address", "uscc"]
    if not len(monthly):
        return pd.DataFrame({c: pd.Series(dtype="str") for c in ["source", *cols]})
    last = monthly.sort_values(["account_id", "month"], kind="stable").drop_duplicates("account_id", keep="last")
    out = last[cols].reset_index(drop=True)
    # a code written in any month counts when the latest month has none
    any_code = monthly.dropna(subset=["uscc"]).drop_duplicates("account_id", keep="last").set_index("account_id")["uscc"]
    out["uscc"] = out["uscc"].fillna(out["account_id"].map(any_code))
    out.insert(0, "source", source)
    return out


def account_rows(path) -> pd.DataFrame:
    """The rows of a typed monthly table (Parquet) that ``latest_accounts`` reads, in file order: per account
    the last row of its latest month and its last row with a code. DuckDB picks them out of core, so a large
    city's months of accounts never sit in memory whole; ``latest_accounts`` answers the same on these rows
    as on the whole table (its latest row and its code come from them)."""
    import duckdb

    cols = ", ".join(f'"{c}"' for c in ACCOUNT_COLUMNS)
    source = "read_parquet('" + str(path).replace("'", "''") + "', file_row_number = true)"
    sql = f"""
        WITH t AS (SELECT {cols}, file_row_number AS r FROM {source}),
        latest AS (SELECT r FROM t QUALIFY row_number() OVER (PARTITION BY account_id ORDER BY month DESC NULLS FIRST, r DESC) = 1),
        coded AS (SELECT r FROM t WHERE uscc IS NOT NULL QUALIFY row_number() OVER (PARTITION BY account_id ORDER BY r DESC) = 1)
        SELECT {cols} FROM t WHERE r IN (SELECT r FROM latest UNION SELECT r FROM coded) ORDER BY r"""
    with duckdb.connect(config={"memory_limit": "1GB", "threads": 2}) as con:
        con.execute("SET enable_progress_bar = false")  # the stage shows its own progress
        return con.sql(sql).to_arrow_table().to_pandas()


def _unique_near(bad: np.ndarray, reg: np.ndarray) -> np.ndarray:
    """For each row of ``bad`` (encoded codes, (n, 18)), the index of the one registry row one substitution
    or one adjacent transposition away, -1 when none or several are. Hash joins per position (linear in
    the registry, not bad x registry): a substitution at p is an equal key with p masked and a different
    character at p; a transposition at (p, p+1) is the code with p and p+1 swapped, found as it stands."""
    shift = lambda a: np.where(a == 255, 255, a + 1).astype(np.uint8)  # noqa: E731  (no zero byte in a key)
    bad, reg = shift(bad), shift(reg)

    def keys(a: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(a).view("S18").ravel()

    pairs = []
    for p in range(bad.shape[1]):
        rk, bk = reg.copy(), bad.copy()
        rk[:, p] = bk[:, p] = 254
        right = pd.DataFrame({"key": keys(rk), "r": np.arange(len(reg)), "ch_r": reg[:, p]})
        left = pd.DataFrame({"key": keys(bk), "b": np.arange(len(bad)), "ch_b": bad[:, p]})
        m = left.merge(right, on="key")
        pairs.append(m.loc[m["ch_b"] != m["ch_r"], ["b", "r"]])
    full = pd.DataFrame({"key": keys(reg), "r": np.arange(len(reg))})
    for p in range(bad.shape[1] - 1):
        swapped = bad.copy()
        swapped[:, [p, p + 1]] = bad[:, [p + 1, p]]
        left = pd.DataFrame({"key": keys(swapped), "b": np.arange(len(bad))})[bad[:, p] != bad[:, p + 1]]
        pairs.append(left.merge(full, on="key")[["b", "r"]])
    near = pd.concat(pairs, ignore_index=True).groupby("b")["r"].agg(["size", "min"])
    found = np.full(len(bad), -1, dtype=np.int64)
    unique = near[near["size"] == 1]
    found[unique.index.to_numpy()] = unique["min"].to_numpy()
    return found


def _repair_codes(codes: pd.Series, registry: np.ndarray) -> pd.Series:
    """The registered code one substitution or one adjacent swap away, where exactly one exists."""
    out = pd.Series(pd.NA, index=codes.index, dtype="str")
    ok = codes.notna() & (codes.str.len() == 18)
    if not ok.any() or not len(registry):
        return out
    lut = np.full(65536, 255, dtype=np.uint8)
    for i, ch in enumerate(ALPHABET):
        lut[ord(ch)] = i

    def encode(values) -> np.ndarray:
        arr = np.asarray(values, dtype="U18").view(np.uint32).reshape(len(values), 18)
        return lut[np.minimum(arr, 65535)]

    reg = encode(registry)
    bad = encode(codes[ok].str.upper().to_numpy())
    found = _unique_near(bad, reg)
    idx = codes.index[ok.to_numpy()]
    out.loc[idx] = np.where(found >= 0, registry[np.maximum(found, 0)], None)
    return out


def _prepare_entities(entities: pd.DataFrame, gaz: Gazetteer) -> pd.DataFrame:
    ent = entities[["uscc", "name", "district", "address"]].reset_index(drop=True).copy()
    ent["core"] = normalise_names(ent["name"], gaz)
    addr = normalise_addresses(ent["address"], gaz)
    ent["street"], ent["number"], ent["building"], ent["local"] = addr["street"], addr["number"], addr["building"], addr["local"]
    ent["district"] = ent["district"].astype("str")
    return ent


# Address evidence added to the 0-100 name score. The door is strong evidence; an
# address elsewhere (a branch site, or another firm with a similar name) and a
# registration in another district than the account's weaken a candidate, so that a
# same-named firm elsewhere does not beat a misspelt name at the account's own door.
DOOR_BONUS, STREET_BONUS, ELSEWHERE_PENALTY, OTHER_DISTRICT_PENALTY = 15.0, 3.0, 8.0, 10.0


def _address_evidence(cand: pd.DataFrame, acc: pd.DataFrame, ent: pd.DataFrame) -> np.ndarray:
    ai, ei = cand["acc"].to_numpy(), cand["ent"].to_numpy()

    def pair(column: str) -> tuple[pd.Series, pd.Series]:
        return pd.Series(acc[column].to_numpy()[ai], dtype="str"), pd.Series(ent[column].to_numpy()[ei], dtype="str")

    def true(mask: pd.Series) -> np.ndarray:
        return mask.fillna(False).to_numpy(dtype=bool)

    a_street, e_street = pair("street")
    a_num, e_num = pair("number")
    a_local, e_local = pair("local")
    a_dist, e_dist = pair("district")
    same_street = true(a_street == e_street)
    same_door = same_street & true(a_num == e_num)
    # addresses without a street door (镇X村): the whole local address must agree
    same_door |= true((a_local == e_local) & (a_local.str.len() >= 4))
    both_known = true(a_local.str.len() > 0) & true(e_local.str.len() > 0)
    # the same door number on a street of the same name in another district is a coincidence
    other_district = true(a_dist.notna() & (a_dist != e_dist))
    evidence = np.where(same_door, DOOR_BONUS, np.where(same_street, STREET_BONUS, np.where(both_known, -ELSEWHERE_PENALTY, 0.0)))
    evidence = np.where(other_district & (evidence > 0), 0.0, evidence)
    return evidence - np.where(other_district, OTHER_DISTRICT_PENALTY, 0.0)


def _format_candidates(frame: pd.DataFrame, n: int = 3) -> pd.Series:
    top = frame.sort_values(["acc", "score"], ascending=[True, False]).groupby("acc").head(n)
    text = top["uscc"] + ":" + top["score"].clip(upper=100).round(1).astype("str")
    return text.groupby(top["acc"]).agg(";".join)


def _empty_links(acc: pd.DataFrame) -> pd.DataFrame:
    """Every account unlinked, with the code the clerk recorded."""
    out = acc.rename(columns={"uscc": "recorded_uscc"}).copy()
    out["uscc"] = pd.Series(pd.NA, index=out.index, dtype="str")
    out["method"] = "none"
    out["confidence"] = 0.0
    out["status"] = "unlinked"
    out["candidates"] = pd.Series(pd.NA, index=out.index, dtype="str")
    return out


def _prepare_accounts(acc: pd.DataFrame, gaz: Gazetteer) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Accounts with their normalised name, address parts and district block; and the address parts."""
    acc = acc.copy()
    acc["core"] = normalise_names(acc["account_name"], gaz)
    addr = normalise_addresses(acc["address"], gaz)
    acc = pd.concat([acc, addr[["street", "number", "building", "local", "district"]]], axis=1)
    # a district named in the account name (德城区XX商行) when the address names none
    acc["district"] = acc["district"].fillna(gaz.district_in(acc["account_name"].astype("str").str.slice(0, 8)))
    acc["block"] = acc["district"].fillna(CITY)
    return acc, addr


def _link_by_code(out: pd.DataFrame, acc: pd.DataFrame, ent: pd.DataFrame, settings: LinkageSettings) -> None:
    """A valid registered code is trusted; a present but invalid or unknown one is repaired when
    exactly one registered code is one typo away and the names agree (``out`` updated in place)."""
    code = acc["uscc"].astype("str").str.strip().str.upper()
    valid = uscc_valid(code).fillna(False).to_numpy(dtype=bool)
    direct = valid & code.isin(set(ent["uscc"])).to_numpy(dtype=bool)
    out.loc[direct, ["method", "confidence", "status"]] = ["uscc", 1.0, "linked"]
    out.loc[direct, "uscc"] = code[direct]
    present = code.notna().to_numpy() & ~direct
    repaired = _repair_codes(code[present], ent["uscc"].to_numpy())
    if repaired.notna().any():
        core_of = ent.set_index("uscc")["core"]
        fixed = repaired.dropna()
        pair_scores = process.cpdist(acc.loc[fixed.index, "core"].tolist(), fixed.map(core_of).tolist(), scorer=fuzz.ratio)
        fixed = fixed[pair_scores >= settings.review_score]
        out.loc[fixed.index, ["method", "confidence", "status"]] = ["uscc", 0.95, "linked"]
        out.loc[fixed.index, "uscc"] = fixed


def _decide(cand: pd.DataFrame, settings: LinkageSettings) -> pd.DataFrame:
    """Per account with candidates: uscc, status (linked / review / unlinked), method, confidence and,
    for a review, the plausible candidates. The best total score must be high enough and clear
    of the second best by the ambiguity margin."""
    cand = cand.sort_values(["acc", "score", "name_score"], ascending=[True, False, False], kind="stable")
    best = cand.groupby("acc").head(1).set_index("acc")
    second = cand.groupby("acc")["score"].nth(1)
    second = pd.Series(second.to_numpy(), index=cand.loc[second.index, "acc"].to_numpy())
    b1 = best["score"]
    b2 = second.reindex(b1.index).fillna(0.0)
    accept = (b1 >= settings.accept_score) & ((b1 - b2) >= settings.ambiguity_margin)
    review = ~accept & (b1 >= settings.review_score)
    exact = best["name_score"] >= 100
    margin_factor = np.clip((b1 - b2) / (4 * settings.ambiguity_margin), 0, 1)
    conf = np.where(
        exact,
        np.interp(b1, [settings.accept_score, 100.0, 100.0 + DOOR_BONUS], [0.9, 0.95, 1.0]),
        np.clip(b1 / 100, 0, 1) * (0.9 + 0.1 * margin_factor),
    )
    # a review is by definition not sure enough, and a near tie halves the odds of the best
    conf = np.where(review, np.minimum(conf, 0.89) * (0.5 + 0.5 * margin_factor), conf)
    out = pd.DataFrame(index=b1.index)
    out["status"] = np.where(accept, "linked", np.where(review, "review", "unlinked"))
    out["uscc"] = best["uscc"].where(accept)
    out["method"] = np.where(accept | review, np.where(exact, "name_exact", "name_fuzzy"), "none")
    out["confidence"] = np.round(np.where(accept | review, conf, 0.0), 3)
    rid = b1.index[review.to_numpy()]
    plausible = cand[cand["acc"].isin(rid) & (cand["score"] >= settings.review_score - settings.ambiguity_margin)]
    out["candidates"] = _format_candidates(plausible).reindex(out.index).where(review)
    return out


def _link_by_name(out: pd.DataFrame, acc: pd.DataFrame, ent: pd.DataFrame, settings: LinkageSettings, progress) -> None:
    """Names within the district block, the address as supporting evidence (``out`` updated in place)."""
    todo = acc[(out["status"] != "linked") & (acc["core"].str.len() > 0)]
    if not len(todo):
        return
    cand = candidate_pairs(todo, ent, progress)
    cand["score"] = cand["name_score"] + _address_evidence(cand, acc, ent)
    cand["uscc"] = ent["uscc"].to_numpy()[cand["ent"].to_numpy()]
    decided = _decide(cand, settings)
    cols = ["uscc", "status", "method", "confidence", "candidates"]
    out.loc[decided.index, cols] = decided[cols]


def _mark_shared(out: pd.DataFrame, acc: pd.DataFrame, addr: pd.DataFrame, ent: pd.DataFrame, gaz: Gazetteer) -> None:
    """Industrial-park accounts: a building several registered entities share (``out`` in place)."""
    placed = ent.dropna(subset=["building"])
    tenants = (placed["district"] + "|" + placed["building"]).value_counts()
    per_building = placed.groupby("building")["district"].agg(["nunique", "first"])
    only_district = per_building["first"].where(per_building["nunique"] == 1)
    acc_key = acc["district"].fillna(acc["building"].map(only_district)) + "|" + acc["building"]
    n_tenants = acc_key.map(tenants).fillna(0).to_numpy()
    park_name = is_park_like(acc["account_name"], gaz).to_numpy()
    in_zone = (addr["zone"].notna() | acc["account_name"].astype("str").str.contains(ZONE_WORDS, regex=True)).to_numpy(dtype=bool)
    status = out["status"].to_numpy()
    weak = (status == "unlinked") | ((status == "review") & park_name)
    # several registered tenants in the building (a 号楼 in the address, or a park name at a
    # shared door) and nobody's name fits; or, when the tenants registered elsewhere, a
    # building-and-park name inside a development zone. A plain shared door number alone
    # is not enough: housing estates and public bodies sit next to firms.
    in_building = acc["building"].str.contains(r"[0-9]+号楼", regex=True).fillna(False).to_numpy(dtype=bool)
    shared = weak & (((n_tenants >= 2) & (park_name | in_building)) | (park_name & in_zone))
    out.loc[shared, ["method", "status", "confidence", "candidates"]] = ["shared_park", "shared", 0.9, None]
    out.loc[shared, "uscc"] = pd.NA


def link_accounts(
    entities: pd.DataFrame,
    supply: pd.DataFrame,
    discharge: pd.DataFrame,
    settings: LinkageSettings,
    progress=None,
) -> pd.DataFrame:
    """One row per (source, account_id): the entity it belongs to, how, and how sure."""
    acc = pd.concat([latest_accounts(supply, "supply"), latest_accounts(discharge, "discharge")], ignore_index=True)
    out = _empty_links(acc)
    if not len(acc) or not len(entities):
        return out[LINK_COLUMNS]
    gaz = Gazetteer.from_entities(entities)
    ent = _prepare_entities(entities, gaz)
    acc, addr = _prepare_accounts(acc, gaz)
    _link_by_code(out, acc, ent, settings)
    _link_by_name(out, acc, ent, settings, progress)
    _mark_shared(out, acc, addr, ent, gaz)
    out.loc[out["status"] == "unlinked", "method"] = "none"
    return out[LINK_COLUMNS]


def attribute_volumes(monthly: pd.DataFrame, links: pd.DataFrame, source: str) -> pd.DataFrame:
    """Supply or discharge rows with the linked entity in ``uscc`` (NA unless the link is ``linked``).

    The clerk's own code is kept as ``recorded_uscc``: only reviewed links move volume.
    """
    linked = links[(links["source"] == source) & (links["status"] == "linked")]
    mapping = linked.drop_duplicates("account_id").set_index("account_id")["uscc"]
    out = monthly.copy()
    if "uscc" in out.columns:
        out = out.rename(columns={"uscc": "recorded_uscc"})
    out["uscc"] = out["account_id"].map(mapping).astype("str")
    return out


def linked_volumes(monthly: pd.DataFrame, links: pd.DataFrame, source: str, as_of: pd.Timestamp) -> pd.DataFrame:
    """Account-month rows before as_of that a ``linked`` link moves to an entity (others dropped)."""
    cols = ["account_id", "month", "volume_m3"] + (["measured"] if "measured" in monthly.columns else [])
    out = attribute_volumes(monthly.loc[monthly["month"] < as_of, cols], links, source)
    return out[out["uscc"].notna() & (out["uscc"] != "")]


def _flag(values: pd.Series) -> pd.Series:
    return values.astype("str").str.strip().str.lower().isin(["true", "1", "t", "yes"]).astype(bool)


def linkage_metrics(links: pd.DataFrame, link_truth: pd.DataFrame) -> dict:
    """Precision and recall of the links against a known answer.

    precision = correct links / links made; recall = correct links / accounts that
    truly belong to one entity. Shared-park accounts are counted on their own.
    """
    truth = link_truth.copy()
    truth["account_id"] = truth["account_id"].astype("str")
    truth["true_uscc"] = truth["uscc"].astype("str").str.strip().replace("", pd.NA)
    truth["true_shared"] = _flag(truth["shared"]) if "shared" in truth.columns else False
    merged = links.merge(truth[["source", "account_id", "true_uscc", "true_shared"]], on=["source", "account_id"], how="inner")
    made = merged["status"] == "linked"
    correct = made & (merged["uscc"] == merged["true_uscc"]).fillna(False)
    belongs = merged["true_uscc"].notna() & ~merged["true_shared"]
    review = merged["status"] == "review"
    listed = merged["candidates"].fillna("").str.split(";").explode().str.split(":").str[0]
    in_candidates = review & (listed == merged["true_uscc"].reindex(listed.index)).groupby(level=0).any()
    n_made, n_correct, n_belongs = int(made.sum()), int(correct.sum()), int(belongs.sum())
    shared_true = int(merged["true_shared"].sum())
    return {
        "accounts": len(merged),
        "links_made": n_made,
        "correct_links": n_correct,
        "belonging_accounts": n_belongs,
        "precision": n_correct / n_made if n_made else float("nan"),
        "recall": n_correct / n_belongs if n_belongs else float("nan"),
        "review": int(review.sum()),
        "review_true_in_candidates": int(in_candidates.sum()),
        "unlinked": int((merged["status"] == "unlinked").sum()),
        "shared_true": shared_true,
        "shared_recognised": int((merged["true_shared"] & (merged["status"] == "shared")).sum()),
        "shared_false": int((~merged["true_shared"] & (merged["status"] == "shared")).sum()),
        "by_method": {m: int(n) for m, n in merged.loc[made, "method"].value_counts().items()},
        "precision_by_method": {
            m: float(correct[made & (merged["method"] == m)].mean()) for m in merged.loc[made, "method"].unique()
        },
    }
