"""What both engines share: settings, the partition plan, which key puts a table's row in which
partition, and the Arrow codec the partitions travel in."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, Field

from features.contract import TABLES

# kernel(tables of one partition, links of those accounts, context) -> named output frames
BucketKernel = Callable[[dict[str, pd.DataFrame], pd.DataFrame, dict], dict[str, pd.DataFrame]]
GroupFunction = Callable[[pd.DataFrame], pd.DataFrame]

PARTITIONED = "partitioned"  # workspace folder of the partitioned typed tables
BUCKET = "bucket"
ROW = "source_row"  # every typed table's row number in its source file: the order within a partition


class EngineSettings(BaseModel):
    """How the engines partition and how much memory they may take."""

    bucket_entities: int = Field(20_000, description="registered entities per partition (a partition is computed in memory)")
    memory_limit: str = Field("1GB", description="embedded engine: DuckDB's memory before it spills to disk (its "
                              "buffer pool stays resident up to this)")
    threads: int = Field(2, description="embedded engine: worker threads")
    spark_shuffle_partitions: int = Field(8, description="spark: shuffle partitions")
    spark_conf: dict[str, str] = Field(default_factory=dict, description="spark: further Spark properties for the "
                                       "session (e.g. spark.executor.memory on a cluster); JVM options take effect "
                                       "only when the session starts the driver's JVM")
    chunk_rows: int = Field(1_000_000, description="rows per chunk when ingesting and scoring")
    workers: int = Field(2, ge=1, description="processes running cities of a province at once (each city's "
                         "stages in one process; 1: one city after the other in this process)")


@dataclass
class PartitionPlan:
    """Partitions by ranges of the entity code: partition k holds codes in [bounds[k-1], bounds[k]).
    Ranges, not hashes, so that concatenating the partitions in order keeps the city's order by uscc."""

    bounds: list[str]
    entities: int
    first_month: int | None = None  # month number of the city's first month of data before as-of
    extra: dict = field(default_factory=dict)

    @property
    def buckets(self) -> int:
        return len(self.bounds) + 1

    @classmethod
    def from_codes(cls, sorted_codes: np.ndarray, per_bucket: int) -> "PartitionPlan":
        n = len(sorted_codes)
        step = max(1, int(per_bucket))
        bounds = [str(sorted_codes[i]) for i in range(step, n, step)]
        return cls(bounds=bounds, entities=n)


def bucket_of(keys: pd.Series | np.ndarray, bounds: list[str]) -> np.ndarray:
    """Partition of each key (missing keys go to partition 0)."""
    keys = pd.Series(keys, dtype="object")
    filled = keys.where(keys.notna(), "").astype("str").to_numpy(dtype=object)
    if not bounds:
        return np.zeros(len(filled), dtype="int32")
    return np.searchsorted(np.asarray(bounds, dtype=object), filled, side="right").astype("int32")


# Which key puts a row in a partition: the entity it belongs to, or (rows without one) its own key.
# abstraction: the holder of the meter's permit; supply, discharge: the entity the account is linked to.
BUCKET_KEYS: dict[str, str] = {
    "entities": "uscc",
    "permits": "uscc",
    "plans": "uscc",
    "tax": "uscc",
    "inspections": "uscc",
    "projects": "coalesce(uscc, project_id)",
    "abstraction": "coalesce(holder, permit_id)",
    "supply": "coalesce(linked_uscc, account_id)",
    "discharge": "coalesce(linked_uscc, account_id)",
    "links": "coalesce(CASE WHEN status = 'linked' THEN uscc END, account_id)",
}


# -- the Arrow codec -----------------------------------------------------------------------


def to_ipc(frame: pd.DataFrame) -> bytes:
    sink = io.BytesIO()
    table = pa.Table.from_pandas(frame, preserve_index=False)
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def from_ipc(blobs: list[bytes]) -> pa.Table:
    tables = [pa.ipc.open_stream(io.BytesIO(b)).read_all() for b in blobs]
    return pa.concat_tables(tables, promote_options="permissive") if len(tables) > 1 else tables[0]


def typed_schema(path: Path) -> pa.Schema:
    """The Arrow schema (with pandas metadata) of a typed table as ingest wrote it."""
    return pq.read_schema(path)


def restore(table: pa.Table, schema: pa.Schema) -> pd.DataFrame:
    """A partition's rows as the typed frame ingest wrote: the same columns, dtypes and row order."""
    table = table.select([n for n in schema.names if n in table.column_names])
    if table.num_rows == 0:
        return pa.Table.from_pylist([], schema=schema).to_pandas()
    frame = table.cast(pa.schema([schema.field(n) for n in table.column_names], metadata=schema.metadata)).to_pandas()
    if ROW in frame.columns:
        frame = frame.sort_values(ROW, kind="stable").reset_index(drop=True)
    return frame


def empty_frame(schema: pa.Schema) -> pd.DataFrame:
    return pa.Table.from_pylist([], schema=schema).to_pandas()


def part_path(folder: Path, bucket: int) -> Path:
    return folder / f"part-{bucket:05d}.parquet"


DICTIONARY_SAMPLE = 10_000  # rows looked at to decide whether a float column is dictionary-encoded
DICTIONARY_DISTINCT = 1_000  # distinct values in them up to which it is (flags, counts, statuses)


def dictionary_columns(frame: pd.DataFrame) -> list[str]:
    """The columns worth a Parquet dictionary: every non-float column (as pandas writes them) and the float
    columns of few distinct values. A float column of many (volumes, ratios, scores) would fill a dictionary
    page only to fall back to plain encoding: a third of the time of writing a profile partition."""
    head = frame.head(DICTIONARY_SAMPLE)
    return [str(c) for c in frame.columns
            if not pd.api.types.is_float_dtype(frame[c].dtype) or head[c].nunique(dropna=False) <= DICTIONARY_DISTINCT]


def write_part(folder: Path, bucket: int, frame: pd.DataFrame) -> None:
    """Part ``bucket`` of a partitioned output (the same values whatever the encoding)."""
    folder.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(part_path(folder, bucket), index=False, use_dictionary=dictionary_columns(frame))


def read_parts(folder: Path, columns: list[str] | None = None, filters=None) -> pd.DataFrame:
    """A partitioned output read whole, partitions in order (each part read alone: a column that is
    empty in one partition does not decide the type of the others)."""
    parts = sorted(Path(folder).glob("part-*.parquet"))
    frames = [pd.read_parquet(p, columns=columns, filters=filters) for p in parts]
    frames = [f for f in frames if len(f)] or frames[:1]
    if not frames:
        raise FileNotFoundError(f"{folder} holds no partitions")
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


class Engine(Protocol):
    """What a run needs from an engine; implemented by ``embedded.EmbeddedEngine`` and ``spark.SparkEngine``."""

    name: str

    def plan(self, typed: Path, as_of: pd.Timestamp) -> PartitionPlan:
        """Partition bounds from the entities, and the city's first month of data."""

    def partition(self, typed: Path, links: Path, plan: PartitionPlan, out: Path) -> None:
        """Every typed table and the links, each row in the partition of its entity, under ``out``."""

    def map_buckets(self, partitioned: Path, plan: PartitionPlan, kernel: BucketKernel, context: dict, out: Path,
                    typed: Path | None = None, links: Path | None = None, extra: dict[str, Path] | None = None,
                    progress=None) -> list[str]:
        """``kernel`` on each partition (the typed tables, plus part k of each ``extra`` output as a table of
        that name); output ``name`` goes to ``out/<name>.parquet/part-<k>.parquet``."""

    def map_groups(self, source: Path, key: str, fn: GroupFunction, target: Path) -> None:
        """``fn`` on all rows of ``source`` (partitioned output) sharing ``key``; the answers, concatenated,
        to ``target`` (one part per group)."""

    def close(self) -> None: ...


TYPED_TABLES = list(TABLES)
