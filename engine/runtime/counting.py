"""Counters and histograms that each thread counts on its own, without a lock per update.

`metrics.EngineMetrics` counts every reconcile, rule outcome, write and API request.
prometheus_client's Counter and Histogram take a mutex on every `inc()` and `observe()`,
and a Histogram walks its buckets in a Python loop: about 280 bytecodes and 6 lock
acquisitions in each reconcile. `LockFreeCounter` and `LockFreeHistogram` count the same
things and are registered as collectors on the same `CollectorRegistry`, so a scrape
reads what prometheus_client's own metrics would have answered.

Exact without a lock: a series is a list of floats (a counter's count; a histogram's
bucket counts, then its sum), and every thread has its own list per series, reached
through a `threading.local`. Only that thread writes it, so `cell[0] += 1` loses nothing
even when the interpreter switches threads between the read and the write. One dict
shared by all threads would lose counts: `counts[key] += 1` reads, then stores, and a
key hashed by Python code (a rule set's ref) lets another thread run in between. A
scrape adds the threads' lists up.

The lock is taken only on a thread's first use of a series (its list made, the series'
label values and `_created` time recorded once) and by a scrape. New series enter a
thread's dict only under the lock, so a scrape holding it knows the labels of every list
it finds; each list is read with one `list()` call, in which no other thread runs. A
thread that has ended writes no more: its lists are added into the retired totals (on a
scrape, or when another thread first counts), so the short-lived connection threads of
the webhook server do not pile up.

What a scrape reads matches prometheus_client's Counter and Histogram for the same
updates: families, HELP, samples in first-use order, label order, `le` bounds, and a
`_created` sample per series, taken when the series is first used (when the metric is
built, for a histogram without labels), unless prometheus_client's created series are
off (PROMETHEUS_DISABLE_CREATED_SERIES, `disable_created_metrics()`). One difference: a
NaN lands in the first bucket here and in none there; measured durations are never NaN.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections.abc import Callable, Hashable, Iterator, Sequence
from itertools import accumulate
from math import inf

import prometheus_client.metrics
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString

# label values as the caller has them (enums, rule set refs): each label is its str()
Key = tuple[Hashable, ...]
Labels = tuple[str, ...]


def _created_series() -> bool:
    # prometheus_client's own switch, read as its Counter and Histogram read it
    return bool(getattr(prometheus_client.metrics, "_use_created", True))


class _PerThread:
    """The series of one metric: lists of `width` floats, one per thread and key."""

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str], *,
                 width: int, wall: Callable[[], float]) -> None:
        self._name = name
        self._documentation = documentation
        self._labelnames = tuple(labelnames)
        self._width = width
        self._wall = wall
        self._local = threading.local()  # .cells: this thread's lists by key
        self._lock = threading.Lock()
        self._threads: list[tuple[threading.Thread, dict[Key, list[float]]]] = []
        self._labels: dict[Key, Labels] = {}
        self._created: dict[Labels, float] = {}  # in first-use order, the order scraped
        self._retired: dict[Labels, list[float]] = {}  # from threads that have ended
        if not labelnames:
            # scraped (as zeros) from the start, as prometheus_client's are
            self._created[()] = wall()

    def _first_use(self, key: Key) -> list[float]:
        """This thread's new list for `key`; the label values and created time too when
        no thread has used the series before."""
        if len(key) != len(self._labelnames):
            raise ValueError(f"{self._name}: {len(key)} label values for "
                             f"{len(self._labelnames)} labels {self._labelnames}")
        cells: dict[Key, list[float]] | None = getattr(self._local, "cells", None)
        with self._lock:
            if cells is None:
                self._retire_ended()
                cells = self._local.cells = {}
                self._threads.append((threading.current_thread(), cells))
            labels = self._labels.get(key)
            if labels is None:
                labels = self._labels[key] = tuple(str(value) for value in key)
                if labels not in self._created:  # a ref's first use after its name's
                    self._created[labels] = self._wall()
            cell = cells[key] = [0.0] * self._width
        return cell

    def _retire_ended(self) -> None:
        """Add the lists of threads that have ended into the retired totals (holding
        the lock): an ended thread writes nothing more, so nothing is lost."""
        running = []
        for thread, cells in self._threads:
            if thread.is_alive():
                running.append((thread, cells))
            else:
                for key, cell in cells.items():
                    _add_into(self._retired, self._labels[key], cell)
        self._threads = running

    def _totals(self) -> list[tuple[Labels, list[float], float]]:
        """Each series' label values, summed list and created time, in first-use order.
        Two keys with the same label values (a rule set's ref and its name) are one."""
        with self._lock:
            self._retire_ended()
            sums: dict[Labels, list[float]] = {}
            for labels, cell in self._retired.items():
                _add_into(sums, labels, cell)
            for _, cells in self._threads:
                for key, cell in list(cells.items()):
                    _add_into(sums, self._labels[key], list(cell))
            created = list(self._created.items())
        zeros = [0.0] * self._width
        return [(labels, sums.get(labels, zeros), when) for labels, when in created]


def _add_into(sums: dict[Labels, list[float]], labels: Labels, cell: list[float]) -> None:
    total = sums.get(labels)
    if total is None:
        sums[labels] = list(cell)
    else:
        for index, value in enumerate(cell):
            total[index] += value


class LockFreeCounter(_PerThread):
    """A counter with labels, scraped as prometheus_client's `Counter` is."""

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str], *,
                 registry: CollectorRegistry, wall: Callable[[], float]) -> None:
        super().__init__(name, documentation, labelnames, width=1, wall=wall)
        registry.register(self)

    def inc(self, key: Key) -> None:
        """Add one to the series of these label values."""
        try:
            cell = self._local.cells[key]
        except (AttributeError, KeyError):  # the first time this thread counts it
            cell = self._first_use(key)
        cell[0] += 1

    def describe(self) -> Iterator[Metric]:
        yield CounterMetricFamily(self._name, self._documentation, labels=self._labelnames)

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(self._name, self._documentation, labels=self._labelnames)
        created = _created_series()
        for labels, (count,), when in self._totals():
            family.add_metric(labels, count, created=when if created else None)
        yield family


class LockFreeHistogram(_PerThread):
    """A histogram, with or without labels, scraped as prometheus_client's `Histogram`
    is: each series is its bucket counts (the last one +Inf), then its sum."""

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str], *,
                 buckets: Sequence[float], registry: CollectorRegistry,
                 wall: Callable[[], float]) -> None:
        self._bounds = [float(bound) for bound in buckets]
        if self._bounds[-1] != inf:
            self._bounds.append(inf)
        # written as prometheus_client's Histogram writes them ("1.0", "+Inf")
        self._le = [floatToGoString(bound)  # type: ignore[no-untyped-call]
                    for bound in self._bounds]
        super().__init__(name, documentation, labelnames, width=len(self._bounds) + 1,
                         wall=wall)
        registry.register(self)

    def observe(self, key: Key, value: float) -> None:
        """Count `value` in the series of these label values (`()` without labels)."""
        try:
            cell = self._local.cells[key]
        except (AttributeError, KeyError):  # the first time this thread counts it
            cell = self._first_use(key)
        # a bucket counts the values <= its bound: the first bound not below the value
        cell[bisect_left(self._bounds, value)] += 1
        cell[-1] += value

    def describe(self) -> Iterator[Metric]:
        yield HistogramMetricFamily(self._name, self._documentation, labels=self._labelnames)

    def collect(self) -> Iterator[Metric]:
        family = HistogramMetricFamily(self._name, self._documentation,
                                       labels=self._labelnames)
        created = _created_series()
        for labels, cell, when in self._totals():
            cumulative = accumulate(cell[:-1])
            family.add_metric(labels, list(zip(self._le, cumulative, strict=True)), cell[-1])
            if created:
                # the family takes no created time (prometheus_client 0.26): added as
                # its Histogram adds it, after the sum
                family.add_sample(f"{self._name}_created",
                                  dict(zip(self._labelnames, labels, strict=True)), when)
        yield family
