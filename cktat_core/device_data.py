"""The training set kept on the training device, batched and augmented there.

`DeviceData` holds the images as uint8 when they are exactly k/255 (CIFAR: a quarter of float32's memory,
the whole training set fits on any card) and as float32 otherwise (the multi-view images). `epoch_batches`
draws one epoch's randomness at its start from the trainer's CPU generator (the same generator the
checkpoints store, so a resumed epoch repeats the interrupted one): the permutation, then a crop offset pair
and a flip for each position of the epoch. These move to the device once; each batch is then a gather on the
device: no DataLoader worker and no host round trip per batch.

The augmentation is the CPU path's (`data.augment`): a 32x32 window of the image zero-padded by `pad` pixels,
offsets uniform in [0, 2 pad], flipped horizontally with probability 1/2. The random numbers are drawn in
another order (per epoch, not per batch), so the two paths give different epochs from the same seed, each
reproducible.

With several processes (`distributed`), every rank draws the same numbers and keeps its slice of each global
batch, so the union of the ranks' batches is the single-process batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import torch

from .data import TensorData, crop_flip
from .distributed import rank, shard, world_size


@dataclass
class DeviceData:
    """Images (uint8 in [0, 255] or float in [0, 1]) and labels on one device."""

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return len(self.y)

    @classmethod
    def from_tensor_data(cls, data: TensorData, device: torch.device) -> "DeviceData":
        """A copy of `data` on `device`, as uint8 when that loses nothing."""
        q = data.x.mul(255).round_()
        exact = bool(torch.equal(q.div(255), data.x))
        x = q.to(torch.uint8) if exact else data.x
        return cls(x.to(device), data.y.to(device))

    def images(self, idx: torch.Tensor) -> torch.Tensor:
        """Float images in [0, 1] at positions idx."""
        x = self.x[idx]
        return x.float().div_(255) if x.dtype == torch.uint8 else x


def epoch_draws(n: int, generator: torch.Generator, augment: bool, pad: int = 4):
    """One epoch's random numbers from the CPU generator: permutation, crop offsets (2, n), flips (n)."""
    order = torch.randperm(n, generator=generator)
    if not augment:
        return order, None, None
    offsets = torch.randint(0, 2 * pad + 1, (2, n), generator=generator)
    flips = torch.rand(n, generator=generator) < 0.5
    return order, offsets, flips


def epoch_batches(data: DeviceData, batch_size: int, generator: torch.Generator, augment: bool = False,
                  channels_last: bool = False, pad: int = 4) -> Iterator[tuple[torch.Tensor, torch.Tensor, float]]:
    """One epoch of (x, y, share) for this rank: x float in [0, 1] on data's device, `share` the fraction of
    the global batch this rank holds (1 for a single process). A last global batch with fewer than two images
    per rank is dropped (BatchNorm needs two)."""
    world, r = world_size(), rank()
    device = data.y.device
    order, offsets, flips = epoch_draws(len(data), generator, augment, pad)
    order = order.to(device, non_blocking=True)
    if augment:
        offsets, flips = offsets.to(device, non_blocking=True), flips.to(device, non_blocking=True)
    for start in range(0, len(data), batch_size):
        n = min(batch_size, len(data) - start)
        if n < 2 * world:
            break
        part = shard(n, r, world)
        sl = slice(start + part.start, start + part.stop)
        x = data.images(order[sl])
        if augment:
            x = crop_flip(x, offsets[:, sl], flips[sl], pad)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        yield x, data.y[order[sl]], (part.stop - part.start) / n


def num_epoch_batches(n: int, batch_size: int) -> int:
    """Batches per epoch of `epoch_batches`."""
    full, rest = divmod(n, batch_size)
    return full + (1 if rest >= 2 * world_size() else 0)
