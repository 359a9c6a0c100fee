"""The distributed engine: Apache Spark (PySpark) at a master URL.

Spark does the relational part (reading the typed Parquet, joining meters to their permit's holder
and accounts to their linked entity, placing every row in its entity partition, shuffling the
partitions together) and runs the SAME kernel as the embedded engine on each partition with
``groupBy(bucket).applyInPandas``: a partition's tables travel as Arrow IPC blobs in one
``(bucket, table, data)`` frame, so one group holds every table of its entities. Outputs come
back the same way and are written as the embedded engine writes them, so the stages after this
one read one workspace layout whichever engine ran.

On a cluster the typed tables must be on storage every executor reads (HDFS, S3 or a shared
mount): pass the workspace there. The outputs pass through the driver, one partition at a time.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from features.engine.base import (
    BUCKET_KEYS,
    TYPED_TABLES,
    BucketKernel,
    EngineSettings,
    GroupFunction,
    PartitionPlan,
    bucket_of,
    from_ipc,
    restore,
    to_ipc,
    typed_schema,
    write_part,
)

ENVELOPE = "bucket int, name string, data binary"
MONTHLY = ("supply", "discharge", "abstraction")


def _schema_bytes(schema: pa.Schema) -> bytes:
    return schema.serialize().to_pybytes()


def _schema(blob: bytes) -> pa.Schema:
    return pa.ipc.read_schema(pa.py_buffer(blob))


def _envelope(name: str, bounds: list[str], drop: list[str]):
    """mapInPandas function: rows -> (bucket, name, Arrow IPC of that bucket's rows)."""

    def fn(batches):
        for pdf in batches:
            buckets = bucket_of(pdf["bucket_key"], bounds)
            body = pdf.drop(columns=["bucket_key", *drop])
            for b in np.unique(buckets):
                yield pd.DataFrame({"bucket": [int(b)], "name": [name], "data": [to_ipc(body[buckets == b])]})

    return fn


def _file_envelope(name: str):
    """mapInPandas function for an earlier output read back by Spark: its bucket is in the file name."""

    def fn(batches):
        for pdf in batches:
            buckets = pdf.pop("_file").str.extract(r"part-(\d+)\.parquet")[0].astype("int64").to_numpy()
            for b in np.unique(buckets):
                yield pd.DataFrame({"bucket": [int(b)], "name": [name], "data": [to_ipc(pdf[buckets == b])]})

    return fn


def _run_kernel(kernel: BucketKernel, context: dict, schemas: dict[str, bytes], extra: list[str]):
    """applyInPandas function: one partition's envelopes -> the kernel's outputs as envelopes."""

    def fn(group: pd.DataFrame) -> pd.DataFrame:
        from features.contract import TABLES
        from features.ingest import empty_typed

        bucket = int(group["bucket"].iloc[0])
        blobs = {name: list(rows["data"]) for name, rows in group.groupby("name")}

        def table(name: str) -> pd.DataFrame:
            schema = _schema(schemas[name])
            if name == "links":
                schema = schema.append(pa.field("link_row", pa.int64()))
            if name not in blobs:
                return restore(pa.Table.from_pylist([], schema=schema), schema).drop(columns="link_row", errors="ignore")
            frame = restore(from_ipc(blobs[name]), schema)
            if name == "links":
                frame = frame.sort_values("link_row", kind="stable").drop(columns="link_row").reset_index(drop=True)
            return frame

        tables = {n: table(n) if n in schemas else empty_typed(TABLES[n]) for n in TYPED_TABLES}
        for name in extra:
            frame = from_ipc(blobs[name]).to_pandas() if name in blobs else pd.DataFrame()
            for col in frame.select_dtypes("datetime").columns:  # as pandas reads Parquet back
                frame[col] = frame[col].astype("datetime64[ms]")
            tables[name] = frame
        links = table("links")
        out = kernel(tables, links, {**context, "bucket": bucket})
        return pd.DataFrame({"bucket": bucket, "name": list(out), "data": [to_ipc(f) for f in out.values()]})

    return fn


def _run_group(fn: GroupFunction, key: str):
    def apply(group: pd.DataFrame) -> pd.DataFrame:
        g = int(group[key].iloc[0])
        return pd.DataFrame({"bucket": [g], "name": ["group"], "data": [to_ipc(fn(group))]})

    return apply


class SparkEngine:
    name = "spark"

    def __init__(self, settings: EngineSettings, master: str = "local[2]"):
        from pyspark.sql import SparkSession

        self.settings = settings
        conf = {
            "spark.sql.shuffle.partitions": str(settings.spark_shuffle_partitions),
            "spark.ui.enabled": "false",
            "spark.driver.memory": "2g",
            **settings.spark_conf,
            # what the engine's results rely on: not to be overridden
            "spark.sql.session.timeZone": "UTC",
            "spark.sql.execution.arrow.pyspark.enabled": "true",
            "spark.pyspark.python": sys.executable,
        }
        builder = SparkSession.builder.master(master).appName("waterwatch")
        for key, value in conf.items():
            builder = builder.config(key, value)
        self.spark = builder.getOrCreate()
        self.spark.sparkContext.setLogLevel("ERROR")
        # Python workers run this interpreter (PySpark's default is the python3 on the PATH), so they import
        # the same packages; the UDFs take the executable from the context
        self.spark.sparkContext.pythonExec = sys.executable
        self._partitions: dict[str, object] = {}

    def close(self) -> None:
        self.spark.stop()

    def _read(self, path: Path):
        return self.spark.read.parquet(str(path))

    # -- plan -------------------------------------------------------------------------------
    def plan(self, typed: Path, as_of: pd.Timestamp) -> PartitionPlan:
        from pyspark.sql import functions as F

        ent = self._read(typed / "entities.parquet").where("uscc IS NOT NULL").select("uscc").distinct()
        codes = np.sort(np.asarray([r["uscc"] for r in ent.collect()], dtype=object))
        plan = PartitionPlan.from_codes(codes, self.settings.bucket_entities)
        as_of = pd.Timestamp(as_of)
        firsts = []
        for name in MONTHLY:
            path = typed / f"{name}.parquet"
            if path.exists():
                df = self._read(path).select(F.col("month").cast("timestamp_ntz").alias("m"))
                df = df.where(F.col("m") < F.lit(as_of.to_pydatetime()).cast("timestamp_ntz"))
                row = df.select(F.min(F.year("m") * 12 + F.month("m") - 1).alias("m0")).collect()[0]
                if row["m0"] is not None:
                    firsts.append(int(row["m0"]))
        plan.first_month = min(firsts) if firsts else as_of.year * 12 + as_of.month - 1 - 12
        return plan

    # -- partition --------------------------------------------------------------------------
    def partition(self, typed: Path, links: Path, plan: PartitionPlan, out: Path) -> None:
        """The envelopes of every table (written under ``out``): each row in its entity's partition."""
        from pyspark.sql import functions as F

        if out.exists():
            shutil.rmtree(out)
        spark = self.spark
        link_df = self._read(links).withColumn("link_row", F.monotonically_increasing_id())
        link_df.createOrReplaceTempView("links")
        frames = {"links": (link_df, [])}
        for name in TYPED_TABLES:
            path = typed / f"{name}.parquet"
            if not path.exists():
                continue
            df = self._read(path)
            if name == "abstraction":
                holders = self._read(typed / "permits.parquet").groupBy("permit_id").agg(F.first("uscc").alias("holder"))
                frames[name] = (df.join(holders, "permit_id", "left"), ["holder"])
            elif name in ("supply", "discharge"):
                linked = (spark.table("links").where(f"source = '{name}' AND status = 'linked'")
                          .groupBy("account_id").agg(F.first("uscc").alias("linked_uscc")))
                frames[name] = (df.join(linked, "account_id", "left"), ["linked_uscc"])
            else:
                frames[name] = (df, [])
        envelopes = None
        for name, (df, drop) in frames.items():
            keyed = df.withColumn("bucket_key", F.expr(BUCKET_KEYS[name]).cast("string"))
            env = keyed.mapInPandas(_envelope(name, plan.bounds, drop), ENVELOPE)
            envelopes = env if envelopes is None else envelopes.unionByName(env)
        envelopes.write.parquet(str(out / "envelopes"))

    # -- partitions -------------------------------------------------------------------------
    def map_buckets(self, partitioned: Path, plan: PartitionPlan, kernel: BucketKernel, context: dict, out: Path,
                    typed: Path | None = None, links: Path | None = None, extra: dict[str, Path] | None = None,
                    progress=None) -> list[str]:
        from pyspark.sql import functions as F

        typed = typed or partitioned.parent / "typed"
        links = links or partitioned.parent / "linked" / "linkage.parquet"
        schemas = {n: _schema_bytes(typed_schema(typed / f"{n}.parquet")) for n in TYPED_TABLES if (typed / f"{n}.parquet").exists()}
        schemas["links"] = _schema_bytes(typed_schema(links))
        env = self._read(partitioned / "envelopes")
        for name, folder in (extra or {}).items():
            df = self._read(folder).withColumn("_file", F.input_file_name())
            env = env.unionByName(df.mapInPandas(_file_envelope(name), ENVELOPE))
        result = env.groupBy("bucket").applyInPandas(_run_kernel(kernel, context, schemas, list(extra or {})), ENVELOPE)
        names: set[str] = set()
        for row in result.toLocalIterator():
            write_part(out / f"{row['name']}.parquet", int(row["bucket"]), from_ipc([row["data"]]).to_pandas())
            names.add(row["name"])
        return sorted(names)

    def map_groups(self, source: Path, key: str, fn: GroupFunction, target: Path) -> None:
        if target.exists():
            shutil.rmtree(target)
        rows = self._read(source).groupBy(key).applyInPandas(_run_group(fn, key), ENVELOPE)
        for row in rows.toLocalIterator():
            write_part(target, int(row["bucket"]), from_ipc([row["data"]]).to_pandas())
