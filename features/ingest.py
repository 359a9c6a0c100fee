"""Read a data drop, validate every table against the contract, quarantine bad rows.

Nothing is lost: for every table, rows read == rows accepted + rows quarantined.
A row is quarantined with one line per offending cell (file, data-row number
counting from 1, column, value, reason). Parsing is our own vectorised code;
value constraints (required, non-negative, allowed values) are a pandera schema
built from the contract, so the rules read like the contract does.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pandera.pandas as pa

from features.contract import KIND_DTYPES, TABLES, ColumnSpec, TableSpec
from features.uscc import uscc_valid
from features.workspace import Workspace

QUARANTINE_COLUMNS = ["table", "file", "row_number", "column", "value", "reason"]
ROW = "source_row"  # data-row number in the source file, counting from 1


class IngestError(Exception):
    """A drop that cannot be read at all: missing table, missing column, unreadable file."""


@dataclass
class TableResult:
    name: str
    file: str | None
    accepted: pd.DataFrame
    quarantine: pd.DataFrame
    read: int
    uscc_findings: int = 0

    @property
    def summary(self) -> dict[str, int]:
        return {
            "read": self.read,
            "accepted": len(self.accepted),
            "quarantined": int(self.quarantine["row_number"].nunique()) if len(self.quarantine) else 0,
        }


# -- reading ------------------------------------------------------------------


def find_table_file(data_dir: Path, name: str) -> Path | None:
    candidates = [p for p in (data_dir / f"{name}.csv", data_dir / f"{name}.parquet") if p.exists()]
    if len(candidates) > 1:
        raise IngestError(f"{data_dir}: both {name}.csv and {name}.parquet exist; keep one")
    return candidates[0] if candidates else None


def read_raw(path: Path) -> pd.DataFrame:
    """Every cell as text (or the Parquet type), empty cells as missing, nothing else guessed."""
    try:
        if path.suffix == ".parquet":
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_csv(
                path, dtype=str, encoding="utf-8-sig", keep_default_na=False, na_values=[""], skipinitialspace=False
            )
    except (UnicodeDecodeError, pd.errors.ParserError, OSError, ValueError) as exc:
        raise IngestError(f"{path}: cannot be read as {path.suffix[1:].upper()}: {exc}") from exc
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame.reset_index(drop=True)


# -- parsing ------------------------------------------------------------------

_PATTERNS = {
    "date": (r"\d{4}-\d{2}-\d{2}", "%Y-%m-%d", "a date YYYY-MM-DD"),
    "month": (r"\d{4}-\d{2}", "%Y-%m", "a month YYYY-MM"),
}
_BOOLS = {"true": True, "false": False, "1": True, "0": False, "t": True, "f": False, "yes": True, "no": False}


def _as_text(raw: pd.Series) -> pd.Series:
    text = raw.astype("str").str.strip()
    return text.mask(raw.isna() | (text == ""))


def parse_column(raw: pd.Series, spec: ColumnSpec) -> tuple[pd.Series, pd.Series, str]:
    """Typed values, a mask of cells present but unparseable, and what was expected."""
    kind = spec.kind
    if kind in ("date", "month") and pd.api.types.is_datetime64_any_dtype(raw):
        values = raw.astype("datetime64[s]")
        if kind == "month":
            values = values.dt.to_period("M").dt.start_time.astype("datetime64[s]")
        return values, pd.Series(False, index=raw.index), ""
    text = _as_text(raw)
    present = text.notna()
    if kind == "text":
        return text.astype("str"), pd.Series(False, index=raw.index), ""
    if kind in ("date", "month"):
        pattern, fmt, expected = _PATTERNS[kind]
        shaped = text.str.fullmatch(pattern).fillna(False).astype(bool)
        values = pd.to_datetime(text.where(shaped), format=fmt, errors="coerce").astype("datetime64[s]")
        return values, present & values.isna(), expected
    if kind == "quarter":
        shaped = text.str.fullmatch(r"\d{4}-Q[1-4]").fillna(False).astype(bool)
        return text.where(shaped).astype("str"), present & ~shaped, "a quarter YYYY-Qn"
    if kind in ("decimal", "int"):
        numbers = pd.to_numeric(text, errors="coerce").astype("float64")
        bad = present & (numbers.isna() | ~np.isfinite(numbers.fillna(0.0)))
        if kind == "int":
            fractional = numbers.notna() & (numbers != numbers.round())
            bad |= fractional
            numbers = numbers.mask(fractional)
            return numbers.round().astype("Int64"), bad, "a whole number"
        return numbers.mask(bad), bad, "a number"
    if kind == "bool":
        mapped = text.str.lower().map(_BOOLS)
        return mapped.astype("boolean"), present & mapped.isna(), "true or false"
    raise ValueError(f"unknown column kind {kind!r}")


def _pandera_schema(spec: TableSpec) -> pa.DataFrameSchema:
    columns = {}
    for col in spec.columns:
        checks = []
        if col.non_negative:
            checks.append(pa.Check.ge(0, error="negative value"))
        if col.allowed:
            checks.append(pa.Check.isin(list(col.allowed), error=f"not one of {', '.join(col.allowed)}"))
        columns[col.name] = pa.Column(nullable=not col.required, checks=checks, coerce=False)
    return pa.DataFrameSchema(columns, strict=False)


def _failures(frame: pd.DataFrame, mask: pd.Series, column: str, values: pd.Series, reason: str) -> pd.DataFrame:
    idx = np.flatnonzero(mask.to_numpy())
    return pd.DataFrame(
        {
            "row_number": idx + 1,
            "column": column,
            "value": values.iloc[idx].astype("str").to_numpy() if len(idx) else [],
            "reason": reason,
        }
    )


def empty_typed(spec: TableSpec) -> pd.DataFrame:
    frame = pd.DataFrame({c.name: pd.Series(dtype=KIND_DTYPES[c.kind]) for c in spec.columns})
    frame[ROW] = pd.Series(dtype="int64")
    if spec.has_uscc:
        frame["uscc_valid"] = pd.Series(dtype="boolean")
    for c in spec.columns:
        if c.kind == "quarter":
            frame[f"{c.name}_start"] = pd.Series(dtype="datetime64[s]")
    return frame


def validate_table(spec: TableSpec, raw: pd.DataFrame, file: str) -> TableResult:
    """Typed accepted rows and the quarantine of one table; raises IngestError on missing columns."""
    missing = [c for c in spec.column_names if c not in raw.columns]
    if missing:
        raise IngestError(
            f"{file}: table '{spec.name}' is missing required column(s) {', '.join(missing)} "
            f"(found: {', '.join(map(str, raw.columns))})"
        )
    typed = pd.DataFrame(index=raw.index)
    problems: list[pd.DataFrame] = []
    parse_failed: dict[str, pd.Series] = {}
    for col in spec.columns:
        values, bad, expected = parse_column(raw[col.name], col)
        typed[col.name] = values
        parse_failed[col.name] = bad
        if bad.any():
            problems.append(_failures(raw, bad, col.name, raw[col.name], f"not {expected}"))
    extras = [c for c in raw.columns if c not in spec.column_names]
    for c in extras:
        typed[c] = _as_text(raw[c]).astype("str")

    try:
        _pandera_schema(spec).validate(typed, lazy=True)
    except pa.errors.SchemaErrors as err:
        cases = err.failure_cases
        cases = cases[cases["index"].notna() & cases["column"].isin(spec.column_names)]
        for (column, check), group in cases.groupby(["column", "check"], sort=False):
            idx = group["index"].astype(int).to_numpy()
            idx = idx[~parse_failed[column].to_numpy()[idx]]  # already reported as unparseable
            if not len(idx):
                continue
            reason = "required value missing" if check == "not_nullable" else str(check)
            problems.append(
                pd.DataFrame(
                    {"row_number": idx + 1, "column": column, "value": raw[column].iloc[idx].astype("str").to_numpy(), "reason": reason}
                )
            )

    bad_rows = np.zeros(len(raw), dtype=bool)
    for p in problems:
        bad_rows[p["row_number"].to_numpy() - 1] = True
    # duplicate keys among otherwise good rows: the first occurrence wins
    key = list(spec.key)
    good = ~bad_rows
    dup = typed[key].duplicated(keep="first").to_numpy() & good
    if dup.any():
        first_row = (
            pd.Series(np.arange(len(typed)) + 1)[good]
            .groupby([typed[k][good] for k in key], dropna=False)
            .transform("min")
            .reindex(typed.index)
        )
        idx = np.flatnonzero(dup)
        problems.append(
            pd.DataFrame(
                {
                    "row_number": idx + 1,
                    "column": ",".join(key),
                    "value": raw[key].iloc[idx].astype("str").agg("|".join, axis=1).to_numpy(),
                    "reason": [f"duplicate key; first seen at row {int(r)}" for r in first_row.iloc[idx]],
                }
            )
        )
        bad_rows |= dup

    quarantine = (
        pd.concat(problems, ignore_index=True).sort_values(["row_number", "column"], kind="stable")
        if problems
        else pd.DataFrame(columns=["row_number", "column", "value", "reason"])
    )
    quarantine.insert(0, "file", file)
    quarantine.insert(0, "table", spec.name)
    accepted = typed[~bad_rows].copy()
    accepted[ROW] = np.flatnonzero(~bad_rows) + 1
    findings = 0
    if spec.has_uscc:
        accepted["uscc_valid"] = uscc_valid(accepted["uscc"])
        findings = int((accepted["uscc_valid"] == False).sum())  # noqa: E712 (NA-aware)
    for col in spec.columns:
        if col.kind == "quarter":
            accepted[f"{col.name}_start"] = pd.PeriodIndex(accepted[col.name], freq="Q").start_time.astype(
                "datetime64[s]"
            ) if len(accepted) else pd.Series(dtype="datetime64[s]")
    accepted = accepted.reset_index(drop=True)
    result = TableResult(spec.name, file, accepted, quarantine.reset_index(drop=True), len(raw), findings)
    assert result.summary["read"] == result.summary["accepted"] + result.summary["quarantined"]
    return result


# -- the stage ----------------------------------------------------------------


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def default_as_of(typed: dict[str, pd.DataFrame]) -> pd.Timestamp:
    """The first day after the last month present in the monthly tables."""
    months = [t["month"].max() for name, t in typed.items() if "month" in t.columns and len(t)]
    if not months:
        raise IngestError("the drop has no monthly data (supply, discharge, abstraction are all empty)")
    return (max(months) + pd.offsets.MonthBegin(1)).normalize()


def ingest(data_dir: Path | str, workspace: Workspace, as_of: str | None = None, progress=None) -> dict:
    """Validate a drop into ``workspace`` (typed/, quarantine/, summary, manifest) and return the summary."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise IngestError(f"{data_dir}: no such data folder")
    files: dict[str, Path | None] = {}
    for name, spec in TABLES.items():
        files[name] = find_table_file(data_dir, name)
        if files[name] is None and not spec.optional:
            raise IngestError(f"{data_dir}: required table '{name}' is missing (expected {name}.csv or {name}.parquet)")

    results: dict[str, TableResult] = {}
    names = list(TABLES)
    iterator = progress(names, desc="ingest", unit="table") if progress else names
    for name in iterator:
        path = files[name]
        if path is None:
            continue
        results[name] = validate_table(TABLES[name], read_raw(path), path.name)

    typed_dir = workspace.reset_stage("typed")
    for name, res in results.items():
        res.accepted.to_parquet(typed_dir / f"{name}.parquet", index=False)
    qdir = workspace.reset_stage("quarantine")
    quarantine = pd.concat([r.quarantine for r in results.values()], ignore_index=True)
    quarantine = quarantine.reindex(columns=QUARANTINE_COLUMNS)
    quarantine.to_parquet(qdir / "quarantine.parquet", index=False)
    quarantine.to_csv(qdir / "quarantine.csv", index=False, encoding="utf-8")

    summary = {name: res.summary for name, res in results.items()}
    (workspace.root / "ingest_summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    resolved_as_of = pd.Timestamp(as_of).normalize() if as_of else default_as_of({n: r.accepted for n, r in results.items()})
    workspace.update_manifest(
        data_dir=str(data_dir.resolve()),
        as_of=resolved_as_of.date().isoformat(),
        sources={
            name: {"file": res.file, "sha256": _sha256(files[name]), "rows": res.read, "uscc_findings": res.uscc_findings}
            for name, res in results.items()
        },
        ingest_summary=summary,
    )
    return summary
