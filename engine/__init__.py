"""Edict: Kubernetes operators written as YAML."""

__version__ = "0.1.0"
