"""The live engine's machinery: work queue, informers, watches, leader election, health.

Used by `edict run` (assembled in `engine.cli`, which this package never imports).
Talks to the cluster only through `engine.kube`; never imports `kubernetes` itself.
"""
