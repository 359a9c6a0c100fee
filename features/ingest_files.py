"""Reading a department's files as the contract delivers them: one CSV or Parquet file per table, or a folder
of parts (a province's tables partitioned by month or city), whole or in chunks, every cell as text or the
Parquet type and nothing guessed, so that validation (features.ingest) sees what the department wrote."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

from features.csv_lines import HeaderError, check_unique, chunks_of_records, is_plain, read_header


class IngestError(Exception):
    """A drop that cannot be read at all: missing table, missing or repeated column, unreadable file."""


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
    """Every cell as text (or the Parquet type), empty cells as missing, nothing else guessed; a malformed CSV
    record is a row of empty cells whose problem the ``MALFORMED`` column holds (see ``split_malformed``)."""
    with _readable(path):
        if path.suffix == ".parquet":
            return _named(pd.read_parquet(path))
        return next(_csv_frames(path, None))


def iter_raw(path: Path, chunk_rows: int):
    """The file in chunks of ``chunk_rows`` data rows, read as ``read_raw`` reads it whole (every cell
    text or the Parquet type, empty cells missing, malformed records marked the same way); a file without
    data rows gives one empty chunk."""
    with _readable(path):
        if path.suffix != ".parquet":
            yield from _csv_frames(path, chunk_rows)
            return
        import pyarrow.parquet as pq

        pf = pq.ParquetFile(path)
        seen = False
        for batch in pf.iter_batches(batch_size=chunk_rows):
            seen = True
            yield _named(batch.to_pandas())
        if not seen:
            yield _named(pf.schema_arrow.empty_table().to_pandas())


MALFORMED = "\x00malformed"  # a raw frame's column marking malformed records: (column, value, reason) or None
_CSV_OPTIONS = dict(dtype=str, keep_default_na=False, na_values=[""], skipinitialspace=False)


def _csv_frames(path: Path, chunk_rows: int | None):
    """A CSV file as frames of ``chunk_rows`` rows (one frame for None): straight through pandas when the
    byte scan proves every line well formed (the fast path), else record by record (``csv_lines``)."""
    names, header_text = read_header(path)
    if is_plain(path, len(names)):
        if chunk_rows is None:
            yield _named(pd.read_csv(path, encoding="utf-8-sig", **_CSV_OPTIONS))
            return
        seen = False
        for frame in pd.read_csv(path, encoding="utf-8-sig", chunksize=chunk_rows, **_CSV_OPTIONS):
            seen = True
            yield _named(frame)
        if not seen:
            yield _named(pd.read_csv(path, encoding="utf-8-sig", **_CSV_OPTIONS))
        return
    for text, marks in chunks_of_records(path, names, header_text, chunk_rows):
        frame = _named(pd.read_csv(text, **_CSV_OPTIONS))
        if len(frame) != len(marks):  # pandas and the csv module must agree on every good record
            raise IngestError(f"{path}: {len(frame)} rows read where the record scan found {len(marks)}")
        if any(m is not None for m in marks):
            frame[MALFORMED] = pd.Series(marks, dtype=object)
        yield frame


def _named(frame: pd.DataFrame) -> pd.DataFrame:
    """Column names stripped, each once (a Parquet file may repeat one too)."""
    check_unique(frame.columns)
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame.reset_index(drop=True)


@contextmanager
def _readable(path: Path):
    """Any failure to read the file as its format is an ``IngestError`` naming the file."""
    try:
        yield
    except HeaderError as exc:
        raise IngestError(f"{path}: {exc}") from exc
    except (UnicodeDecodeError, pd.errors.ParserError, OSError, ValueError) as exc:
        raise IngestError(f"{path}: cannot be read as {path.suffix[1:].upper()}: {exc}") from exc


def split_malformed(raw: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series | None]:
    """The raw cells, and the marks of malformed records if the frame has any."""
    if MALFORMED not in raw.columns:
        return raw, None
    return raw.drop(columns=MALFORMED), raw[MALFORMED]


def with_malformed(marks: pd.Series, problems: list[pd.DataFrame]) -> list[pd.DataFrame]:
    """The cell problems of well-formed rows only (a malformed record's empty cells say nothing), and one
    quarantine row per malformed record (``row_number`` from 1 within the frame)."""
    bad = marks.notna().to_numpy()
    kept = [p[~bad[p["row_number"].to_numpy() - 1]] for p in problems]
    idx = np.flatnonzero(bad)
    if not len(idx):
        return kept
    column, value, reason = (list(x) for x in zip(*marks.iloc[idx]))
    return kept + [pd.DataFrame({"row_number": idx + 1, "column": column, "value": value, "reason": reason})]
