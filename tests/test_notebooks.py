"""The two notebooks run top to bottom on a small generated city (jupytext -> nbclient, venv kernel)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"


def _run(name: str, env: dict[str, str], cwd: Path, timeout: int = 240):
    """``name`` executed top to bottom. The kernel is stopped, not asked to exit, once the last cell has answered:
    an interpreter that ran a pipeline spends seconds collecting its garbage on the way out (measured)."""
    import jupytext
    from nbclient import NotebookClient

    nb = jupytext.read(NOTEBOOKS / name)
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the kernel inherits this process's environment
    try:
        NotebookClient(nb, kernel_name="python3", timeout=timeout, resources={"metadata": {"path": str(cwd)}},
                       shutdown_kernel="immediate").execute()
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
                                 "WATERWATCH_NB_TRIALS": "2",
                                 "WATERWATCH_MODEL__BACKTEST_CUTOFFS": "2"}, ROOT)  # as small_city_run
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


def test_jupytext_execute_runs_a_notebook_on_the_project_kernel(tmp_path):
    """What the data scientists' guide says to run: ``jupytext --execute`` (needs nbconvert) on a paired script."""
    import subprocess
    import sys

    import nbformat

    script = tmp_path / "check.py"
    script.write_text(
        "# ---\n# jupyter:\n#   jupytext:\n#     formats: ipynb,py:percent\n#   kernelspec:\n"
        "#     display_name: Python 3\n#     language: python\n#     name: python3\n# ---\n\n"
        "# %%\nimport sys, features\nprint('kernel', sys.executable)\nprint('layers', features.__file__)\n",
        encoding="utf-8")
    jupytext = Path(sys.executable).with_name("jupytext")
    done = subprocess.run([str(jupytext), "--execute", "--to", "ipynb", str(script)], cwd=ROOT,
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    out = _outputs(nbformat.read(tmp_path / "check.ipynb", as_version=4))
    assert f"kernel {sys.executable}" in out or f"kernel {Path(sys.executable).resolve()}" in out
    assert f"layers {ROOT / 'features' / '__init__.py'}" in out


@pytest.mark.slow
def test_make_notebooks_opens_jupyterlab_with_the_project_kernel_and_paired_notebooks(tmp_path):
    import json
    import secrets
    import signal
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    token = secrets.token_hex(16)
    args = f"--no-browser --ServerApp.ip=127.0.0.1 --ServerApp.port={port} --ServerApp.port_retries=0 " \
           f"--IdentityProvider.token={token}"
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")}
    lab = subprocess.Popen(["make", "-s", "notebooks", f"LAB_ARGS={args}"], cwd=ROOT, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)

    def get(path: str):
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}?token={token}", timeout=10) as r:
            return json.loads(r.read())

    try:
        deadline = time.monotonic() + 240
        while True:
            try:
                get("/api/status")
                break
            except OSError:
                if lab.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("JupyterLab did not start:\n" + lab.stdout.read().decode(errors="replace")[-3000:])
                time.sleep(0.5)
        specs = get("/api/kernelspecs")
        spec = specs["kernelspecs"][specs["default"]]["spec"]
        assert spec["display_name"] == "WaterWatch (.venv)"
        assert Path(spec["argv"][0]).resolve() == Path(sys.executable).resolve()
        for name in ("walkthrough.py", "diagnostics.py"):  # the scripts open as notebooks (jupytext)
            model = get(f"/api/contents/{name}")
            assert model["type"] == "notebook" and len(model["content"]["cells"]) > 5
            assert model["content"]["metadata"]["jupytext"]["formats"] == "ipynb,py:percent"
    finally:
        if lab.poll() is None:
            os.killpg(lab.pid, signal.SIGTERM)
            try:
                lab.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(lab.pid, signal.SIGKILL)
