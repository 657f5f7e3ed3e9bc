"""The only package that imports the official Kubernetes client.

`Cluster` (client.py) is the engine's view of the API server; every answer is a plain
JSON dict and every failure a typed `ApiError` (errors.py). The runtime depends on
this package, never on `kubernetes` itself.
"""

from .client import Cluster
from .discovery import Resource
from .events import EventType
from .watch import WatchStream

__all__ = ["Cluster", "EventType", "Resource", "WatchStream"]
