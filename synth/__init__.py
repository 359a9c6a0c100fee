"""Our own city generator: contract-conformant department drops with planted violations and their truth.

Not a production package: the platform never imports it. `waterwatch synth`, the
tests, the benchmarks and the notebooks use it to make cities to measure on.

Modelled on how the departments' data really look, so that the platform can be
measured on cities it has never seen: the registry (市场监管) writes full
names; the water company's and the drainage company's clerks write short
names, branch suffixes, old names and typos, and fill the uscc for only part
of the accounts; water use has industry scale, seasonality, growth and
decline; discharge is a coefficient of total use, estimated for some accounts
and swollen by rain for combined sewers. Violations leave the trace they
leave in reality (``synth.violations``), next to confounders that make naive rules fail.

Stages, one module each, run in this order by ``synth.city.build_city``:
registry -> water_use -> permits (lines) -> violations (who) -> water_use (volumes)
-> projects -> accounts (+ clerks) -> billing -> permits (tables, meters) -> tax (+ plans)
-> inspections (+ truth); ``synth.writing`` writes the drop.
A city is made block by block (``SynthConfig.block_entities`` entities at a time), each block as
whole (entity x month) matrices, and written as it is made: memory follows the block, not the city
(``synth.city``). ``synth.province`` writes several cities into one drop, one sub-folder each.
"""

from synth.city import City, build_city
from synth.config import DEFAULT_MIX, Confounders, SynthConfig
from synth.province import generate_province
from synth.writing import generate_city

__all__ = ["City", "Confounders", "DEFAULT_MIX", "SynthConfig", "build_city", "generate_city", "generate_province"]
