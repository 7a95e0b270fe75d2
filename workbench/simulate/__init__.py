"""`workbench simulate`: replay a labeled dataset through the workbench's own loop (queue,
double-labeling, review, dataset versions, retrain rounds, strategies) with simulated annotators,
and report learning curves per strategy. See workbench.simulate.runner for how a run works and
workbench.simulate.report for what the figures mean."""

from workbench.simulate.data import (
    CrowdData,
    LabeledData,
    LabelRules,
    TableOptions,
    load_crowd,
    load_labeled,
    restrict_to_crowd,
)
from workbench.simulate.report import aubc, labels_to, markdown_table, summary_table
from workbench.simulate.runner import SimulationConfig, simulate

__all__ = [
    "CrowdData",
    "LabelRules",
    "LabeledData",
    "SimulationConfig",
    "TableOptions",
    "aubc",
    "labels_to",
    "load_crowd",
    "load_labeled",
    "markdown_table",
    "restrict_to_crowd",
    "simulate",
    "summary_table",
]
