"""The file side of the model registry: save a fitted model, load it back only if it is intact.

Formats (no pickle anywhere):

- scikit-learn based models (logistic regression, naive Bayes / random forest adapters, and a
  committee of those, members included) are one skops file, ``model-<sha16>.skops``;
- the torch MLP is one safetensors file, ``model-<sha16>.safetensors``: its weights as tensors,
  and its JSON config (hyper-parameters, labels, input width) in the safetensors header
  metadata under ``"workbench_model"``. One file per model means one sha256 covers everything.

``<sha16>`` is the start of the file's sha256, so saving the same bytes twice gives one file.
Files are written under a temporary name in the target directory and moved into place with
``os.replace``, so a reader never sees half a model.

:func:`load_model` reads the file once, checks its sha256 against the one the database holds,
and parses those same bytes only when they match. A skops file is loaded with an explicit
trusted-type list: the types ``skops.io.get_untrusted_types`` reports, each of which must be a
model class of :mod:`workbench.training.models` or a class defined in scikit-learn or NumPy.
"""

from __future__ import annotations

import hashlib
import hmac
import importlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from workbench.errors import WorkbenchError
from workbench.training.models import (
    CommitteeClassifier,
    LabelSetAdapter,
    LogisticRegressionClassifier,
    TorchMLPClassifier,
)

SKOPS_SUFFIX = ".skops"
SAFETENSORS_SUFFIX = ".safetensors"
MLP_METADATA_KEY = "workbench_model"
MLP_FORMAT = "workbench.torch_mlp/1"

SKOPS_MODEL_TYPES = (LogisticRegressionClassifier, LabelSetAdapter, CommitteeClassifier)
"""Model classes stored as skops files."""

TRUSTED_TYPE_PACKAGES = frozenset({"sklearn", "numpy"})
"""Packages whose classes a skops file may name besides :data:`SKOPS_MODEL_TYPES`."""

_MLP_TENSOR_NAMES = ("input.weight", "input.bias", "output.weight", "output.bias")


class ArtifactIntegrityError(WorkbenchError):
    """A model file is missing, outside the artifact root, altered, or not one the workbench writes."""


def save_model(model: BaseEstimator, directory: Path | str) -> tuple[str, str]:
    """Write a fitted model into ``directory``.

    Returns
    -------
    relative_path : str
        The file's path relative to ``directory`` (load it with ``root=directory``).
    sha256 : str
        Hex sha256 of the file, to store with the model run.
    """
    if isinstance(model, TorchMLPClassifier):
        check_is_fitted(model, "coefs_")
        payload, suffix = _mlp_to_safetensors(model), SAFETENSORS_SUFFIX
    elif isinstance(model, SKOPS_MODEL_TYPES):
        import skops.io

        check_is_fitted(model, "classes_")
        payload, suffix = skops.io.dumps(model), SKOPS_SUFFIX
    else:
        raise TypeError(f"cannot store a {type(model).__name__}; make it with workbench.training.models.make_model")
    digest = hashlib.sha256(payload).hexdigest()
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    name = f"model-{digest[:16]}{suffix}"
    _write_atomically(directory / name, payload)
    return name, digest


def load_model(path: Path | str, expected_sha256: str, *, root: Path | str) -> BaseEstimator:
    """Load a model written by :func:`save_model`, after checking where it is and what it holds.

    Parameters
    ----------
    path : path
        Relative to ``root`` (an absolute path is accepted when it lies inside ``root``).
    expected_sha256 : str
        The hex sha256 recorded when the model was saved.
    root : path
        The artifact directory; the resolved file (symlinks followed) must be inside it.

    Raises
    ------
    ArtifactIntegrityError
        The path leaves ``root``, the file is missing or of an unknown kind, its sha256 differs
        (checked before any parsing), or its content names a type outside the allow-list.
    """
    root = Path(root).resolve()
    file_path = (root / path).resolve()
    if not file_path.is_relative_to(root):
        raise ArtifactIntegrityError(f"model path {str(path)!r} is outside the artifact directory")
    if file_path.suffix not in (SKOPS_SUFFIX, SAFETENSORS_SUFFIX):
        raise ArtifactIntegrityError(f"model file {str(path)!r} is not a .skops or .safetensors file")
    try:
        payload = file_path.read_bytes()
    except OSError as error:
        raise ArtifactIntegrityError(f"model file {str(path)!r} cannot be read: {error.strerror}") from error
    actual_sha256 = hashlib.sha256(payload).hexdigest()
    if not hmac.compare_digest(actual_sha256, expected_sha256.strip().lower()):
        raise ArtifactIntegrityError(
            f"model file {str(path)!r} has sha256 {actual_sha256}, expected {expected_sha256}: refusing to load it"
        )
    if file_path.suffix == SKOPS_SUFFIX:
        return _skops_model(payload, str(path))
    return _mlp_from_safetensors(payload, str(path))


def _write_atomically(final: Path, payload: bytes) -> None:
    descriptor, temporary = tempfile.mkstemp(dir=final.parent, prefix=f".{final.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, final)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _type_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def is_trusted_type(name: str) -> bool:
    """Whether a skops file may construct the type ``name`` (``module.QualifiedName``).

    Trusted: the model classes of :data:`SKOPS_MODEL_TYPES`, and names in the packages of
    :data:`TRUSTED_TYPE_PACKAGES` that resolve to a class (not a function) defined there.
    """
    if name in {_type_name(cls) for cls in SKOPS_MODEL_TYPES}:
        return True
    module_name, _, attribute = name.rpartition(".")
    if _package(module_name) not in TRUSTED_TYPE_PACKAGES:
        return False
    try:
        resolved = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError):
        return False
    return isinstance(resolved, type) and _package(resolved.__module__) in TRUSTED_TYPE_PACKAGES


def _package(module_name: str) -> str:
    return module_name.partition(".")[0]


def _skops_model(payload: bytes, shown_path: str) -> BaseEstimator:
    import skops.io

    try:
        untrusted = skops.io.get_untrusted_types(data=payload)
    except Exception as error:  # any parse failure: not a skops archive we wrote
        raise ArtifactIntegrityError(f"model file {shown_path!r} is not a valid skops file: {error}") from error
    refused = sorted(name for name in untrusted if not is_trusted_type(name))
    if refused:
        raise ArtifactIntegrityError(f"model file {shown_path!r} names types outside the allow-list: {refused}")
    model = skops.io.loads(payload, trusted=untrusted)
    if not isinstance(model, SKOPS_MODEL_TYPES):
        raise ArtifactIntegrityError(f"model file {shown_path!r} holds a {type(model).__name__}, not a workbench model")
    return model


def _mlp_to_safetensors(model: TorchMLPClassifier) -> bytes:
    from safetensors.numpy import save

    config = {
        "format": MLP_FORMAT,
        "params": {name: value for name, value in model.get_params().items() if name != "classes"},
        "classes": model.classes_.tolist(),
        "n_features_in": int(model.n_features_in_),
    }
    arrays = [model.coefs_[0], model.intercepts_[0], model.coefs_[1], model.intercepts_[1]]
    tensors = {name: np.ascontiguousarray(array) for name, array in zip(_MLP_TENSOR_NAMES, arrays, strict=True)}
    return save(tensors, metadata={MLP_METADATA_KEY: json.dumps(config, sort_keys=True)})


def _safetensors_metadata(payload: bytes) -> dict:
    """The ``__metadata__`` of a safetensors header (8-byte little-endian length, then JSON)."""
    header_length = int.from_bytes(payload[:8], "little")
    header = json.loads(payload[8 : 8 + header_length])
    return header.get("__metadata__") or {}


def _mlp_from_safetensors(payload: bytes, shown_path: str) -> TorchMLPClassifier:
    from safetensors import SafetensorError
    from safetensors.numpy import load

    try:
        config = json.loads(_safetensors_metadata(payload)[MLP_METADATA_KEY])
        if config.get("format") != MLP_FORMAT:
            raise ValueError(f"format {config.get('format')!r}")
        tensors = load(payload)
        model = TorchMLPClassifier(classes=config["classes"], **config["params"])
        input_weight, input_bias, output_weight, output_bias = (tensors[name] for name in _MLP_TENSOR_NAMES)
    except (SafetensorError, ValueError, KeyError, TypeError) as error:
        raise ArtifactIntegrityError(f"model file {shown_path!r} is not a workbench MLP: {error}") from error
    expected_shapes = [
        (config["n_features_in"], model.hidden),
        (model.hidden,),
        (model.hidden, len(config["classes"])),
        (len(config["classes"]),),
    ]
    arrays = [input_weight, input_bias, output_weight, output_bias]
    if [array.shape for array in arrays] != [tuple(shape) for shape in expected_shapes]:
        raise ArtifactIntegrityError(f"model file {shown_path!r} has weights of shapes that do not match its config")
    model.classes_ = np.asarray(config["classes"])
    model.coefs_ = [input_weight.astype(np.float32), output_weight.astype(np.float32)]
    model.intercepts_ = [input_bias.astype(np.float32), output_bias.astype(np.float32)]
    model.n_features_in_ = int(config["n_features_in"])
    return model
