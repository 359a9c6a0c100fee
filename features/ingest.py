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

from features.as_of import check_within_drop, latest_as_of, parse_as_of
from features.cells import as_text, parse_column
from features.contract import KIND_DTYPES, TABLES, TableSpec
from features.ingest_files import IngestError, find_table_file, iter_raw, split_malformed, table_parts, with_malformed
from features.uscc import uscc_valid
from features.workspace import Workspace

QUARANTINE_COLUMNS = ["table", "file", "row_number", "key", "column", "value", "reason"]  # key: the row's key as written
ROW = "source_row"  # data-row number in the source file, counting from 1


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


def check_columns(spec: TableSpec, columns, file: str) -> None:
    missing = [c for c in spec.column_names if c not in columns]
    if missing:
        raise IngestError(
            f"{file}: table '{spec.name}' is missing required column(s) {', '.join(missing)} "
            f"(found: {', '.join(map(str, columns))})"
        )


def _cell_problems(spec: TableSpec, raw: pd.DataFrame) -> tuple[pd.DataFrame, list[pd.DataFrame]]:
    """Typed values and one frame per kind of bad cell (row_number counts from 1 within ``raw``)."""
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
        typed[c] = as_text(raw[c]).astype("str")

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
    return typed, problems


def raw_key(spec: TableSpec, raw: pd.DataFrame) -> pd.Series:
    """The key of each row as the file wrote it, joined with '|' (how a duplicate is reported)."""
    cols = [raw[k].astype("str") for k in spec.key]
    out = cols[0]
    for col in cols[1:]:
        out = out + "|" + col
    return out


def _row_keys(spec: TableSpec, raw: pd.DataFrame) -> np.ndarray:
    """Each row's key as written ('|' between the parts), empty where every part is (a malformed record):
    what a later stage needs to know which row was quarantined (a permit whose register row was rejected)."""
    parts = [as_text(raw[k]).fillna("").to_numpy(dtype=object) for k in spec.key]
    keys = parts[0]
    for part in parts[1:]:
        keys = keys + "|" + part
    return np.where(keys == "|" * (len(parts) - 1), "", keys)


def duplicate_key_problems(keys: pd.DataFrame, rows: np.ndarray, written: pd.Series, spec: TableSpec) -> tuple[np.ndarray, pd.DataFrame]:
    """Rows whose key an earlier row already holds (first occurrence wins), among rows that are
    otherwise good: ``keys`` their typed key columns, ``rows`` their row numbers (ascending),
    ``written`` their keys as the file wrote them. Returns the duplicates' mask and quarantine rows."""
    key = list(spec.key)
    dup = keys[key].duplicated(keep="first").to_numpy()
    if not dup.any():
        return dup, pd.DataFrame(columns=QUARANTINE_COLUMNS[2:])
    first_row = pd.Series(rows, index=keys.index).groupby([keys[k] for k in key], dropna=False).transform("min")
    idx = np.flatnonzero(dup)
    return dup, pd.DataFrame(
        {
            "row_number": rows[idx],
            "key": written.iloc[idx].to_numpy(),
            "column": ",".join(key),
            "value": written.iloc[idx].to_numpy(),
            "reason": [f"duplicate key; first seen at row {int(r)}" for r in first_row.iloc[idx]],
        }
    )


def _finish_accepted(spec: TableSpec, accepted: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Row-wise extras of accepted rows: the USCC check and the start of each quarter."""
    findings = 0
    if spec.has_uscc:
        accepted["uscc_valid"] = uscc_valid(accepted["uscc"])
        findings = int((accepted["uscc_valid"] == False).sum())  # noqa: E712 (NA-aware)
    for col in spec.columns:
        if col.kind == "quarter":
            accepted[f"{col.name}_start"] = pd.PeriodIndex(accepted[col.name], freq="Q").start_time.astype(
                "datetime64[s]"
            ) if len(accepted) else pd.Series(dtype="datetime64[s]")
    return accepted.reset_index(drop=True), findings


def _quarantine_frame(spec: TableSpec, problems: list[pd.DataFrame], file: str) -> pd.DataFrame:
    quarantine = (
        pd.concat(problems, ignore_index=True).sort_values(["row_number", "column"], kind="stable")
        if problems
        else pd.DataFrame(columns=QUARANTINE_COLUMNS[2:])
    )
    quarantine.insert(0, "file", file)
    quarantine.insert(0, "table", spec.name)
    return quarantine.reset_index(drop=True)


def validate_chunk(spec: TableSpec, raw: pd.DataFrame, file: str, first_row: int = 1) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Cell checks of one chunk of a table whose first data row is number ``first_row``: the rows that
    pass (typed, with ``source_row`` and, as ``_raw_key``, the key as written) and the quarantine rows.
    Duplicate keys are left to ``duplicate_key_problems`` over every chunk; a malformed record (a CSV line
    that is not one row of the header's columns) is one quarantine row of its own."""
    raw, marks = split_malformed(raw.reset_index(drop=True))
    check_columns(spec, raw.columns, file)
    typed, problems = _cell_problems(spec, raw)
    if marks is not None:
        problems = with_malformed(marks, problems)
    bad_rows = np.zeros(len(raw), dtype=bool)
    for p in problems:
        bad_rows[p["row_number"].to_numpy() - 1] = True
    keys = _row_keys(spec, raw)
    for p in problems:
        p["key"] = keys[p["row_number"].to_numpy() - 1]
        p["row_number"] = p["row_number"] + first_row - 1
    good = typed[~bad_rows].copy()
    good[ROW] = np.flatnonzero(~bad_rows) + first_row
    good["_raw_key"] = raw_key(spec, raw[~bad_rows]).to_numpy() if len(good) else pd.Series(dtype="str")
    return good, _quarantine_frame(spec, problems, file)


def validate_table(spec: TableSpec, raw: pd.DataFrame, file: str) -> TableResult:
    """Typed accepted rows and the quarantine of one table; raises IngestError on missing columns."""
    good, quarantine = validate_chunk(spec, raw, file)
    dup, dups = duplicate_key_problems(good, good[ROW].to_numpy(), good["_raw_key"], spec)
    if dup.any():
        quarantine = _quarantine_frame(spec, [quarantine.drop(columns=["table", "file"]), dups], file)
    accepted, findings = _finish_accepted(spec, good[~dup].drop(columns="_raw_key"))
    result = TableResult(spec.name, file, accepted, quarantine, len(raw), findings)
    assert result.summary["read"] == result.summary["accepted"] + result.summary["quarantined"]
    return result


# -- the stage ----------------------------------------------------------------


def _sha256_parts(paths: list[Path]) -> str:
    """One hash over a table's files (their hashes in path order)."""
    return hashlib.sha256("".join(_sha256(p) for p in paths).encode()).hexdigest()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def default_as_of(typed: dict[str, pd.DataFrame]) -> pd.Timestamp:
    """The first day after the last month present in the monthly tables."""
    return _month_after([t["month"].max() for name, t in typed.items() if "month" in t.columns and len(t)])


def _month_after(months: list) -> pd.Timestamp:
    """The first day after the latest of ``months``: a drop's as-of when none is given."""
    if not months:
        raise IngestError("the drop has no monthly data (supply, discharge, abstraction are all empty)")
    return latest_as_of(max(months))


CHUNK_ROWS = 1_000_000  # rows of a table validated at a time: memory stays bounded by a chunk
DUPLICATES_MEMORY = "1GB"  # the database finding duplicate keys spills past this


def _duplicates(spec: TableSpec, parts: list[Path]) -> pd.DataFrame:
    """Quarantine rows of duplicate keys across every chunk: the database finds the keys held by more
    than one good row (out of core), ``duplicate_key_problems`` judges their rows."""
    import duckdb

    if not parts:
        return pd.DataFrame(columns=QUARANTINE_COLUMNS[2:])
    key = ", ".join(f'"{k}"' for k in spec.key)
    files = ", ".join("'" + str(p).replace("'", "''") + "'" for p in parts)
    with duckdb.connect(config={"memory_limit": DUPLICATES_MEMORY, "threads": 2}) as con:
        con.execute("SET enable_progress_bar = false")  # the stage shows its own progress
        rows = con.execute(
            f"""SELECT * FROM read_parquet([{files}]) WHERE ({key}) IN (
                    SELECT ({key}) FROM read_parquet([{files}]) GROUP BY ALL HAVING count(*) > 1
                ) ORDER BY {ROW}"""
        ).df()
    if not len(rows):
        return pd.DataFrame(columns=QUARANTINE_COLUMNS[2:])
    _, problems = duplicate_key_problems(rows, rows[ROW].to_numpy(), rows["_raw_key"], spec)
    return problems


def _ingest_in_memory(spec: TableSpec, source: Path, path: Path, target: Path, chunk_rows: int) -> dict | None:
    """A file of one chunk is validated in memory in one go, with no staging; None when it holds more."""
    chunks = iter_raw(source, chunk_rows)
    first = next(chunks)
    if next(chunks, None) is not None:
        return None
    res = validate_table(spec, first, path.name)
    res.accepted.to_parquet(target, index=False)
    months = res.accepted["month"].dropna() if "month" in res.accepted.columns else pd.Series([], dtype="datetime64[s]")
    return {"summary": res.summary, "quarantine": res.quarantine, "uscc_findings": res.uscc_findings,
            "last_month": months.max() if len(months) else None, "file": path.name}


def _stage_chunks(spec: TableSpec, sources: list[Path], path: Path, staging: Path, chunk_rows: int):
    """Validate every chunk's cells into a staged Parquet part. A table in several files: rows are numbered
    on through the files in path order (the quarantine names each row's file), so that "first seen at row N"
    and the partitions' row order stay defined. Returns the rows read, the parts, the chunks' quarantines and
    each chunk's (first row, file name)."""
    read, parts, quarantines, spans = 0, [], [], []
    for source in sources:
        name = path.name if source == path else str(source.relative_to(path.parent))
        for raw in iter_raw(source, chunk_rows):
            good, quarantine = validate_chunk(spec, raw, name, first_row=read + 1)
            spans.append((read + 1, name))
            read += len(raw)
            quarantines.append(quarantine)
            part = staging / f"part-{len(parts):05d}.parquet"
            good.to_parquet(part, index=False)
            parts.append(part)
    return read, parts, quarantines, spans


def _write_accepted(spec: TableSpec, parts: list[Path], dropped: set, target: Path) -> tuple[int, int, pd.Timestamp | None]:
    """Stream the staged parts, less the duplicate-key rows, into one typed Parquet file (deleting the parts);
    returns the rows accepted, the USCC findings and the last month."""
    import pyarrow as pa_arrow
    import pyarrow.parquet as pq

    writer, accepted, findings, last_month = None, 0, 0, None
    try:
        for part in parts:
            good = pd.read_parquet(part)
            for col in spec.columns:  # Parquet keeps seconds as milliseconds
                if col.kind in ("date", "month"):
                    good[col.name] = good[col.name].astype("datetime64[s]")
            good = good[~good[ROW].isin(dropped)].drop(columns="_raw_key")
            good, n_findings = _finish_accepted(spec, good)
            findings += n_findings
            accepted += len(good)
            if "month" in good.columns and len(good) and good["month"].notna().any():
                m = good["month"].max()
                last_month = m if last_month is None else max(last_month, m)
            table = pa_arrow.Table.from_pandas(good, preserve_index=False)
            if writer is None:
                writer = pq.ParquetWriter(target, table.schema)
            writer.write_table(table.cast(writer.schema))
    finally:
        if writer is not None:
            writer.close()
        for part in parts:
            part.unlink()
    return accepted, findings, last_month


def _chunked_quarantine(spec: TableSpec, quarantines: list[pd.DataFrame], dups: pd.DataFrame, spans,
                        file: str) -> pd.DataFrame:
    """The chunks' cell problems and the duplicate-key rows (each named by the file it came from), in row order."""
    if len(dups):
        starts = np.array([start for start, _ in spans])
        names = np.array([name for _, name in spans], dtype=object)
        dups = dups.assign(file=names[np.searchsorted(starts, dups["row_number"].to_numpy(dtype="int64"), side="right") - 1])
        dups.insert(0, "table", spec.name)
    problems = [q for q in quarantines if len(q)] + ([dups[QUARANTINE_COLUMNS]] if len(dups) else [])
    if not problems:
        return _quarantine_frame(spec, [], file)
    return pd.concat(problems, ignore_index=True).sort_values(["row_number", "column"], kind="stable").reset_index(drop=True)


def ingest_table(spec: TableSpec, path: Path, target: Path, chunk_rows: int = CHUNK_ROWS) -> dict:
    """Validate one table file chunk by chunk into ``target`` (typed Parquet); returns its counts, its
    quarantine rows and its last month. The same rows and quarantine as ``validate_table`` on the whole."""
    sources = table_parts(path)
    if len(sources) == 1:
        done = _ingest_in_memory(spec, sources[0], path, target, chunk_rows)
        if done is not None:
            return done
    staging = target.with_name(f".{target.stem}.chunks")
    staging.mkdir(parents=True, exist_ok=True)
    read, parts, quarantines, spans = _stage_chunks(spec, sources, path, staging, chunk_rows)
    dups = _duplicates(spec, parts)
    dropped = set(dups["row_number"].astype("int64"))
    try:
        accepted, findings, last_month = _write_accepted(spec, parts, dropped, target)
    finally:
        staging.rmdir()
    quarantine = _chunked_quarantine(spec, quarantines, dups, spans, path.name)
    summary = {"read": read, "accepted": accepted,
               "quarantined": int(quarantine["row_number"].nunique()) if len(quarantine) else 0}
    assert summary["read"] == summary["accepted"] + summary["quarantined"], (spec.name, summary)
    return {"summary": summary, "quarantine": quarantine, "uscc_findings": findings, "last_month": last_month,
            "file": path.name}


def ingest(data_dir: Path | str, workspace: Workspace, as_of: str | None = None, progress=None,
           chunk_rows: int = CHUNK_ROWS) -> dict:
    """Validate a drop into ``workspace`` (typed/, quarantine/, summary, manifest) and return the summary.

    ``as_of``: the first day of a month, at most the first day after the drop's last month (the default, kept
    in the manifest as ``latest_as_of``); anything else is a ValueError (``features.as_of``). Each table
    streams through in chunks of ``chunk_rows`` rows (``ingest_table``), so memory does not grow with the drop."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise IngestError(f"{data_dir}: no such data folder")
    files: dict[str, Path | None] = {}
    for name, spec in TABLES.items():
        files[name] = find_table_file(data_dir, name)
        if files[name] is None and not spec.optional:
            raise IngestError(f"{data_dir}: required table '{name}' is missing (expected {name}.csv or {name}.parquet)")

    typed_dir = workspace.reset_stage("typed")
    results: dict[str, dict] = {}
    names = [n for n in TABLES if files[n] is not None]
    iterator = progress(names, desc="ingest", unit="table") if progress else names
    for name in iterator:
        results[name] = ingest_table(TABLES[name], files[name], typed_dir / f"{name}.parquet", chunk_rows)

    qdir = workspace.reset_stage("quarantine")
    quarantine = pd.concat([r["quarantine"] for r in results.values()], ignore_index=True)
    quarantine = quarantine.reindex(columns=QUARANTINE_COLUMNS)
    quarantine.to_parquet(qdir / "quarantine.parquet", index=False)
    quarantine.to_csv(qdir / "quarantine.csv", index=False, encoding="utf-8")

    summary = {name: res["summary"] for name, res in results.items()}
    (workspace.root / "ingest_summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    latest = _month_after([r["last_month"] for r in results.values() if r["last_month"] is not None])
    try:
        resolved_as_of = latest if not as_of else parse_as_of(as_of)
        check_within_drop(resolved_as_of, latest)
    except ValueError:
        workspace.update_manifest(as_of=None)  # no later stage may run on the previous as-of with this drop
        raise
    workspace.update_manifest(
        data_dir=str(data_dir.resolve()),
        as_of=resolved_as_of.date().isoformat(),
        latest_as_of=latest.date().isoformat(),
        sources={
            name: {"file": res["file"], "sha256": _sha256(files[name]) if files[name].is_file() else
                   _sha256_parts(table_parts(files[name])), "rows": res["summary"]["read"],
                   "uscc_findings": res["uscc_findings"]}
            for name, res in results.items()
        },
        ingest_summary=summary,
    )
    return summary
