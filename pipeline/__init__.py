"""Netra pipeline: records, configuration, storage, orchestration and the CLI."""

__version__ = "0.1.0"
