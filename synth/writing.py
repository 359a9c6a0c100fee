"""Writing the drop: per-table file formats, rows broken on purpose to test quarantine, the truth files."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from features.contract import TABLES

_BREAKABLE = {  # table: (month-like column, bad values; volume column; key column that may go empty)
    "supply": ("month", ("2025-13", "2024/07", "24-05"), "volume_m3", "account_id"),
    "discharge": ("month", ("2026-00", "2025.11", "2025-7月"), "volume_m3", "account_id"),
    "abstraction": ("month", ("2025-13", "2024/03"), "volume_m3", "meter_id"),
    "tax": ("period", ("2025-Q5", "2025Q2", "2025-3"), "declared_m3", "uscc"),
}


def break_rows(tables: dict[str, pd.DataFrame], count: int, rng) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """Break ``count`` rows the way careless exports do, and record exactly which (data rows from 1)."""
    names = [t for t in _BREAKABLE if len(tables[t]) >= 10]
    sizes = np.sqrt([len(tables[t]) for t in names])
    per_table = np.bincount(rng.choice(len(names), size=count, p=sizes / sizes.sum()), minlength=len(names))
    out, records = dict(tables), []
    for name, c in zip(names, per_table):
        if not c:
            continue
        frame = tables[name].copy()
        month_col, bad_months, vol_col, key_col = _BREAKABLE[name]
        key = ",".join(TABLES[name].key)
        c = min(int(c), len(frame) // 2)
        rows = rng.choice(len(frame), size=2 * c, replace=False)
        broken, sources = rows[:c], rows[c:]
        kind = rng.choice(5, size=c)  # month, negative, non-numeric, empty key, duplicate
        for col in (month_col, vol_col, key_col):
            frame[col] = frame[col].astype("str")  # the broken cells are text; missing cells stay missing
        vals = frame[vol_col].to_numpy().astype(object)
        months = frame[month_col].to_numpy().astype(object)
        keys = frame[key_col].to_numpy().astype(object)
        b = broken[kind == 0]
        months[b] = rng.choice(bad_months, size=len(b))
        b = broken[kind == 1]
        vals[b] = ["-" + (v if v not in ("0", "0.0") else "5") for v in vals[b]]
        b = broken[kind == 2]
        vals[b] = rng.choice(["约120", "abc", "—", "1,200", "未抄"], size=len(b))
        b = broken[kind == 3]
        keys[b] = None
        frame[month_col], frame[vol_col], frame[key_col] = months, vals, keys
        dup = sources[: int((kind == 4).sum())]
        n0 = len(frame)
        frame = pd.concat([frame, frame.iloc[dup]], ignore_index=True)
        cols = np.array([month_col, vol_col, vol_col, key_col])
        single = kind < 4
        records.append(pd.DataFrame({"table": name, "row_number": broken[single] + 1, "column": cols[kind[single]]}))
        records.append(pd.DataFrame({"table": name, "row_number": n0 + np.arange(len(dup)) + 1, "column": key}))
        out[name] = frame
    if not records:
        return out, pd.DataFrame({"table": [], "row_number": np.zeros(0, int), "column": []})
    malformed = pd.concat(records, ignore_index=True).sort_values(["table", "row_number"]).reset_index(drop=True)
    return out, malformed


def table_formats(file_format: str, seed: int) -> dict[str, str]:
    """File format per table; a mixed drop alternates, as departments exporting from different systems do."""
    if file_format != "mixed":
        return {name: file_format for name in TABLES}
    return {name: ("parquet" if (i + seed) % 2 else "csv") for i, name in enumerate(TABLES)}


def for_parquet(frame: pd.DataFrame, name: str, text: set[str] = frozenset()) -> pd.DataFrame:
    """Typed columns where every cell parses (as a department's database export would be); text otherwise,
    and for the columns in ``text``."""
    frame = frame.copy()
    for col in TABLES[name].columns:
        s = frame[col.name]
        if col.name in text:
            frame[col.name] = s.astype("str")
        elif col.kind in ("date", "month"):
            fmt = "%Y-%m-%d" if col.kind == "date" else "%Y-%m"
            parsed = pd.to_datetime(s, format=fmt, errors="coerce")
            frame[col.name] = parsed if (parsed.notna() == s.notna()).all() else s.astype("str")
        elif col.kind == "bool":
            frame[col.name] = s.map({"true": True, "false": False, True: True, False: False}).astype("boolean")
        elif s.dtype == object:
            frame[col.name] = s.astype("str")
    return frame


def for_csv(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    for col in frame.columns:
        if frame[col].dtype == bool:
            frame[col] = np.where(frame[col], "true", "false")
    return frame


# -- streaming writer --------------------------------------------------------------------------

_ARROW = {
    "text": pa.string(),
    "quarter": pa.string(),
    "decimal": pa.float64(),
    "int": pa.int64(),
    "bool": pa.bool_(),
    "date": pa.timestamp("us"),
    "month": pa.timestamp("us"),
}


def parquet_schema(name: str, broken: bool) -> pa.Schema:
    """The table's Parquet schema from the contract; with broken rows, the breakable columns stay text."""
    text = set(_BREAKABLE[name][0:1] + _BREAKABLE[name][2:4]) if broken and name in _BREAKABLE else set()
    return pa.schema(
        [pa.field(c.name, pa.string() if c.name in text else _ARROW[c.kind]) for c in TABLES[name].columns]
    )


class DropWriter:
    """Appends chunks of each table to its file (CSV: header once; Parquet: one row group per chunk)."""

    def __init__(self, out: Path, config):
        self.out, self.broken = out, config.malformed_rows > 0
        self.formats = table_formats(config.file_format, config.seed)
        self.counts: Counter = Counter()
        self._started: set[str] = set()
        self._parquet: dict[str, pq.ParquetWriter] = {}
        for name in TABLES:
            for ext in ("csv", "parquet"):  # never leave the other format of a table behind
                (out / f"{name}.{ext}").unlink(missing_ok=True)

    def write(self, name: str, frame: pd.DataFrame) -> None:
        if self.formats[name] == "parquet":
            schema = parquet_schema(name, self.broken)
            if name not in self._parquet:
                self._parquet[name] = pq.ParquetWriter(self.out / f"{name}.parquet", schema)
            typed = for_parquet(frame, name, text={f.name for f in schema if f.type == pa.string()})
            self._parquet[name].write_table(pa.Table.from_pandas(typed, schema=schema, preserve_index=False))
        else:
            append_csv(for_csv(frame), self.out / f"{name}.csv", first=name not in self._started)
        self._started.add(name)
        self.counts[name] += len(frame)

    def close(self) -> None:
        for name in set(TABLES) - self._started:  # a table no block made a row for still gets its columns
            self.write(name, pd.DataFrame({c: pd.Series(dtype=object) for c in TABLES[name].column_names}))
        for writer in self._parquet.values():
            writer.close()


def append_csv(frame: pd.DataFrame, path: Path, first: bool) -> None:
    """Write ``frame`` to a CSV file: a new file with its header, or appended rows."""
    frame.to_csv(path, mode="w" if first else "a", header=first, index=False, encoding="utf-8")


def generate_city(config, out_dir: Path | str, progress=None) -> dict[str, int]:
    """Write the drop block by block (memory bounded by the block size, not the city): the nine tables,
    truth.csv, link_truth.csv and, with malformed rows, malformed.csv. Returns row counts."""
    from synth.city import CityStream

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stream = CityStream(config)
    writer = DropWriter(out, config)
    links = 0
    blocks = progress(stream, desc="blocks", total=len(stream.blocks)) if progress else stream
    for b, (part, _state) in enumerate(blocks):
        for name, frame in part.tables.items():
            writer.write(name, frame)
        append_csv(part.link_truth, out / "link_truth.csv", first=b == 0)
        links += len(part.link_truth)
        del part, _state  # the block's state is the bulk of the memory
    writer.write("inspections", stream.inspections())
    writer.close()
    counts = {name: int(writer.counts[name]) for name in TABLES}
    truth = stream.truth()
    truth.to_csv(out / "truth.csv", index=False, encoding="utf-8")
    counts["truth"], counts["link_truth"] = int(len(truth)), links
    (out / "malformed.csv").unlink(missing_ok=True)
    if config.malformed_rows:
        malformed = stream.malformed()
        malformed.to_csv(out / "malformed.csv", index=False, encoding="utf-8")
        counts["malformed"] = int(len(malformed))
    return counts
