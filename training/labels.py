"""Inspection outcomes turned into labels as known before a date.

The risk ranking looks for violations no record shows (``HIDDEN_TYPES``: private wells, abstraction with no
permit, meter tampering); a documented breach (expired permit in use, quota overrun, tax gap) belongs to the
case track. So the label is 1 only for a visit that found a hidden-type violation (or a violation whose type
was not recorded: a field finding); a visit that found only a record-visible type says nothing either way
about hidden water and leaves the entity unlabelled (-1), like the many entities never visited ("unknown",
never "clean"). Only a visit that found nothing (``no_violation``) makes a 0. Verdicts exported by the
service carry ``queue_probability`` (the chance the entity was put in a queue); inverse-propensity weights
undo the bias of learning only from what the previous model chose to inspect.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

OUTCOMES = ("violation", "no_violation", "unreachable")
HIDDEN_TYPES = ("private_well", "unpermitted_abstraction", "meter_tampering")  # found only by looking
RECORD_VISIBLE_TYPES = ("expired_permit", "over_permit", "tax_underreport")  # the case track's


def hidden_violation(inspections: pd.DataFrame) -> pd.Series:
    """A visit that found a violation of a hidden type, or of a type not recorded (a field finding)."""
    kind = inspections["violation_type"].astype("str").str.strip()
    unrecorded = inspections["violation_type"].isna() | (kind == "") | kind.isin(["nan", "None", "<NA>"])
    return (inspections["outcome"] == "violation") & (kind.isin(HIDDEN_TYPES) | unrecorded)
INSPECTION_COLUMNS = ["inspection_id", "uscc", "inspected_on", "outcome", "violation_type", "queue_probability"]
LABEL_COLUMNS = ["label", "weight", "last_inspected_on", "inspections"]


def read_inspection_file(path: Path | str) -> pd.DataFrame:
    """An exported verdicts file (contract ``inspections`` format, CSV or Parquet, maybe ``queue_probability``)."""
    path = Path(path)
    if path.suffix == ".parquet":
        frame = pd.read_parquet(path)
    else:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""], encoding="utf-8-sig")
    return normalise_inspections(frame, source=str(path))


def normalise_inspections(frame: pd.DataFrame, source: str = "inspections") -> pd.DataFrame:
    """The columns labels need, typed; unknown outcomes or undated rows are an error, not a silent drop."""
    missing = {"uscc", "inspected_on", "outcome"} - set(frame.columns)
    if missing:
        raise ValueError(f"{source}: missing column(s) {sorted(missing)}")
    out = pd.DataFrame(index=frame.index)
    out["inspection_id"] = frame["inspection_id"].astype("str") if "inspection_id" in frame else pd.Series(
        [f"{source}#{i}" for i in range(len(frame))], index=frame.index, dtype="str"
    )
    out["uscc"] = frame["uscc"].astype("str").str.strip()
    out["inspected_on"] = pd.to_datetime(frame["inspected_on"], errors="coerce")
    out["outcome"] = frame["outcome"].astype("str").str.strip()
    out["violation_type"] = frame["violation_type"].astype("str") if "violation_type" in frame else pd.Series(
        pd.NA, index=frame.index, dtype="str"
    )
    qp = frame["queue_probability"] if "queue_probability" in frame else pd.Series(np.nan, index=frame.index)
    out["queue_probability"] = pd.to_numeric(qp, errors="coerce").astype("float64")
    bad = ~out["outcome"].isin(OUTCOMES) | out["inspected_on"].isna() | out["uscc"].isna()
    if bad.any():
        first = int(np.flatnonzero(bad.to_numpy())[0])
        raise ValueError(
            f"{source}: {int(bad.sum())} row(s) without a date, uscc or a known outcome {OUTCOMES}; "
            f"first at data row {first + 1}: {frame.iloc[first].to_dict()}"
        )
    return out.reset_index(drop=True)


def merge_inspections(inspections: pd.DataFrame, extra: Iterable[pd.DataFrame | Path | str] = ()) -> pd.DataFrame:
    """The drop's inspections plus exported verdicts; an inspection present in both keeps the export's row
    (it carries the queue probability)."""
    frames = [normalise_inspections(inspections, "inspections")]
    for item in extra:
        frames.append(read_inspection_file(item) if isinstance(item, (str, Path)) else normalise_inspections(item, "extra"))
    merged = pd.concat(frames, ignore_index=True)
    return merged.drop_duplicates("inspection_id", keep="last").reset_index(drop=True)


def known_inspections(
    inspections: pd.DataFrame,
    as_of: pd.Timestamp,
    extra: Iterable[pd.DataFrame | Path | str] = (),
    verdicts_after_as_of: bool = False,
) -> pd.DataFrame:
    """What a model fitted at ``as_of`` may learn from (``merge_inspections`` rows): the drop's own inspections
    dated before as_of, always (a replay at an earlier as-of must not see later visits); exported field verdicts
    dated before as_of too, unless ``verdicts_after_as_of``: a run at the drop's latest as-of (the present: no
    month after it exists to hide) learns from every verdict recorded since the drop was cut, the reason to
    retrain."""
    as_of = pd.Timestamp(as_of)
    drop = normalise_inspections(inspections, "inspections")
    exported = merge_inspections(drop.iloc[:0], extra)
    drop = drop[drop["inspected_on"] < as_of]
    if not verdicts_after_as_of:
        exported = exported[exported["inspected_on"] < as_of]
    merged = pd.concat([drop, exported], ignore_index=True)
    return merged.drop_duplicates("inspection_id", keep="last").reset_index(drop=True)


def inspection_labels(
    inspections: pd.DataFrame,
    as_of: pd.Timestamp,
    extra: Iterable[pd.DataFrame | Path | str] = (),
    min_queue_probability: float = 0.02,
) -> pd.DataFrame:
    """Per uscc inspected before ``as_of``: label 1 hidden-type violation found, 0 verified clean, -1 only
    unreachable or only a record-visible violation found (see the module docstring).

    The label is the latest decisive visit (violation or no_violation; a violation wins a same-day tie), as
    that is the state the features describe. ``weight`` is 1 for drop inspections and 1/queue_probability
    (floored) for exported verdicts, rescaled to mean 1 over the labelled rows so that it only re-balances.
    Entities never visited are absent: callers reindex and fill -1.
    """
    data = merge_inspections(inspections, extra)
    data = data[data["inspected_on"] < pd.Timestamp(as_of)]
    if data.empty:
        return pd.DataFrame(columns=LABEL_COLUMNS, index=pd.Index([], name="uscc", dtype="str")).astype(
            {"label": "int64", "weight": "float64", "last_inspected_on": "datetime64[s]", "inspections": "int64"}
        )
    counts = data.groupby("uscc").agg(last_inspected_on=("inspected_on", "max"), inspections=("inspection_id", "size"))
    decisive = data[data["outcome"] != "unreachable"].assign(
        _rank=lambda d: (d["outcome"] == "violation").astype(int)
    )
    decisive = decisive.sort_values(["uscc", "inspected_on", "_rank"]).drop_duplicates("uscc", keep="last")
    decisive = decisive.set_index("uscc")
    labels = counts.assign(label=-1, weight=1.0)
    label = np.where(hidden_violation(decisive), 1, np.where(decisive["outcome"] == "no_violation", 0, -1))
    labels.loc[decisive.index, "label"] = label
    propensity = decisive["queue_probability"].clip(lower=min_queue_probability)
    labels.loc[decisive.index, "weight"] = (1.0 / propensity).fillna(1.0).to_numpy()
    known = labels["label"] >= 0
    if known.any():
        labels.loc[known, "weight"] = labels.loc[known, "weight"] / labels.loc[known, "weight"].mean()
    labels.index.name = "uscc"
    return labels[LABEL_COLUMNS]


def label_vector(labels: pd.DataFrame, index: pd.Index) -> tuple[pd.Series, pd.Series]:
    """Labels and weights aligned to a snapshot's entities: never visited -> -1, weight 1."""
    y = labels["label"].reindex(index).fillna(-1).astype("int64")
    w = labels["weight"].reindex(index).fillna(1.0).astype("float64")
    return y, w


def estimate_violation_rate(inspections: pd.DataFrame, min_verdicts: int = 30) -> float | None:
    """The city-wide share of violators, estimated from verdicts on queued leads (Hájek estimator).

    Each exported verdict carries the probability with which its lead entered the queue; weighting every
    decisive verdict by 1/probability undoes the queue's preference for high scores, so the exploratory
    draws stand for the many entities the model ranks low. Drop inspections (no probability) are left out:
    nobody knows how they were chosen. None until ``min_verdicts`` decisive queued verdicts exist.
    """
    if "queue_probability" not in inspections.columns:
        return None
    queued = inspections[inspections["queue_probability"].gt(0) & inspections["outcome"].isin(["violation", "no_violation"])]
    queued = queued.sort_values("inspected_on").drop_duplicates("uscc", keep="last")
    if len(queued) < min_verdicts:
        return None
    weight = 1.0 / queued["queue_probability"].clip(upper=1.0)
    return float((weight * (queued["outcome"] == "violation")).sum() / weight.sum())
