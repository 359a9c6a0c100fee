"""The two notebooks run top to bottom on a small generated city (jupytext -> nbclient, venv kernel)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"


def _run(name: str, env: dict[str, str], cwd: Path, timeout: int = 240):
    import jupytext
    from nbclient import NotebookClient

    nb = jupytext.read(NOTEBOOKS / name)
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the kernel inherits this process's environment
    try:
        NotebookClient(nb, kernel_name="python3", timeout=timeout, resources={"metadata": {"path": str(cwd)}}).execute()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return nb


def _outputs(nb) -> str:
    text = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            text.append(out.get("text", "") or str(out.get("data", {}).get("text/plain", "")))
    return "\n".join(text)


@pytest.mark.slow
def test_walkthrough_then_diagnostics_run_on_a_small_city(tmp_path):
    pytest.importorskip("synth")
    pytest.importorskip("models")
    work = tmp_path / "nb"
    nb = _run("walkthrough.py", {"WATERWATCH_NB_WORK": str(work), "WATERWATCH_NB_ENTITIES": "800",
                                 "WATERWATCH_NB_TRIALS": "2"}, ROOT)
    out = _outputs(nb)
    assert "promoted: True" in out  # the first version of a fresh registry becomes champion
    assert (work / "workspace" / "models" / "champion.joblib").exists()
    assert (work / "workspace" / "models" / "backtest.html").exists()

    nb = _run("diagnostics.py", {"WATERWATCH_NB_WORKSPACE": str(work / "workspace"),
                                 "WATERWATCH_NB_HOME": str(work / "var")}, ROOT)
    out = _outputs(nb)
    assert "entities scored with model version" in out
    images = sum(1 for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {}))
    assert images >= 1
