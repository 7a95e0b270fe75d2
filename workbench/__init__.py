"""The Workbench: active learning and blind double-labeling with adjudication."""

__version__ = "0.1.0"
