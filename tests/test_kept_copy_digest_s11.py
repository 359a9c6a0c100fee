"""A kept copy of a scored model is named by a digest of its bytes (``training.artifacts.scored_name``); the service
does not unpickle a file under that name whose bytes are something else (replaced or corrupted after it was kept)."""

from __future__ import annotations

import joblib

from serving.runtime import load_champion
from training.artifacts import load_bundle, scored_name


def _kept(tmp_path, small_city_run):
    champion = small_city_run / "out" / "workspace" / "models" / "champion.joblib"
    data = champion.read_bytes()
    bundle = load_bundle(champion, data)
    path = tmp_path / "models" / "scored" / scored_name(bundle.version, data)
    path.parent.mkdir(parents=True)
    path.write_bytes(data)
    return path, bundle


def test_a_kept_copy_whose_bytes_match_its_name_loads(tmp_path, small_city_run):
    path, bundle = _kept(tmp_path, small_city_run)
    loaded, problem = load_champion({"artifact": str(path)})
    assert problem is None and loaded.version == bundle.version


class _Planted:
    def __reduce__(self):  # what a planted pickle could run on load
        return (exec, ("import pathlib; pathlib.Path(__file__).touch()",))


def test_a_kept_copy_replaced_after_it_was_kept_is_not_unpickled(tmp_path, small_city_run):
    path, _ = _kept(tmp_path, small_city_run)
    marker = tmp_path / "ran"
    joblib.dump(_Planted(), path)  # another object under the kept name
    path.write_bytes(path.read_bytes().replace(b"__file__", repr(str(marker)).encode()))
    loaded, problem = load_champion({"artifact": str(path)})
    assert loaded is None and "digest" in problem and not marker.exists()
    # an old run's champion.joblib (no digest in its name) is loaded as before
    plain = tmp_path / "champion.joblib"
    plain.write_bytes((small_city_run / "out" / "workspace" / "models" / "champion.joblib").read_bytes())
    assert load_champion({"artifact": str(plain)})[1] is None
