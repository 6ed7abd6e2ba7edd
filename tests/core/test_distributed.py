"""Data-parallel meta_train: 2 gloo processes reach the weights of one process."""

from __future__ import annotations

import json
import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from fewshot_apps.core import distributed
from fewshot_apps.core.encoders import TableEncoder
from fewshot_apps.core.learners import build_learner
from fewshot_apps.core.settings import TrainConfig
from fewshot_apps.core.synthetic import PlantedProblem
from fewshot_apps.core.tasks import BalancedSampler
from fewshot_apps.core.training import meta_train, seed_everything

torch.set_num_threads(1)

PROBLEM = PlantedProblem.make("classification", n_examples=80, n_features=6, seed=0)
TRAIN = PROBLEM.tasks(8, examples_per_task=20, seed=1, prefix="train")
VALID = PROBLEM.tasks(3, examples_per_task=20, seed=2, prefix="valid")
SAMPLER = BalancedSampler(3, n_query=6)
WORLD = 2


def make_learner(seed=0):
    seed_everything(seed)
    encoder = TableEncoder(PROBLEM.features.double(), hidden=8, out_dim=4)
    return build_learner("anil", encoder, "classification", inner_steps=2).double()


def config(steps):
    # 5 episodes per meta-batch: shares of 3 and 2 episodes
    return TrainConfig(
        steps=steps,
        meta_batch_size=5,
        lr=1e-2,
        eval_every=2,
        checkpoint_every=2,
        seed=3,
        device="cpu",
    )


def train(out_dir, model, steps, resume=False):
    return meta_train(
        model,
        TRAIN,
        VALID,
        SAMPLER,
        config=config(steps),
        out_dir=out_dir,
        resume=resume,
        progress=False,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def worker(rank: int, port: int, root: str) -> None:
    torch.set_num_threads(1)
    out_dir = os.path.join(root, f"rank{rank}")  # rank 1 must write nothing there
    # Steps 1-2 as under torchrun: meta_train initializes (and destroys) the group from env.
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        WORLD_SIZE=str(WORLD),
        LOCAL_RANK=str(rank),
    )
    train(out_dir, make_learner(seed=rank), steps=2)  # rank 1's own init: overwritten
    assert not dist.is_initialized()
    # Steps 3-4: resumed, in a group the caller initialized (gloo, file://).
    dist.init_process_group(
        "gloo", init_method=f"file://{os.path.join(root, 'init')}", rank=rank, world_size=WORLD
    )
    try:
        model = make_learner(seed=10 + rank)  # everything must come from the checkpoint
        result = train(out_dir, model, steps=4, resume=True)
        torch.save(
            {
                "state": model.state_dict(),
                "best": (result.best_step, result.best_valid),
                "loss": result.last_loss,
            },
            os.path.join(root, f"result{rank}.pt"),
        )
    finally:
        dist.destroy_process_group()


def test_two_gloo_processes_match_one_process(tmp_path):
    single = make_learner()
    expected = train(tmp_path / "single", single, steps=4)
    assert expected.best_step is not None

    mp.spawn(worker, args=(free_port(), str(tmp_path)), nprocs=WORLD, join=True)

    results = [torch.load(tmp_path / f"result{r}.pt", weights_only=True) for r in range(WORLD)]
    for res in results:  # the selected (best) weights, on every rank
        assert res["best"][0] == expected.best_step
        assert res["best"][1] == pytest.approx(expected.best_valid, abs=1e-6)
        assert res["loss"] == pytest.approx(expected.last_loss, abs=1e-6)
        for key, value in single.state_dict().items():
            torch.testing.assert_close(res["state"][key], value, rtol=1e-5, atol=1e-5)
    # the last weights (checkpoint of rank 0) and the log
    ckpt_single = torch.load(tmp_path / "single" / "checkpoint.pt", weights_only=True)
    ckpt_dist = torch.load(tmp_path / "rank0" / "checkpoint.pt", weights_only=True)
    assert ckpt_dist["step"] == 4 and len(ckpt_dist["rng_ranks"]) == WORLD
    for key, value in ckpt_single["learner"].items():
        torch.testing.assert_close(ckpt_dist["learner"][key], value, rtol=1e-5, atol=1e-5)

    def log(name):
        lines = (tmp_path / name / "train_log.jsonl").read_text().splitlines()
        return [json.loads(line) for line in lines]

    assert [r["step"] for r in log("rank0")] == [1, 2, 3, 4]
    for a, b in zip(log("rank0"), log("single")):
        assert a["loss"] == pytest.approx(b["loss"], abs=1e-6)
        assert a.get("best_step") == b.get("best_step")
    assert (tmp_path / "rank0" / "model.pt").is_file()
    config_json = json.loads((tmp_path / "rank0" / "config.json").read_text())
    assert config_json["distributed"] == {"world_size": 2, "backend": "gloo"}
    assert not (tmp_path / "rank1").exists()  # only rank 0 writes


def test_shares_cover_the_meta_batch():
    for n in range(0, 9):
        for world in (1, 2, 3, 4):
            shares = [distributed.share(n, world, r) for r in range(world)]
            assert shares[0][0] == 0 and shares[-1][1] == n
            assert all(a[1] == b[0] for a, b in zip(shares, shares[1:]))
            assert max(b - a for a, b in shares) - min(b - a for a, b in shares) <= 1


def test_single_process_helpers_without_a_group(monkeypatch):
    for key in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(key, raising=False)
    assert not distributed.requested() and distributed.world_size() == 1
    assert distributed.is_main_process() and distributed.init_from_env("cpu") is False
    with distributed.main_process_first():
        pass
    monkeypatch.setenv("RANK", "1")
    assert not distributed.is_main_process()
    assert distributed.backend_for(torch.device("cpu")) == "gloo"
    assert distributed.backend_for(torch.device("cuda", 0)) == "nccl"


def test_process_group_context_without_torchrun(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    with distributed.process_group("cpu") as device:
        assert device == torch.device("cpu") and not dist.is_initialized()


def signalled_worker(rank: int, port: int, root: str) -> None:
    """Rank 1 alone gets SIGTERM during step 3: every rank stops after step 3 together."""
    import signal

    from fewshot_apps.core.training import TrainingInterrupted

    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(WORLD), LOCAL_RANK=str(rank))
    model, calls = make_learner(), []
    loss = model.loss

    def loss_then_signal(batch):
        calls.append(1)
        if rank == 1 and len(calls) == 3:
            os.kill(os.getpid(), signal.SIGTERM)
        return loss(batch)

    model.loss = loss_then_signal
    try:
        train(os.path.join(root, "run"), model, steps=10)
        outcome = None
    except TrainingInterrupted as err:
        outcome = (err.signum, err.step, None if err.checkpoint is None else str(err.checkpoint))
    torch.save({"outcome": outcome}, os.path.join(root, f"outcome{rank}.pt"))
    # The outcome is on disk. Leave without the interpreter's shutdown: after a SIGTERM the
    # gloo threads' teardown can abort the process ("terminate called without an active
    # exception", about one run in three on 2 cores, before this change too), which would
    # fail the spawn although every rank did what it should.
    os._exit(0)


def test_a_signal_on_any_rank_stops_every_rank_at_the_same_step(tmp_path):
    import signal

    mp.spawn(signalled_worker, args=(free_port(), str(tmp_path)), nprocs=WORLD, join=True)
    outcomes = [torch.load(tmp_path / f"outcome{r}.pt", weights_only=True)["outcome"]
                for r in range(WORLD)]
    checkpoint = tmp_path / "run" / "checkpoint.pt"
    assert outcomes == [(signal.SIGTERM, 3, str(checkpoint)), (signal.SIGTERM, 3, None)]
    ckpt = torch.load(checkpoint, weights_only=True)
    assert ckpt["step"] == 3 and len(ckpt["rng_ranks"]) == WORLD
