"""Pure ML for the Workbench: featurizers and their file cache, models over a project's label
set, evaluation on the eval split, and model artifacts. Never touches the database.

The public names below are imported on first use, so importing one submodule (say
``workbench.training.evaluation``, NumPy only) does not pull in scikit-learn.
"""

import importlib

_PUBLIC_NAMES = {
    "ArtifactIntegrityError": "artifacts",
    "load_model": "artifacts",
    "save_model": "artifacts",
    "compare_predictions": "evaluation",
    "compare_runs": "evaluation",
    "evaluate": "evaluation",
    "expected_calibration_error": "evaluation",
    "Featurizer": "featurizers",
    "FeaturizerError": "featurizers",
    "FeatureStore": "featurizers",
    "feature_cache_key": "featurizers",
    "make_featurizer": "featurizers",
    "CommitteeClassifier": "models",
    "LabelSetAdapter": "models",
    "LogisticRegressionClassifier": "models",
    "ModelConfigError": "models",
    "TorchMLPClassifier": "models",
    "linear_head": "models",
    "make_model": "models",
    "mlp_layers": "models",
}

__all__ = sorted(_PUBLIC_NAMES)


def __getattr__(name: str):
    if name not in _PUBLIC_NAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_PUBLIC_NAMES[name]}"), name)
