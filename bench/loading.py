"""Loading benchmark: the hardened YAML reader against plain libyaml, on the same text.

    python -m bench.loading --objects 10000 --repeat 8

Times (CPU, best of --repeat, alternating the two) reading three inputs: the offline
benchmark's corpus written as one YAML stream (`bench/corpus.py`, with its rule sets),
every rule set under rules/, and examples/shop.yaml — once with `yaml.load_all` and
libyaml's CSafeLoader (what Edict read with before its limits), once with
`engine.rules.documents.parse_stream` (aliases, nesting, size and duplicate keys checked).
"""

from __future__ import annotations

import argparse
import gc
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from bench import corpus
from engine.rules.documents import parse_stream

ROOT = Path(__file__).resolve().parents[1]


def plain(text: str) -> Any:
    return [d for d in yaml.load_all(text, Loader=yaml.CSafeLoader) if d is not None]


def hardened(text: str) -> Any:
    return parse_stream(text, source="bench")


def best_cpu(function: Callable[[str], Any], text: str, runs: int) -> float:
    gc.collect()
    start = time.process_time()
    for _ in range(runs):
        function(text)
    return (time.process_time() - start) / runs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objects", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=8)
    args = parser.parse_args()
    stream = yaml.safe_dump_all(corpus.objects(args.objects) + corpus.rule_sets(20),
                                sort_keys=False)
    rules = "".join(p.read_text() + "\n---\n" for p in sorted(ROOT.glob("rules/*/*.yaml")))
    shop = (ROOT / "examples" / "shop.yaml").read_text()
    for name, text, runs in (("corpus", stream, 1), ("rules/", rules, 100),
                             ("examples/shop.yaml", shop, 1000)):
        before = after = float("inf")
        for _ in range(args.repeat):
            before = min(before, best_cpu(plain, text, runs))
            after = min(after, best_cpu(hardened, text, runs))
        print(f"{name:20} {len(text):>10} chars  libyaml {before * 1000:10.3f} ms  "
              f"hardened {after * 1000:10.3f} ms  ratio {after / before:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
