"""Inner-loop adaptation time per meta-batch: the per-task loop vs the vmap engine.

Head-only learners (``anil``, ``metasgd`` with ``adapt_encoder='none'``, ``lstm``) on given
embeddings: the encoder is an identity over a fixed embedding table, so the time measured is
the inner loops' (and the outer backward's), not an encoder's. Every meta-batch has
``--tasks`` episodes (16 by default) of different support and query sizes.

Prints, per learner, the median milliseconds per meta-batch of

* ``adapt``: the meta-training loss (all inner loops and the query losses, second-order
  graph built where the learner is second-order);
* ``adapt+backward``: the same plus ``loss.backward()`` (one meta-training step without the
  optimizer);
* ``eval``: ``fit_predict_many`` over the meta-batch's episodes (no outer graph);

for ``engine='loop'`` and ``engine='vmap'``, and the speed-up. Run:

    python benchmarks/perf_inner_loop.py [--tasks 16] [--dim 64] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np
import torch
from torch import nn

from fewshot_apps.core.learners import EpisodeBatch, build_learner
from fewshot_apps.core.tasks import Episode


class Embeddings(nn.Module):
    """Given embeddings: ``ids -> table[ids]`` (no trainable parameters)."""

    def __init__(self, table: torch.Tensor):
        super().__init__()
        self.register_buffer("table", table)
        self.out_dim = table.shape[1]

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.table[ids]


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def episodes(rng, n_examples: int, n_tasks: int) -> list[Episode]:
    out = []
    for t in range(n_tasks):
        s, q = int(rng.integers(5, 17)), int(rng.integers(10, 33))  # sizes differ per task
        ids = rng.choice(n_examples, size=s + q, replace=False)
        labels = rng.integers(0, 2, size=s + q).astype(np.float32)
        labels[0], labels[1] = 0.0, 1.0
        positions = np.arange(s + q)
        out.append(
            Episode(f"t{t}", positions[:s], positions[s:], ids[:s], labels[:s], ids[s:], labels[s:])
        )
    return out


def median_ms(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=16, help="episodes per meta-batch")
    parser.add_argument("--dim", type=int, default=64, help="embedding width")
    parser.add_argument("--inner-steps", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(
        f"CPU: {cpu_model()}; {os.cpu_count()} logical cores; torch {torch.__version__}, "
        f"{torch.get_num_threads()} thread(s)"
    )
    print(
        f"meta-batch: {args.tasks} tasks, support 5-16, query 10-32, embedding dim {args.dim}, "
        f"{args.inner_steps} inner steps, median of {args.repeats}"
    )
    rng = np.random.default_rng(0)
    table = torch.randn(2000, args.dim)
    eps = episodes(rng, len(table), args.tasks)
    batch = EpisodeBatch.from_episodes(eps)
    triples = [(e.support_examples, e.support_labels, e.query_examples) for e in eps]
    setups = [
        ("anil", {"inner_steps": args.inner_steps}),
        ("metasgd", {"adapt_encoder": "none", "inner_steps": args.inner_steps}),
        ("lstm", {"inner_steps": args.inner_steps}),
    ]
    header = f"{'learner':<9} {'measure':<15} {'loop ms':>9} {'vmap ms':>9} {'speed-up':>9}"
    print(header)
    print("-" * len(header))
    for name, config in setups:
        torch.manual_seed(0)
        learner = build_learner(name, Embeddings(table), "classification", **config)
        learner.train()

        def adapt(learner=learner):
            return learner.loss(batch)

        def step(learner=learner):
            learner.zero_grad(set_to_none=True)
            learner.loss(batch).backward()

        def evaluate(learner=learner):
            learner.fit_predict_many(triples)

        for label, fn in (("adapt", adapt), ("adapt+backward", step), ("eval", evaluate)):
            timings = {}
            for engine in ("loop", "vmap"):
                learner.config.engine = engine
                timings[engine] = median_ms(fn, args.repeats)
            print(
                f"{name:<9} {label:<15} {timings['loop']:>9.2f} {timings['vmap']:>9.2f} "
                f"{timings['loop'] / timings['vmap']:>8.1f}x"
            )


if __name__ == "__main__":
    main()
