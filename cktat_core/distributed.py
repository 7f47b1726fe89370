"""Several processes training one model: `torchrun --nproc_per_node=N -m cktat_core.cli train ...`.

One process per GPU (or, for tests, per CPU process with the gloo backend), each holding a full replica of
the student and of the frozen teacher. Every epoch, all ranks draw the same permutation and augmentation
from the same checkpointed generator (`device_data.epoch_batches`); the global batch of `batch_size` images
is the one a single process would see, and rank r trains on its r-th slice of it. After each backward the
gradients are averaged over the ranks with one all-reduce (`sync_gradients`, what DistributedDataParallel's
reducer does), weighted by each slice's share of the global batch, so the update is the single-process
update on the same global batch: the same `batch_size` and `lr` mean the same thing for any number of GPUs.

The replicas are not wrapped in `DistributedDataParallel`: a method's step uses the network itself (state
dict copies between EMA teachers, attacks on its BatchNorm-folded eval-mode view, two or three forwards per
step), which a wrapper would break; the gradient averaging is the same arithmetic.

BatchNorm: per-rank batch statistics (each rank normalises its slice of the global batch), with the running
statistics averaged over the ranks after every step (`sync_buffers`), so all replicas stay identical and the
running mean is the one of the global batch. SyncBatchNorm is not used: training attacks, validation and
evaluation run in eval mode (running statistics), so only the train-mode forwards of the loss see batch
statistics; SyncBatchNorm would add two all-reduces per BatchNorm layer to each of them, and it does not run
on the CPU. With N GPUs and the paper's batch of 128, the batch statistics come from 128/N images instead of
128, the one difference from single-process training.

Checkpoints, metrics and results are written by rank 0 only (`is_main_process`); every rank reads `last.pt`
on resume, so rerunning the same command resumes a killed run as a single process does. Randomness inside a
step (attack starts) is reseeded per rank and epoch (`seed_step_rng`), so a resumed run repeats the
uninterrupted one.
"""

from __future__ import annotations

import contextlib
import os

import torch
import torch.distributed as dist
from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors

from .errors import ConfigError


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def is_main_process() -> bool:
    return rank() == 0


def launched_by_torchrun() -> bool:
    """True when the environment names a rank and a world size (torchrun, or a test spawning workers)."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def init_from_env() -> bool:
    """Join the process group described by torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK,
    MASTER_ADDR, MASTER_PORT). NCCL and this process's GPU (cuda:LOCAL_RANK, made the current device so
    "cuda" and "auto" name it) when CUDA is available, gloo otherwise. Returns whether a group was joined."""
    if not launched_by_torchrun() or dist.is_initialized():
        return False
    local = int(os.environ.get("LOCAL_RANK", os.environ["RANK"]))
    if torch.cuda.is_available():
        torch.cuda.set_device(local)
        dist.init_process_group("nccl", device_id=torch.device("cuda", local))
    else:
        dist.init_process_group("gloo")
    return True


@contextlib.contextmanager
def session():
    """A process group for the duration of a command when launched by torchrun (nothing otherwise)."""
    joined = init_from_env()
    try:
        yield
        if joined:
            dist.barrier()  # rank 0 may still be writing results
    finally:
        if joined:
            dist.destroy_process_group()


def shard(n: int, r: int | None = None, world: int | None = None) -> slice:
    """Rank r's contiguous slice of a global batch of n images (sizes differ by at most one)."""
    r, world = rank() if r is None else r, world_size() if world is None else world
    base, extra = divmod(n, world)
    start = r * base + min(r, extra)
    return slice(start, start + base + (1 if r < extra else 0))


def check_batch(batch_size: int) -> None:
    """Every rank needs at least two images of each global batch (BatchNorm's batch statistics)."""
    if batch_size < 2 * world_size():
        raise ConfigError("batch_size", f"must be >= 2 x the number of processes ({2 * world_size()})", batch_size)


def sync_gradients(params: list[torch.nn.Parameter], weight: float = 1.0) -> None:
    """Sum over the ranks of `weight` x each rank's gradient, in one all-reduce of a flat buffer.

    With weight = (this rank's images) / (global batch), the result is the gradient of the loss averaged over
    the global batch. A parameter without a gradient on every rank counts as zero.
    """
    if world_size() == 1:
        return
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = _flatten_dense_tensors(grads).mul_(weight)
    dist.all_reduce(flat)
    for p, g in zip(params, _unflatten_dense_tensors(flat, grads)):
        if p.grad is None:
            p.grad = g
        else:
            p.grad.copy_(g)


def sync_buffers(modules) -> None:
    """Average the floating-point buffers (BatchNorm running statistics) of `modules` over the ranks."""
    if world_size() == 1:
        return
    bufs = [b for m in modules for b in m.buffers() if b.is_floating_point()]
    if not bufs:
        return
    flat = _flatten_dense_tensors(bufs).div_(world_size())
    dist.all_reduce(flat)
    for b, v in zip(bufs, _unflatten_dense_tensors(flat, bufs)):
        b.copy_(v)


def mean_over_ranks(value: torch.Tensor) -> torch.Tensor:
    """The mean of a tensor over the ranks (once per epoch: the training loss)."""
    if world_size() == 1:
        return value
    out = value.detach().clone()
    dist.all_reduce(out)
    return out / world_size()


def seed_step_rng(seed: int, epoch: int) -> None:
    """With several ranks, give each rank its own global random stream for the epoch (attack starts), derived
    from (seed, epoch, rank) so that a resumed epoch draws what the uninterrupted one drew. A single process
    keeps the stream of its checkpoint."""
    if world_size() > 1:
        torch.manual_seed(((seed * 1_000_003 + epoch) * 1009 + rank()) % (2**63))


def barrier() -> None:
    """Wait for every rank (after rank 0 wrote a checkpoint the others will read)."""
    if world_size() > 1:
        dist.barrier()
