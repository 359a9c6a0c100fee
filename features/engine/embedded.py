"""The embedded engine: DuckDB in the process (streams Parquet and CSV, spills to disk past its
memory limit), with each partition of entities computed in pandas by the kernel it is given."""

from __future__ import annotations

import shutil
from collections.abc import Callable, MutableMapping
from functools import partial
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from features.engine.base import (
    BUCKET,
    BUCKET_KEYS,
    TYPED_TABLES,
    BucketKernel,
    EngineSettings,
    GroupFunction,
    PartitionPlan,
    empty_frame,
    restore,
    typed_schema,
    write_part,
)

MONTHLY = ("supply", "discharge", "abstraction")


def _sql_path(path: Path) -> str:
    return str(path).replace("'", "''")


class LazyTables(MutableMapping):
    """A partition's tables by name, each read when a kernel first asks for it: the snapshots of step 3 read
    the registers and meters, not the supply and sewer months."""

    def __init__(self, loaders: dict[str, Callable[[], pd.DataFrame]]):
        self._loaders = dict(loaders)
        self._frames: dict[str, pd.DataFrame] = {}

    def __getitem__(self, name: str) -> pd.DataFrame:
        if name not in self._frames:
            self._frames[name] = self._loaders[name]()
        return self._frames[name]

    def __setitem__(self, name: str, frame: pd.DataFrame) -> None:
        self._frames[name] = frame
        self._loaders.setdefault(name, lambda: frame)

    def __delitem__(self, name: str) -> None:
        self._frames.pop(name, None)
        del self._loaders[name]

    def __iter__(self):
        return iter(self._loaders)

    def __len__(self) -> int:
        return len(self._loaders)


class EmbeddedEngine:
    name = "embedded"

    def __init__(self, settings: EngineSettings, temp_directory: Path | None = None):
        self.settings = settings
        self.con = duckdb.connect()
        self.con.execute("SET enable_progress_bar = false")  # the stages show their own (tqdm)
        self.con.execute(f"SET memory_limit = '{settings.memory_limit}'")
        self.con.execute(f"SET threads = {int(settings.threads)}")
        self.con.execute("SET preserve_insertion_order = true")
        if temp_directory is not None:
            Path(temp_directory).mkdir(parents=True, exist_ok=True)
            self.con.execute(f"SET temp_directory = '{_sql_path(Path(temp_directory))}'")

    def close(self) -> None:
        self.con.close()

    # -- plan -------------------------------------------------------------------------------
    def plan(self, typed: Path, as_of: pd.Timestamp) -> PartitionPlan:
        codes = self.con.execute(
            f"SELECT DISTINCT uscc FROM read_parquet('{_sql_path(typed / 'entities.parquet')}') "
            "WHERE uscc IS NOT NULL ORDER BY uscc"
        ).fetchnumpy()["uscc"]
        plan = PartitionPlan.from_codes(np.asarray(codes, dtype=object), self.settings.bucket_entities)
        firsts = []
        for name in MONTHLY:
            path = typed / f"{name}.parquet"
            if path.exists():
                row = self.con.execute(
                    f"SELECT min(year(month) * 12 + month(month) - 1) FROM read_parquet('{_sql_path(path)}') "
                    "WHERE month < ?", [pd.Timestamp(as_of).to_pydatetime()]
                ).fetchall()[0]
                if row[0] is not None:
                    firsts.append(int(row[0]))
        before = pd.Timestamp(as_of).year * 12 + pd.Timestamp(as_of).month - 1
        plan.first_month = min(firsts) if firsts else before - 12
        return plan

    # -- partition --------------------------------------------------------------------------
    def partition(self, typed: Path, links: Path, plan: PartitionPlan, out: Path) -> None:
        con = self.con
        if out.exists():
            shutil.rmtree(out)
        out.mkdir(parents=True)
        bounds = pd.DataFrame({"lo": [""] + list(plan.bounds), BUCKET: np.arange(plan.buckets, dtype="int32")})
        con.register("bounds_df", bounds)
        con.execute("CREATE OR REPLACE TEMP TABLE bounds AS SELECT * FROM bounds_df")
        con.unregister("bounds_df")
        con.execute(f"CREATE OR REPLACE TEMP VIEW links AS SELECT * FROM read_parquet('{_sql_path(links)}')")
        sources = {"links": "SELECT * FROM links"}
        for name in TYPED_TABLES:
            path = typed / f"{name}.parquet"
            if not path.exists():
                continue
            src = f"read_parquet('{_sql_path(path)}')"
            if name == "abstraction":
                permits = f"read_parquet('{_sql_path(typed / 'permits.parquet')}')"
                sources[name] = (
                    f"SELECT t.*, p.uscc AS holder FROM {src} t LEFT JOIN "
                    f"(SELECT permit_id, any_value(uscc) AS uscc FROM {permits} GROUP BY permit_id) p USING (permit_id)"
                )
            elif name in ("supply", "discharge"):
                sources[name] = (
                    f"SELECT t.*, l.uscc AS linked_uscc FROM {src} t LEFT JOIN "
                    f"(SELECT account_id, any_value(uscc) AS uscc FROM links WHERE source = '{name}' AND status = 'linked' "
                    "GROUP BY account_id) l USING (account_id)"
                )
            else:
                sources[name] = f"SELECT * FROM {src}"
        for name, select in sources.items():
            key = BUCKET_KEYS[name]
            extra = {"abstraction": "holder", "supply": "linked_uscc", "discharge": "linked_uscc"}.get(name)
            drop = f" EXCLUDE ({extra})" if extra else ""
            row_no = ", row_number() OVER () AS link_row" if name == "links" else ""
            con.execute(
                f"""COPY (
                    SELECT s.*{drop}, coalesce(b.{BUCKET}, 0) AS {BUCKET}
                    FROM (SELECT *, {key} AS bucket_key{row_no} FROM ({select})) s
                    ASOF LEFT JOIN bounds b ON s.bucket_key >= b.lo
                ) TO '{_sql_path(out / name)}' (FORMAT parquet, PARTITION_BY ({BUCKET}), OVERWRITE_OR_IGNORE)"""
            )
        # the keys were only for placing rows: drop them when reading (restore keeps the typed columns)

    # -- partitions -------------------------------------------------------------------------
    def read_bucket(self, partitioned: Path, name: str, bucket: int, schema) -> pd.DataFrame:
        folder = partitioned / name / f"{BUCKET}={bucket}"
        if not folder.exists():
            return empty_frame(schema)
        table = pq.read_table(folder)
        if name == "links":
            frame = restore(table, schema.append(pq.read_schema(next(folder.glob("*.parquet"))).field("link_row")))
            return frame.sort_values("link_row", kind="stable").drop(columns="link_row").reset_index(drop=True)
        return restore(table, schema)

    def map_buckets(self, partitioned: Path, plan: PartitionPlan, kernel: BucketKernel, context: dict, out: Path,
                    typed: Path | None = None, links: Path | None = None, extra: dict[str, Path] | None = None,
                    progress=None) -> list[str]:
        typed = typed or partitioned.parent / "typed"
        links = links or partitioned.parent / "linked" / "linkage.parquet"
        schemas = {n: typed_schema(typed / f"{n}.parquet") for n in TYPED_TABLES if (typed / f"{n}.parquet").exists()}
        link_schema = typed_schema(links)
        from features.contract import TABLES
        from features.ingest import empty_typed

        names: set[str] = set()
        buckets = range(plan.buckets)
        for k in progress(buckets, desc="partitions", total=plan.buckets) if progress else buckets:
            tables = LazyTables({
                n: partial(self.read_bucket, partitioned, n, k, schemas[n]) if n in schemas else partial(empty_typed, TABLES[n])
                for n in TYPED_TABLES
            })
            for name, folder in (extra or {}).items():  # earlier partitioned outputs, part k of each
                tables[name] = pd.read_parquet(folder / f"part-{k:05d}.parquet")
            bucket_links = self.read_bucket(partitioned, "links", k, link_schema)
            for name, frame in kernel(tables, bucket_links, {**context, "bucket": k}).items():
                write_part(out / f"{name}.parquet", k, frame)
                names.add(name)
        return sorted(names)

    def map_groups(self, source: Path, key: str, fn: GroupFunction, target: Path) -> None:
        con = self.con
        staged = target.with_name(target.name + ".groups")
        for folder in (staged, target):
            if folder.exists():
                shutil.rmtree(folder)
        con.execute(
            f"COPY (SELECT * FROM read_parquet('{_sql_path(source)}/*.parquet')) TO '{_sql_path(staged)}' "
            f"(FORMAT parquet, PARTITION_BY ({key}))"
        )
        groups = sorted(int(p.name.split("=", 1)[1]) for p in staged.glob(f"{key}=*"))
        for g in groups:
            rows = pq.read_table(staged / f"{key}={g}").to_pandas()
            write_part(target, g, fn(rows.assign(**{key: g})))
        shutil.rmtree(staged)
