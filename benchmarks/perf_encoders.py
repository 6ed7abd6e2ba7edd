"""Episodes per second of each molecule encoder, meta-training a learner on Tox21.

One optimizer step = a meta-batch of 8 balanced 10-shot episodes with 16 query molecules
(the Tox21 suite's training episodes). Encoders, all through the data set's
``make_encoder`` (the ``encoder.<key>`` settings a suite or ``--set`` gives):

* ``gnn``: the default GINE encoder + dense ECFP-bit MLP;
* ``fused``: GINE + the sparse count-ECFP and descriptor branch (``fingerprint=counts``,
  ``descriptors=true``);
* ``fingerprint``: the count-ECFP MLP alone (``kind=fingerprint``), and with descriptors.

Fixed representations are computed before timing (once per data set, then cached), so the
table shows the cost per training step. It prints the machine and threads.

    FEWSHOT_DATA_DIR=../shared/data python benchmarks/perf_encoders.py \
        --out benchmarks/results/perf/encoders_cpu.md
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from fewshot_apps.bench.runner import machine
from fewshot_apps.core.learners import EpisodeBatch, build_learner
from fewshot_apps.core.optim import adamw
from fewshot_apps.core.tasks import BalancedSampler, sample_episodes
from fewshot_apps.domains.molecules.dataset import load_molecule_dataset

ENCODERS = {
    "gnn": {},
    "fused (gnn + count-ECFP + descriptors)": {"fingerprint": "counts", "descriptors": "true"},
    "fingerprint (count-ECFP)": {"kind": "fingerprint"},
    "fingerprint + descriptors": {"kind": "fingerprint", "descriptors": "true"},
}


def episodes_per_second(dataset, learner_name: str, settings: dict, steps: int,
                        device: str) -> float:
    torch.manual_seed(0)
    learner = build_learner(learner_name, dataset.make_encoder(settings),
                            "classification").to(device)
    optimizer = adamw(list(learner.parameters()), lr=1e-3, weight_decay=0.0)
    tasks = dataset.taskset.train
    batches = [list(sample_episodes(tasks, BalancedSampler(10, 16), 8, seed=s))
               for s in range(steps + 1)]

    def step(episodes):
        optimizer.zero_grad()
        learner.loss(EpisodeBatch.from_episodes(episodes).to(device)).backward()
        optimizer.step()

    step(batches[0])  # warm-up (and the one-off representation cache)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    for episodes in batches[1:]:
        step(episodes)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return steps * 8 / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--learners", default="protonet,maml")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    dataset = load_molecule_dataset("tox21", progress=False)
    lines = [f"machine: {machine()}; torch threads: {torch.get_num_threads()}; "
             f"device: {args.device}",
             f"Tox21 meta-training, {args.steps} steps of 8 episodes (10-shot, 16 query)", "",
             "| encoder | " + " | ".join(f"{n} episodes/s" for n in args.learners.split(","))
             + " | speed-up over gnn |",
             "|---|" + "---|" * (len(args.learners.split(",")) + 1)]
    base = None
    for label, settings in ENCODERS.items():
        rates = [episodes_per_second(dataset, name, settings, args.steps, args.device)
                 for name in args.learners.split(",")]
        base = base or rates
        speedup = " / ".join(f"{r / b:.1f}x" for r, b in zip(rates, base))
        lines.append(f"| {label} | " + " | ".join(f"{r:,.0f}" for r in rates)
                     + f" | {speedup} |")
        print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)


if __name__ == "__main__":
    main()
