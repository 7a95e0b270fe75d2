"""Model artifacts: skops / safetensors round trips, and every way a file is refused."""

from __future__ import annotations

import hashlib
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import skops.io
from sklearn.base import BaseEstimator
from sklearn.linear_model import LogisticRegression

from workbench.errors import WorkbenchError
from workbench.training.artifacts import ArtifactIntegrityError, is_trusted_type, load_model, save_model
from workbench.training.models import make_model

CLASSES = ["ham", "spam", "unused"]


def _data(n: int = 60, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = np.array(["ham", "spam"])[np.arange(n) % 2]
    X = rng.random((n, 5)).astype(np.float32) + (y == "spam")[:, None] * 0.5
    return X, y


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class ExplodingPayload:
    """Unpickling this touches a marker file: proof that a loader ran pickle."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


class NotAWorkbenchModel(BaseEstimator):
    """A class outside the allow-list, as an attacker's skops file would name."""

    def __init__(self, payload: str = "x") -> None:
        self.payload = payload


@pytest.mark.parametrize(
    ("config", "dense", "suffix"),
    [
        ({"type": "logreg"}, True, ".skops"),
        ({"type": "committee", "size": 5}, False, ".skops"),
        (
            {"type": "committee", "members": [{"type": "logreg"}, {"type": "random_forest", "n_estimators": 10}]},
            True,
            ".skops",
        ),
        ({"type": "mlp", "epochs": 2, "hidden": 8}, True, ".safetensors"),
    ],
)
def test_round_trip_gives_the_same_predictions(tmp_path, config, dense, suffix):
    X, y = _data()
    X = X if dense else sp.csr_matrix(X / np.linalg.norm(X, axis=1, keepdims=True))  # TF-IDF-like rows
    model = make_model(config, 0, CLASSES).fit(X, y)
    relative_path, sha256 = save_model(model, tmp_path / "run-1")
    stored = tmp_path / "run-1" / relative_path
    assert relative_path.endswith(suffix) and sha256 == _sha256(stored)
    assert relative_path == f"model-{sha256[:16]}{suffix}"
    assert os.listdir(tmp_path / "run-1") == [relative_path]  # no temporary file left behind
    loaded = load_model(relative_path, sha256, root=tmp_path / "run-1")
    assert type(loaded) is type(model)
    assert list(loaded.classes_) == CLASSES
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    assert load_model(f"run-1/{relative_path}", sha256, root=tmp_path) is not None


def test_no_pickle_in_any_written_file(tmp_path):
    X, y = _data()
    for config in ({"type": "logreg"}, {"type": "mlp", "epochs": 1, "hidden": 4}):
        relative_path, _ = save_model(make_model(config, 0, CLASSES).fit(X, y), tmp_path)
        with pytest.raises(pickle.UnpicklingError):
            pickle.loads((tmp_path / relative_path).read_bytes())


def test_a_tampered_file_is_refused_before_it_is_parsed(tmp_path, monkeypatch):
    X, y = _data()
    relative_path, sha256 = save_model(make_model({}, 0, CLASSES).fit(X, y), tmp_path)
    path = tmp_path / relative_path
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))

    def must_not_parse(*args, **kwargs):
        raise AssertionError("the file was parsed before its hash was checked")

    monkeypatch.setattr(skops.io, "get_untrusted_types", must_not_parse)
    monkeypatch.setattr(skops.io, "loads", must_not_parse)
    with pytest.raises(ArtifactIntegrityError, match="sha256"):
        load_model(relative_path, sha256, root=tmp_path)


def test_a_wrong_expected_hash_is_refused(tmp_path):
    X, y = _data()
    model = make_model({"type": "mlp", "epochs": 1, "hidden": 4}, 0, CLASSES).fit(X, y)
    relative_path, sha256 = save_model(model, tmp_path)
    with pytest.raises(ArtifactIntegrityError, match="refusing"):
        load_model(relative_path, "0" * 64, root=tmp_path)
    assert issubclass(ArtifactIntegrityError, WorkbenchError)


def test_paths_outside_the_root_and_missing_files_are_refused(tmp_path):
    X, y = _data()
    root = tmp_path / "artifacts"
    relative_path, sha256 = save_model(make_model({}, 0, CLASSES).fit(X, y), tmp_path / "elsewhere")
    with pytest.raises(ArtifactIntegrityError, match="outside"):
        load_model(f"../elsewhere/{relative_path}", sha256, root=root)
    with pytest.raises(ArtifactIntegrityError, match="outside"):
        load_model(tmp_path / "elsewhere" / relative_path, sha256, root=root)
    root.mkdir()
    (root / "link.skops").symlink_to(tmp_path / "elsewhere" / relative_path)
    with pytest.raises(ArtifactIntegrityError, match="outside"):
        load_model("link.skops", sha256, root=root)
    with pytest.raises(ArtifactIntegrityError, match="cannot be read"):
        load_model("model-missing.skops", sha256, root=root)


def test_a_pickle_file_is_never_unpickled(tmp_path):
    marker = tmp_path / "pickle-ran"
    payload = pickle.dumps(ExplodingPayload(marker))
    for name in ("model-evil.skops", "model-evil.safetensors", "model-evil.pkl"):
        (tmp_path / name).write_bytes(payload)
        with pytest.raises(ArtifactIntegrityError):
            load_model(name, hashlib.sha256(payload).hexdigest(), root=tmp_path)
    assert not marker.exists()


def test_a_skops_file_naming_an_unlisted_type_is_refused(tmp_path):
    payload = skops.io.dumps(NotAWorkbenchModel())
    (tmp_path / "model-x.skops").write_bytes(payload)
    with pytest.raises(ArtifactIntegrityError, match="NotAWorkbenchModel"):
        load_model("model-x.skops", hashlib.sha256(payload).hexdigest(), root=tmp_path)


def test_a_skops_file_of_a_foreign_sklearn_model_is_refused(tmp_path):
    X, y = _data()
    payload = skops.io.dumps(LogisticRegression().fit(X, y))
    (tmp_path / "model-y.skops").write_bytes(payload)
    with pytest.raises(ArtifactIntegrityError, match="not a workbench model"):
        load_model("model-y.skops", hashlib.sha256(payload).hexdigest(), root=tmp_path)


def test_a_safetensors_file_without_the_workbench_config_is_refused(tmp_path):
    from safetensors.numpy import save

    payload = save({"input.weight": np.zeros((2, 2), dtype=np.float32)})
    (tmp_path / "model-z.safetensors").write_bytes(payload)
    with pytest.raises(ArtifactIntegrityError, match="not a workbench MLP"):
        load_model("model-z.safetensors", hashlib.sha256(payload).hexdigest(), root=tmp_path)


def test_trusted_types_are_model_classes_and_library_classes_only():
    assert is_trusted_type("workbench.training.models.CommitteeClassifier")
    assert is_trusted_type("sklearn.tree._tree.Tree")
    assert is_trusted_type("numpy.float64")
    assert not is_trusted_type("numpy.load")  # a function, not a class
    assert not is_trusted_type("builtins.eval")
    assert not is_trusted_type("os.system")
    assert not is_trusted_type("workbench.training.models.make_model")
    assert not is_trusted_type("sklearn.no_such_module.Thing")


def test_saving_an_unsupported_object_is_refused(tmp_path):
    with pytest.raises(TypeError, match="cannot store"):
        save_model(LogisticRegression(), tmp_path)
