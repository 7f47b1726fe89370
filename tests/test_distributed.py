"""Several processes (gloo on the CPU, as torchrun would start them) train like one process on the same
global batch, write checkpoints once, and resume after a run is killed."""

import json
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

from cktat_core import checkpoint as ckpt
from cktat_core.data import Splits, TensorData
from cktat_core.distributed import shard

# Tiny: a 8-wide CNN, 512 training images, CKTAT with a 3-epoch teacher and 3 student epochs.
RUN = {"method": "cktat", "model": "small_cnn", "width": 8, "dataset": "multiview", "teacher_epochs": 3,
       "epochs": 3, "batch_size": 32, "lr": 0.02, "attack_steps": 2, "val_attack_steps": 2, "eval_steps": 2,
       "tau": 1.0, "progress": False, "device": "cpu", "device_data": True, "augment": True}
N_VAL = 48


def synthetic_splits() -> Splits:
    """Images that are exact k/255 values (stored as uint8 on the device), one pattern per class plus noise."""
    g = torch.Generator().manual_seed(0)
    patterns = torch.rand(10, 3, 4, 4, generator=g).repeat_interleave(8, 2).repeat_interleave(8, 3)

    def make(n):
        y = torch.randint(0, 10, (n,), generator=g)
        x = (0.5 + 0.8 * (patterns[y] - 0.5) + 0.05 * torch.randn(n, 3, 32, 32, generator=g)).clamp(0, 1)
        return TensorData(x.mul(255).round().div(255), y, tuple(f"c{i}" for i in range(10)))

    return Splits(make(512), make(N_VAL), make(40))


def _bn_free_phase(out):
    """train_phase on a network without BatchNorm: the averaged gradient is the single-process one exactly."""
    import torch.nn as nn
    from cktat_core.config import from_profile, resolve
    from cktat_core.methods import METHODS
    from cktat_core.train import train_phase

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(4), nn.Flatten(),
                        nn.Linear(128, 10))
    cfg = resolve(from_profile("smoke", dict(RUN, batch_size=31)))  # 16 + 15 images: unequal slices
    train_phase(net, METHODS["clean"], synthetic_splits(), cfg, out, epochs=2, lr=0.05, keys=("seed",))


def _worker(rank, world, port, out, crash_at_validation, log_dir, bn_free=False):
    """One process of a torchrun-like launch: the environment torchrun sets, then the library's own entry."""
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    from cktat_core import distributed, train as train_mod
    from cktat_core.config import from_profile

    train_mod.load_splits = lambda *a, **k: synthetic_splits()
    real_save, real_eval = torch.save, train_mod.evaluate
    written = []

    def logged_save(obj, f, *a, **k):
        written.append(getattr(f, "name", str(f)))
        return real_save(obj, f, *a, **k)

    calls = {"n": 0}

    def crashing_eval(model, data, *a, **k):
        if len(data) == N_VAL:
            calls["n"] += 1
            if calls["n"] == crash_at_validation:
                raise KeyboardInterrupt  # killed at the end of an epoch, before its checkpoint
        return real_eval(model, data, *a, **k)

    torch.save = logged_save
    if crash_at_validation:
        train_mod.evaluate = crashing_eval
    try:
        with distributed.session():
            if bn_free:
                _bn_free_phase(out)
            else:
                train_mod.run(from_profile("smoke", dict(RUN)), out)
    except KeyboardInterrupt:
        pass
    finally:
        with open(os.path.join(log_dir, f"saves_rank{rank}.json"), "w") as fh:
            json.dump(written, fh)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(world, out, log_dir, crash_at_validation=0, bn_free=False):
    os.makedirs(log_dir, exist_ok=True)
    mp.start_processes(_worker, args=(world, _free_port(), str(out), crash_at_validation, str(log_dir), bn_free),
                       nprocs=world, join=True, start_method="spawn")
    return [json.load(open(os.path.join(log_dir, f"saves_rank{r}.json"))) for r in range(world)]


def _state(path):
    return ckpt.load(str(path))["model"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("ddp")
    one = launch(1, root / "one", root / "log1")
    two = launch(2, root / "two", root / "log2")
    cut = launch(2, root / "cut", root / "log3", crash_at_validation=RUN["teacher_epochs"] + 3)  # cut in student epoch 3
    cut_ckpt_epoch = ckpt.load(str(root / "cut" / "student" / "last.pt"))["epoch"]
    cut_result_existed = (root / "cut" / "result.json").exists()
    resumed = launch(2, root / "cut", root / "log4")
    return dict(root=root, one=one, two=two, cut=cut, resumed=resumed, cut_ckpt_epoch=cut_ckpt_epoch,
                cut_result_existed=cut_result_existed)


def test_without_batchnorm_two_processes_take_the_single_process_steps(tmp_path):
    launch(1, tmp_path / "one", tmp_path / "log1", bn_free=True)
    launch(2, tmp_path / "two", tmp_path / "log2", bn_free=True)
    a, b = _state(tmp_path / "one" / "last.pt"), _state(tmp_path / "two" / "last.pt")
    start = ckpt.load(str(tmp_path / "one" / "last.pt"))
    assert start["epoch"] == 2
    for k in a:
        # float rounding only (the sums run in another order); a wrongly weighted slice moves them by ~5e-3
        assert torch.allclose(a[k], b[k], rtol=0, atol=1e-4), k
    la = json.loads((tmp_path / "one" / "metrics.jsonl").read_text().splitlines()[-1])
    lb = json.loads((tmp_path / "two" / "metrics.jsonl").read_text().splitlines()[-1])
    assert abs(la["val_natural"] - lb["val_natural"]) <= 100 / N_VAL  # at most one borderline image
    assert la["train_loss"] == pytest.approx(lb["train_loss"], rel=1e-3)


def test_two_processes_reach_the_metrics_of_one_on_the_same_global_batch(runs):
    one = json.loads((runs["root"] / "one" / "result.json").read_text())
    two = json.loads((runs["root"] / "two" / "result.json").read_text())
    assert [r["epoch"] for r in two["student"]["history"]] == [1, 2, 3]
    assert [r["lr"] for r in one["student"]["history"]] == [r["lr"] for r in two["student"]["history"]]
    # The one difference is BatchNorm's batch statistics (16 images per rank instead of 32), whose noise
    # changes the SGD trajectory: both runs learn (chance is 10%) and end within the test set's noise.
    for phase in ("teacher", "student"):
        a1 = one[phase]["test"]["attacks"]["natural"]["accuracy"] if phase == "teacher" else \
            one[phase]["last"]["test"]["attacks"]["natural"]["accuracy"]
        a2 = two[phase]["test"]["attacks"]["natural"]["accuracy"] if phase == "teacher" else \
            two[phase]["last"]["test"]["attacks"]["natural"]["accuracy"]
        assert a1 > 40 and a2 > 40, (phase, a1, a2)
        assert abs(a1 - a2) <= 20, (phase, a1, a2)  # 40 test images: one standard error is ~8 points
    l1, l2 = one["student"]["history"][-1]["train_loss"], two["student"]["history"][-1]["train_loss"]
    assert abs(l1 - l2) < 0.3 * l1


def test_only_rank_zero_writes(runs):
    rank0, rank1 = runs["two"]
    assert rank1 == []
    names = [os.path.basename(p) for p in rank0]
    assert names.count("last.pt.tmp") == RUN["teacher_epochs"] + RUN["epochs"]  # one per epoch of each phase
    assert runs["cut"][1] == [] and runs["resumed"][1] == []


def test_a_killed_two_process_run_resumes_to_the_uninterrupted_result(runs):
    assert runs["cut_ckpt_epoch"] == 2 and not runs["cut_result_existed"]
    full = _state(runs["root"] / "two" / "student" / "last.pt")
    resumed = _state(runs["root"] / "cut" / "student" / "last.pt")
    for k in full:
        assert torch.equal(full[k], resumed[k]), k
    resumed_saves = [os.path.basename(p) for p in runs["resumed"][0]]
    assert resumed_saves.count("last.pt.tmp") == 1  # only the missing epoch was trained
    a = json.loads((runs["root"] / "two" / "result.json").read_text())
    b = json.loads((runs["root"] / "cut" / "result.json").read_text())
    strip = lambda h: [{k: v for k, v in r.items() if not k.endswith("_seconds")} for r in h]
    assert strip(a["student"]["history"]) == strip(b["student"]["history"])


@pytest.mark.parametrize("n", [64, 65, 3])
def test_shards_cover_the_global_batch_once(n):
    for world in (1, 2, 3):
        parts = [shard(n, r, world) for r in range(world)]
        covered = [i for p in parts for i in range(n)[p]]
        assert covered == list(range(n))
        sizes = [p.stop - p.start for p in parts]
        assert max(sizes) - min(sizes) <= 1
