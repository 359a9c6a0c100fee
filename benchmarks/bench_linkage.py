"""Linkage of a 20,000-entity city (about 25,000 supply and sewer accounts).

Target: well under a minute on one or two cores. The drop is ingested in one child
process, the linker runs in another, so the peak RSS printed is the linker's own
(plus reading the typed tables).  .venv/bin/python benchmarks/bench_linkage.py
Without ``synth`` (or with ``--replicate``) the shared sample drop is
replicated into a city of the requested size instead.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import CACHE, ROOT, city

SAMPLE = ROOT.parent / "shared" / "contract" / "sample-city"


def replicated_sample(entities: int) -> Path:
    """The sample drop copied until it has ``entities`` entities; each copy gets its own codes,
    account ids and a copy-specific character in every name, so copies do not collide.
    Account codes are hidden from the linker so that names are matched. Copies share
    addresses and differ by one inserted character, so this is a speed test, not a quality one."""
    import pandas as pd

    from features.uscc import ALPHABET, check_character

    path = CACHE / f"sample-x-{entities}"
    if (path / "entities.csv").exists():
        return path
    path.mkdir(parents=True, exist_ok=True)
    marks = "甲乙丙丁戊己庚辛壬癸子丑寅卯辰巳午未申酉戌亥"
    tables = {p.stem: pd.read_csv(p, dtype=str, keep_default_na=False) for p in SAMPLE.glob("*.csv") if p.stem != "truth"}
    copies = -(-entities // len(tables["entities"]))

    def recode(codes: pd.Series, i: int) -> pd.Series:
        ok = codes.str.len() == 18
        body = codes.str.slice(0, 9) + ALPHABET[i % 31] + codes.str.slice(10, 17)
        return codes.where(~ok, body + body.map(lambda b: check_character(b) if all(c in ALPHABET for c in b) else "0"))

    out = {name: [] for name in tables}
    for i in range(copies):
        for name, frame in tables.items():
            f = frame.copy()
            if "uscc" in f.columns:
                f["uscc"] = recode(f["uscc"], i)
            for col in ("name", "account_name", "holder_name", "project_name"):
                if col in f.columns and i:
                    f[col] = f[col].str.slice(0, 4) + marks[i % len(marks)] + f[col].str.slice(4)
            for col in ("account_id", "permit_id", "meter_id", "project_id", "inspection_id"):
                if col in f.columns:
                    f[col] = f[col] + f"-{i}"
            out[name].append(f)
    for name, frames in out.items():
        frame = pd.concat(frames, ignore_index=True)
        if name in ("supply", "discharge"):
            frame["uscc"] = ""
        frame.to_csv(path / f"{name}.csv", index=False)
    return path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entities", type=int, default=20_000)
    parser.add_argument("--replicate", action="store_true", help="use the replicated sample even if synth exists")
    args = parser.parse_args()
    try:
        if args.replicate:
            raise ImportError
        drop, kind = city(args.entities), "generated city"
    except ImportError:
        drop, kind = replicated_sample(args.entities), "replicated sample"
    ws = tempfile.mkdtemp()
    prelude = f"import sys; sys.path.insert(0, {str(ROOT)!r})\nfrom features.workspace import Workspace\n"
    subprocess.run(
        [sys.executable, "-c", prelude + f"from features.ingest import ingest; ingest({str(drop)!r}, Workspace({ws!r}))"],
        check=True,
    )
    truth = drop / "link_truth.csv"
    code = prelude + f"""
import resource, time
import pandas as pd
from features.linkage import link_accounts, linkage_metrics
from waterwatch.settings import LinkageSettings
t = Workspace({ws!r}).typed_tables()
tables_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
start = time.perf_counter()
links = link_accounts(t['entities'], t['supply'], t['discharge'], LinkageSettings())
elapsed = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(f"linkage ({kind}): {{len(t['entities']):,}} entities, {{len(links):,}} accounts in {{elapsed:.1f}} s, "
      f"peak RSS {{peak:.0f}} MB ({{tables_mb:.0f}} MB after reading the typed tables; target: well under 60 s)")
print(links['status'].value_counts().to_dict())
if {truth.exists() and kind == "generated city"!r}:  # replicated copies are a speed test only
    m = linkage_metrics(links, pd.read_csv({str(truth)!r}, dtype=str, keep_default_na=False))
    print(f"precision={{m['precision']:.4f}} recall={{m['recall']:.4f}} shared {{m['shared_recognised']}}/{{m['shared_true']}}")
"""
    subprocess.run([sys.executable, "-c", code], check=True)


if __name__ == "__main__":
    main()
