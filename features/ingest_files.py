"""Reading a department's files as the contract delivers them: one CSV or Parquet file per table, or a folder
of parts (a province's tables partitioned by month or city), whole or in chunks, every cell as text or the
Parquet type and nothing guessed, so that validation (features.ingest) sees what the department wrote."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


class IngestError(Exception):
    """A drop that cannot be read at all: missing table, missing column, unreadable file."""


def find_table_file(data_dir: Path, name: str) -> Path | None:
    """``<name>.csv`` or ``<name>.parquet``, or a folder ``<name>/`` of CSV and Parquet parts (at province
    scale a table comes partitioned, e.g. ``supply/month=2024-01/part-0.parquet``)."""
    candidates = [p for p in (data_dir / f"{name}.csv", data_dir / f"{name}.parquet", data_dir / name) if p.exists()]
    if len(candidates) > 1:
        raise IngestError(f"{data_dir}: {' and '.join(p.name for p in candidates)} all hold table '{name}'; keep one")
    return candidates[0] if candidates else None


def table_parts(path: Path) -> list[Path]:
    """The files of a table: the file itself, or a folder's CSV and Parquet files in path order."""
    if not path.is_dir():
        return [path]
    parts = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in (".csv", ".parquet"))
    if not parts:
        raise IngestError(f"{path}: a table folder with no .csv or .parquet file")
    return parts


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


def iter_raw(path: Path, chunk_rows: int):
    """The file in chunks of ``chunk_rows`` data rows, read as ``read_raw`` reads it whole (every cell
    text or the Parquet type, empty cells missing); a file without data rows gives one empty chunk."""
    try:
        if path.suffix == ".parquet":
            import pyarrow.parquet as pq

            pf = pq.ParquetFile(path)
            chunks = (b.to_pandas() for b in pf.iter_batches(batch_size=chunk_rows))
            empty = pf.schema_arrow.empty_table().to_pandas()
        else:
            chunks = pd.read_csv(
                path, dtype=str, encoding="utf-8-sig", keep_default_na=False, na_values=[""], skipinitialspace=False,
                chunksize=chunk_rows,
            )
            empty = None
        seen = False
        for frame in chunks:
            seen = True
            frame.columns = [str(c).strip() for c in frame.columns]
            yield frame.reset_index(drop=True)
        if not seen:
            yield read_raw(path) if empty is None else empty
    except (UnicodeDecodeError, pd.errors.ParserError, OSError, ValueError) as exc:
        raise IngestError(f"{path}: cannot be read as {path.suffix[1:].upper()}: {exc}") from exc
