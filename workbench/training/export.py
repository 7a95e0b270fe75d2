"""A model run written out for serving, and loaded back with the same hash checks (pure ML).

An export directory holds:

- the model file exactly as the registry stores it (``model-<sha16>.skops`` or ``.safetensors``);
- ``featurizer.skops``: the fitted state of the featurizer (for TF-IDF the vocabulary and the idf
  weights, for tabular items the imputers, scaler and one-hot encoder; sentence embeddings and
  image pixels have none) as scikit-learn/NumPy objects in a skops file;
- ``model.json``: the project kind, the label set (the model's probability columns, in order),
  the featurizer's settings and key, the sha256 of both files, the model config and its metrics;
- ``predict.py``: ``python predict.py ITEMS.jsonl`` prints one JSON line per item (its label and
  class probabilities). It needs the ``workbench-al`` package (the model classes are its own).

:func:`load_export` checks each file's sha256 against ``model.json`` before parsing it, and the
model through :func:`workbench.training.artifacts.load_model`, as a round does.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from workbench.training.artifacts import ArtifactIntegrityError, is_trusted_type, load_model
from workbench.training.featurizers import Featurizer, make_featurizer

EXPORT_FORMAT = "workbench.export/1"
MANIFEST = "model.json"
FEATURIZER_FILE = "featurizer.skops"
PREDICT_FILE = "predict.py"

# The attributes fit_transform sets, per featurizer name; the rest is rebuilt from the settings.
FITTED_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "text-tfidf/1": ("vocabulary_", "_count_vectorizer", "_tfidf"),
    "tabular-impute-scale-onehot/1": (
        "numeric_columns_",
        "categorical_columns_",
        "_numeric_pipeline",
        "_categorical_pipeline",
    ),
}

PREDICT_PY = '''"""Labels for items, by model run {run_id} of Workbench project {project!r} (`workbench model export`).

    python predict.py ITEMS.jsonl      (or - for standard input)

Each input line is an item's content as the Workbench stores it ({{"text": ...}} for text,
{{"features": {{...}}}} for tabular, {{"path": ...}} for images). Prints one JSON line per item:
{{"label": ..., "proba": {{label: probability}}}}. The model and the featurizer are loaded only
after their files' sha256 match model.json. Needs the workbench-al package.
"""

import json
import sys
from pathlib import Path

from workbench.training.export import load_export


def main(argv):
    source = sys.stdin if len(argv) < 2 or argv[1] == "-" else open(argv[1], encoding="utf-8")
    contents = [json.loads(line) for line in source if line.strip()]
    exported = load_export(Path(__file__).resolve().parent)
    for label, proba in zip(exported.predict(contents), exported.predict_proba(contents)):
        print(json.dumps({{"label": label, "proba": dict(zip(exported.labels, map(float, proba)))}}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
'''


def _sha256(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


def featurizer_state(featurizer: Featurizer) -> bytes:
    """The fitted featurizer's state as a skops file (an empty dict for stateless featurizers)."""
    import skops.io

    names = FITTED_ATTRIBUTES.get(featurizer.name, ())
    return skops.io.dumps({name: getattr(featurizer, name) for name in names})


def restore_featurizer(
    kind: str, settings: dict[str, Any], state: bytes, *, image_root: str | None = None
) -> Featurizer:
    """The featurizer built from its settings, with the fitted state of :func:`featurizer_state`."""
    import skops.io

    featurizer = make_featurizer(kind, settings, image_root=image_root)
    untrusted = skops.io.get_untrusted_types(data=state)
    refused = sorted(name for name in untrusted if not is_trusted_type(name))
    if refused:
        raise ArtifactIntegrityError(f"{FEATURIZER_FILE} names types outside the allow-list: {refused}")
    fitted = skops.io.loads(state, trusted=untrusted)
    expected = set(FITTED_ATTRIBUTES.get(featurizer.name, ()))
    if not isinstance(fitted, dict) or set(fitted) != expected:
        raise ArtifactIntegrityError(f"{FEATURIZER_FILE} does not hold the state of a {featurizer.name} featurizer")
    for name, value in fitted.items():
        setattr(featurizer, name, value)
    return featurizer


def write_export(
    directory: Path,
    *,
    model_file: Path,
    model_sha256: str,
    featurizer: Featurizer,
    manifest: dict[str, Any],
) -> tuple[str, ...]:
    """Write the files of an export into ``directory`` (which must exist and be empty)."""
    model_bytes = model_file.read_bytes()
    if not hmac.compare_digest(_sha256(model_bytes), model_sha256):
        raise ArtifactIntegrityError(f"model file {model_file.name!r} does not match its sha256: refusing to export")
    state = featurizer_state(featurizer)
    (directory / model_file.name).write_bytes(model_bytes)
    (directory / FEATURIZER_FILE).write_bytes(state)
    document = {
        **manifest,
        "format": EXPORT_FORMAT,
        "model": {"file": model_file.name, "sha256": model_sha256},
        "featurizer": {
            **manifest.get("featurizer", {}),
            "key": featurizer.key(),
            "state_file": FEATURIZER_FILE,
            "state_sha256": _sha256(state),
        },
    }
    (directory / MANIFEST).write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    (directory / PREDICT_FILE).write_text(
        PREDICT_PY.format(run_id=manifest.get("model_run_id"), project=manifest.get("project"))
    )
    return (model_file.name, FEATURIZER_FILE, MANIFEST, PREDICT_FILE)


@dataclass
class ExportedModel:
    """An export loaded back: featurize item contents and predict with the exported model."""

    labels: tuple[str, ...]
    featurizer: Featurizer
    model: Any
    manifest: dict[str, Any]

    def predict_proba(self, contents: Sequence[dict]) -> np.ndarray:
        if not contents:
            return np.zeros((0, len(self.labels)))
        return self.model.predict_proba(self.featurizer.transform(list(contents)))

    def predict(self, contents: Sequence[dict]) -> list[str]:
        """The label of highest probability per item (the labels' order breaks ties, as in a round)."""
        proba = self.predict_proba(contents)
        return [self.labels[k] for k in proba.argmax(axis=1)]


def load_export(directory: Path | str) -> ExportedModel:
    """Load an export, each file only after its sha256 matches ``model.json``."""
    directory = Path(directory)
    manifest = json.loads((directory / MANIFEST).read_text())
    if manifest.get("format") != EXPORT_FORMAT:
        raise ArtifactIntegrityError(f"{MANIFEST} is not a {EXPORT_FORMAT} manifest")
    spec = manifest["featurizer"]
    state = (directory / spec["state_file"]).read_bytes()
    if not hmac.compare_digest(_sha256(state), spec["state_sha256"]):
        raise ArtifactIntegrityError(
            f"{spec['state_file']} has sha256 {_sha256(state)}, expected {spec['state_sha256']}: refusing to load it"
        )
    featurizer = restore_featurizer(manifest["kind"], spec["settings"], state, image_root=spec.get("image_root"))
    if featurizer.key() != spec["key"]:
        raise ArtifactIntegrityError(f"the featurizer built from {MANIFEST} is {featurizer.key()}, not {spec['key']}")
    model = load_model(manifest["model"]["file"], manifest["model"]["sha256"], root=directory)
    return ExportedModel(tuple(manifest["labels"]), featurizer, model, manifest)
