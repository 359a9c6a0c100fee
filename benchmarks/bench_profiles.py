"""Monthly profiles and the entity snapshot of a 20,000-entity, 36-month city (720,000 profile rows).

Target: build_profiles + entity_snapshot under 60 s and under 3 GB peak memory.
Ingest and linkage run in one child process; the profiles run in another, so the
peak RSS printed is the profiles' own (plus reading the typed tables and links).
    .venv/bin/python benchmarks/bench_profiles.py [--entities N] [--replicate]
Without ``synth.generate_city`` (or with ``--replicate``) the shared sample
drop is replicated into a city of the requested size instead.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile

from _common import ROOT, city


def drop_for(entities: int, replicate: bool):
    if not replicate:
        try:
            return city(entities), "generated city"
        except ImportError:
            pass
    from bench_linkage import replicated_sample

    return replicated_sample(entities), "replicated sample"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entities", type=int, default=20_000)
    parser.add_argument("--replicate", action="store_true", help="use the replicated sample even if synth exists")
    args = parser.parse_args()
    drop, kind = drop_for(args.entities, args.replicate)
    ws = tempfile.mkdtemp()
    prelude = f"import sys; sys.path.insert(0, {str(ROOT)!r})\nfrom features.workspace import Workspace\n"
    prepare = prelude + f"""
from features.ingest import ingest
from features.linkage import link_accounts
from waterwatch.settings import LinkageSettings
w = Workspace({ws!r}); ingest({str(drop)!r}, w); t = w.typed_tables()
w.write('links', 'links', link_accounts(t['entities'], t['supply'], t['discharge'], LinkageSettings()))
"""
    try:
        subprocess.run([sys.executable, "-c", prepare], check=True)
    except subprocess.CalledProcessError:
        shutil.rmtree(ws, ignore_errors=True)
        raise
    measure = prelude + f"""
import resource, time
from features.profiles import build_profiles, entity_snapshot
w = Workspace({ws!r}); t = w.typed_tables(); links = w.read('links', 'links'); as_of = w.as_of()
loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
start = time.perf_counter()
profiles = build_profiles(t, links, as_of)
mid = time.perf_counter()
snap = entity_snapshot(profiles, t, as_of)
end = time.perf_counter()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(f"profiles ({kind}): {{profiles['uscc'].nunique():,}} entities x {{profiles['month'].nunique()}} months = "
      f"{{len(profiles):,}} rows x {{profiles.shape[1]}} columns in {{mid - start:.1f}} s; "
      f"snapshot {{snap.shape[0]:,}} x {{snap.shape[1]}} in {{end - mid:.1f}} s; "
      f"total {{end - start:.1f}} s, peak RSS {{peak:.0f}} MB of which {{loaded:.0f}} MB the loaded tables "
      f"(targets: < 60 s, < 3072 MB)")
"""
    try:
        subprocess.run([sys.executable, "-c", measure], check=True)
    finally:
        shutil.rmtree(ws, ignore_errors=True)


if __name__ == "__main__":
    main()
