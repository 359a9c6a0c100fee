"""README against the code it describes, so the two cannot drift apart unnoticed: every `waterwatch` command and
option README tells a user to type is in the CLI; every environment variable and settings name it gives is a
field of the settings (and a default it states is the field's default); every endpoint it names is a route of
the service; the files it says a run writes are the ones the pipeline and a province run write; every
repository path, module, benchmark option and document section it points to exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer.main
from pydantic import BaseModel
from starlette.routing import Match

from conftest import SHARED

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
_PROSE = re.sub(r"```.*?```", "", README, flags=re.S)
SPANS = re.findall(r"`([^`]+)`", _PROSE)  # inline code, a span broken over two lines included
BLOCK_LINES = [line.split(" #")[0] for block in re.findall(r"```[a-z]*\n(.*?)```", README, flags=re.S)
               for line in block.splitlines()]


def _commands() -> dict:
    from waterwatch.cli import app

    return typer.main.get_command(app).commands


def _options(command) -> set[str]:
    return {o for p in command.params for o in (*p.opts, *p.secondary_opts)}


def _cli_mentions() -> list[tuple[str, str]]:
    """(what README tells a user to type, the text it was found in): `waterwatch CMD [SUB] --opt ...` in code spans
    and code blocks, and spans that start with a command and give its options (`train --labels`)."""
    commands = _commands()
    found = []
    for text in [s.replace("\n", " ") for s in SPANS] + BLOCK_LINES:
        for m in re.finditer(r"\bwaterwatch ([a-z][a-z-]*.*?)(?=\bwaterwatch |$)", text):
            found.append((m.group(1).strip(), text))
        first = text.split(" ")[0]
        if "waterwatch" not in text and first in commands and "--" in text:
            found.append((text, text))
    return found


def test_every_waterwatch_command_and_option_in_readme_is_in_the_cli():
    commands = _commands()
    problems, checked = [], set()
    for typed, where in _cli_mentions():
        words = typed.split()
        command = commands.get(words[0])
        if command is None:
            problems.append(f"no command {words[0]!r}: {where}")
            continue
        rest = words[1:]
        if hasattr(command, "commands"):  # a group (`users`): its subcommands, or a list of them (`list | add | ...`)
            names = re.findall(r"[a-z][a-z-]*", " ".join(rest).split("--")[0]) if "|" in typed else rest[:1]
            subs = [command.commands.get(n) for n in names]
            problems += [f"no command 'waterwatch {words[0]} {n}': {where}" for n, s in zip(names, subs) if s is None]
            command = subs[0] if len(subs) == 1 else None
            rest = rest[1:]
        if command is None:
            continue
        for option in re.findall(r"(?<![\w-])--[a-z][a-z-]*", " ".join(rest)):
            checked.add((command.name, option))
            if option not in _options(command):
                problems.append(f"'{command.name}' has no option {option}: {where}")
    assert problems == []
    assert len(checked) >= 20, checked  # the parser still finds README's commands


def _field(model: type[BaseModel], parts: list[str]):
    """The pydantic field a settings path names (``["rules", "quota_red"]``), or None."""
    field = model.model_fields.get(parts[0].lower())
    if field is None or len(parts) == 1:
        return field
    inner = field.annotation
    return _field(inner, parts[1:]) if isinstance(inner, type) and issubclass(inner, BaseModel) else None


def _default(field):
    return field.default_factory() if field.default_factory is not None else field.default


def _stated_number(after: str):
    """The default README states right after a setting's name (`` (default 20,000)``, ``, 1 MiB``), or None."""
    m = re.match(r"\s*[(,]\s*(?:default\s+)?(\d[\d,]*(?:\.\d+)?)\s*(MiB|GB|s\b)?", after)
    if not m:
        return None
    number = float(m.group(1).replace(",", ""))
    unit = m.group(2)
    if unit == "MiB":
        return int(number) << 20
    if unit == "GB":
        return f"{number:g}GB"
    return number


def _setting_mentions() -> list[tuple[str, list[str], str]]:
    """(name as README writes it, settings path, text right after it) for each environment variable README gives
    (in prose or in a command) and each ``section.field`` name; ``…__FIELD`` is in the section of the variable
    before it."""
    from waterwatch.settings import Settings

    sections = {name for name, f in Settings.model_fields.items()
                if isinstance(f.annotation, type) and issubclass(f.annotation, BaseModel)}
    found, section = [], []
    for m in re.finditer(r"(?P<env>WATERWATCH_[A-Z0-9_]+)(?P<value>=[^`\s]*)?`?|`(?P<rel>…__[A-Z0-9_]+)`"
                         r"|`(?P<dotted>(?P<section>[a-z]+)\.[a-z_]+)`", README):
        after = "" if m.group("value") else README[m.end():m.end() + 40]  # `NAME=value` is an example
        if m.group("env"):
            name = m.group("env")
            path = name[len("WATERWATCH_"):].split("__")
            section = path[:-1]
        elif m.group("rel"):
            name = m.group("rel")
            path = section + [name[3:]]
        elif m.group("section") in sections and not re.search(r"\.(csv|json|jsonl|parquet|html|joblib|py|md)$",
                                                               m.group("dotted")):
            name = m.group("dotted")
            path = name.split(".")
        else:
            continue  # a module path (`features.compliance.peer_statistics`) or a file, not a setting
        found.append((name, path, after))
    return found


def test_every_setting_readme_names_is_a_settings_field_with_the_default_it_states():
    from waterwatch.settings import Settings

    test_sources = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "tests").glob("*.py")
                             if p.name != Path(__file__).name)
    problems, defaults = [], []
    for name, path, after in _setting_mentions():
        field = _field(Settings, path)
        if field is None:
            if name.startswith("WATERWATCH_") and f'"{name}"' in test_sources:
                continue  # a variable the tests read (WATERWATCH_TEST_POSTGRES_URL), not a setting
            problems.append(f"{name}: no such setting")
            continue
        stated = _stated_number(after)
        if stated is not None:
            defaults.append(name)
            if stated != _default(field):
                problems.append(f"{name}: README says {stated!r}, the default is {_default(field)!r}")
    aliases = {f.validation_alias for f in Settings.model_fields.values()}
    problems += [f"{n}: not read by the settings" for n in set(re.findall(r"`(MLFLOW_[A-Z_]+)`", README))
                 if n not in aliases]
    assert problems == []
    assert len(defaults) >= 8, defaults  # the defaults README states beside the names are still compared


def _endpoint_mentions() -> list[tuple[set[str], str]]:
    """({methods}, path) for every endpoint README names: `GET /api/v1/...`, curl's URLs, and `/page` spans."""
    found = [({m}, p) for m, p in re.findall(r"\b(GET|POST|PUT|PATCH|DELETE) (/[^\s`,;)]*)", README)]
    found += [({"GET", "POST"}, p) for p in re.findall(r"https?://127\.0\.0\.1:\d+(/[^\s`'\"]*)", README)]
    found += [({"GET"}, s) for s in SPANS if re.fullmatch(r"/[\w/{}.-]*", s)]
    return found


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    from waterwatch.settings import Settings
    from waterwatch.service import build_app

    return build_app(Settings(home=tmp_path_factory.mktemp("readme"), show_progress=False))


def test_every_endpoint_readme_names_is_a_route(app):
    def routed(method: str, path: str) -> bool:
        scope = {"type": "http", "method": method, "path": path, "root_path": "", "query_string": b"", "headers": []}
        return any(route.matches(scope)[0] == Match.FULL for route in app.router.routes)

    mentions = _endpoint_mentions()
    problems = []
    for methods, path in mentions:
        concrete = re.sub(r"\{[^}]+\}", "1", path.split("?")[0])
        if concrete == "/api/v1":  # the prefix itself
            continue
        # README also writes API paths without the prefix (`POST /scores/batch`, `/alerts`)
        if not any(routed(m, p) for m in methods for p in (concrete, "/api/v1" + concrete)):
            problems.append(f"{'/'.join(sorted(methods))} {path}")
    assert problems == []
    assert len(mentions) >= 30, mentions
    assert not routed("GET", "/no-such-page")  # the matching can tell a route from none


def _cells(heading: str) -> list[list[str]]:
    """The rows of the README table whose header row starts with ``heading``, as lists of cells."""
    lines = README.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(heading))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip("|").split("|")])
    return rows


def _file_names(text: str) -> set[str]:
    return set(re.findall(r"`([\w.]+\.(?:csv|json|parquet|html))`", text))


def test_the_files_readme_says_a_run_writes_are_the_ones_it_writes():
    from waterwatch.pipeline import OUTPUT_FILES
    from waterwatch.province import CITY_OUTPUTS

    written = set().union(*(_file_names(row[2]) for row in _cells("| stage | command |")))
    assert written == set(OUTPUT_FILES)
    # a province run's city folder: the stage outputs, plus what run_province writes itself (the city's
    # ingest_summary.json, its slice of the province's leads.csv and its model.json)
    city = re.search(r"into `OUT/cities/<city>/` \((.*?)\)", README, flags=re.S).group(1)
    assert _file_names(city) == set(CITY_OUTPUTS) | {"ingest_summary.json", "leads.csv", "model.json"}


_TOP = ("features/", "models/", "training/", "serving/", "waterwatch/", "synth/", "notebooks/", "benchmarks/",
        "docs/", "tests/", ".ci/", "../shared/")


def _slug(heading: str) -> str:
    return re.sub(r"\s", "-", re.sub(r"[^\w\s-]", "", heading.strip().lower()))


def test_every_path_module_benchmark_option_and_section_readme_points_to_exists():
    problems = []
    # a repository's path, not a run's (`models/model.json` is the workspace's)
    paths = {s for s in SPANS if re.fullmatch(r"[\w./-]+(?:\.py|\.md|\.png|/)|\.ci/run", s) and s.startswith(_TOP)}
    for path in paths:
        if path.startswith("../shared/") and not SHARED.exists():
            continue
        if not (ROOT / path).exists():
            problems.append(f"no {path}")
    # the modules of "Where things live", each in its package
    for cells in _cells("| package | layer |"):
        package = ROOT / cells[0].strip("`")
        for name in re.findall(r"`([\w/]+(?:\.py|/))`", cells[1]):
            if name.startswith(_TOP):
                continue
            if not any(p.as_posix().endswith(name.rstrip("/")) for p in package.rglob(Path(name).name)):
                problems.append(f"no {name} in {package.name}/")
    # benchmark scripts, and the options README gives them
    for text in SPANS + BLOCK_LINES:
        for script, options in re.findall(r"\b((?:bench|eval)_\w+\.py)((?:\s+\[?--[\w-]+[^`\]]*\]?)*)", text):
            source = ROOT / "benchmarks" / script
            if not source.exists():
                problems.append(f"no benchmarks/{script}")
                continue
            code = source.read_text(encoding="utf-8")
            problems += [f"{script} has no {o}" for o in re.findall(r"--[a-z][\w-]*", options) if f'"{o}"' not in code]
    # links into the docs and their sections
    for target, anchor in re.findall(r"\]\(((?:docs|tests)/[^)#]+)(?:#([^)]+))?\)", README):
        doc = ROOT / target
        if not doc.exists():
            problems.append(f"no {target}")
        elif anchor and anchor not in {_slug(h) for h in re.findall(r"^#+ (.+)$", doc.read_text(encoding="utf-8"),
                                                                        flags=re.M)}:
            problems.append(f"no section #{anchor} in {target}")
    assert problems == []
    assert len(paths) >= 30, paths

