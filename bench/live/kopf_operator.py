"""The benchmark's operator written with kopf: add one label to the bench ConfigMaps.

Run by `bench.live.kopf_phase` as its own process (`python -m kopf run --standalone
--namespace NS bench/live/kopf_operator.py`), in one of two styles (env
BENCH_KOPF_STYLE):

* ``event`` (default): a stateless ``@kopf.on.event`` handler that fills in ``patch``;
  kopf sends one PATCH per object and keeps no state on it.
* ``handlers``: the style kopf's documentation starts with, ``@kopf.on.resume``,
  ``create`` and ``update`` handlers filling in ``patch``; kopf also records the
  last-handled configuration in an annotation (and writes it again when it sees its own
  change: two PATCHes per object).

Both are async handlers (kopf runs sync ones in a thread pool) and filter by label, as
kopf's documentation recommends. A startup handler (benchmark only, not operator logic)
writes ``ready`` into the directory BENCH_KOPF_GATE once kopf is up, and holds the start
of the watches until ``go`` appears there: the timed window starts at ``go``, as the
engine's starts at its rule set, both after their process is up. Everything else is
kopf's default settings (which post no Kubernetes Events for handler logs).
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import kopf

LABEL = "edict.dev/bench"
VALUE = "converged"
SELECTOR = {"app": "edict-bench"}
STYLE = os.environ.get("BENCH_KOPF_STYLE", "event")
GATE = Path(os.environ.get("BENCH_KOPF_GATE", "."))


@kopf.on.startup()
async def hold_until_go(**_: Any) -> None:
    (GATE / "ready").write_text(repr(time.perf_counter()))
    while not (GATE / "go").exists():
        await asyncio.sleep(0.002)


if STYLE == "event":
    @kopf.on.event("configmaps", labels=SELECTOR)
    async def label_on_event(type: str, labels: kopf.Labels, patch: kopf.Patch,
                             **_: Any) -> None:
        if type != "DELETED" and labels.get(LABEL) != VALUE:
            patch.metadata.labels[LABEL] = VALUE
else:
    @kopf.on.resume("configmaps", labels=SELECTOR)
    @kopf.on.create("configmaps", labels=SELECTOR)
    @kopf.on.update("configmaps", labels=SELECTOR)
    async def label(labels: kopf.Labels, patch: kopf.Patch, **_: Any) -> None:
        if labels.get(LABEL) != VALUE:
            patch.metadata.labels[LABEL] = VALUE
