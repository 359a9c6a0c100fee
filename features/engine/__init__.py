"""The engine layer: the relational part of a run (typing, attributing account volumes to entities,
partitioning by entity, global aggregates) on an engine that streams and spills, and the same
per-entity definitions (``features.profiles``, ``features.snapshot``, ``models.rules``) applied to
each partition of entities.

Two engines share one interface (``Engine``):

- ``embedded`` (default): DuckDB in the process, spilling to the workspace's temp folder;
- ``spark``: Apache Spark (PySpark) at a master URL (``local[2]`` or a cluster).

Neither engine holds a definition of a feature or a check: they partition the typed tables by
entity (``buckets``), hand each partition as pandas frames to a kernel the composition root gives
them, and run group-wise reductions (the industry peer statistics) with functions of
``features.compliance``. See README "Province scale" for why.
"""

from __future__ import annotations

from features.engine.base import BucketKernel, Engine, EngineSettings, PartitionPlan

ENGINES = ("embedded", "spark")


def open_engine(name: str, settings: EngineSettings | None = None, spark_master: str | None = None) -> Engine:
    """The engine called ``name`` (``embedded`` or ``duckdb``, or ``spark``)."""
    settings = settings or EngineSettings()
    if name in ("embedded", "duckdb"):
        from features.engine.embedded import EmbeddedEngine

        return EmbeddedEngine(settings)
    if name == "spark":
        from features.engine.spark import SparkEngine

        return SparkEngine(settings, master=spark_master or "local[2]")
    raise ValueError(f"unknown engine {name!r}: choose one of {', '.join(ENGINES)}")


__all__ = ["BucketKernel", "Engine", "EngineSettings", "PartitionPlan", "open_engine", "ENGINES"]
