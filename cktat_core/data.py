"""Datasets as tensors: CIFAR-10/100 from the official python files, and the embedded multi-view dataset.

Whole datasets are float tensors in [0, 1] of shape (N, 3, 32, 32), so they can live on the GPU and be
batched, shuffled and augmented there (`batches`, `augment`). torchvision is only used, and only
imported, to download CIFAR when asked to (`download=True`) on a machine where it imports.

The multi-view dataset (`make_multiview`, SPEC 6) instantiates Definition A.1 of the CKTAT paper
(Allen-Zhu & Li's multi-view data) on 32x32 images: every class has two feature patterns, a fraction mu
of the samples is single-view (one feature at full strength, the other at rho), other classes' features
appear as weak distractors, and every sample records which kind it is.
"""

from __future__ import annotations

import functools
import math
import os
import pickle
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F

from .errors import DataError

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


@dataclass
class TensorData:
    """Images `x` (N,3,32,32) in [0,1], labels `y` (N,), boolean masks naming groups of samples, and, for the
    multi-view data, `layout` (N, 4, 4): the role of every patch of the grid (`PATCH_ROLES`), else None."""

    x: torch.Tensor
    y: torch.Tensor
    classes: tuple[str, ...]
    groups: dict[str, torch.Tensor] = field(default_factory=dict)
    layout: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.y)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def subset(self, idx: torch.Tensor) -> "TensorData":
        return TensorData(self.x[idx], self.y[idx], self.classes, {k: v[idx] for k, v in self.groups.items()},
                          None if self.layout is None else self.layout[idx])

    def head(self, n: int) -> "TensorData":
        """The first n samples (all of them when n is 0)."""
        return self if n <= 0 or n >= len(self) else self.subset(torch.arange(n))

    def to(self, device) -> "TensorData":
        return TensorData(self.x.to(device), self.y.to(device), self.classes,
                          {k: v.to(device) for k, v in self.groups.items()},
                          None if self.layout is None else self.layout.to(device))


# -------------------------------------------------------------------------------------------- CIFAR
_CIFAR = {
    "cifar10": ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], ["test_batch"], b"labels"),
    "cifar100": ("cifar-100-python", ["train"], ["test"], b"fine_labels"),
}


# The checkout holding this package: a relative data_dir is looked up in the working directory, then here, so the
# default "data" means <repository>/data from a notebook's folder too.
CHECKOUT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA_ENV = "CKTAT_DATA"  # a folder holding the datasets, used where data_dir is left at its default "data"


def data_roots(data_dir: str) -> list[str]:
    """Where `data_dir` may lie: `$CKTAT_DATA` for the default "data" when that variable is set, else data_dir as
    given and, when relative, under the checkout too."""
    if data_dir == "data" and os.environ.get(DATA_ENV):
        return [os.environ[DATA_ENV]]
    return [data_dir] + ([os.path.join(CHECKOUT, data_dir)] if not os.path.isabs(data_dir) else [])


def _cifar_folder(name: str, data_dir: str) -> str | None:
    folder = _CIFAR[name][0]
    for root in data_roots(data_dir):
        for cand in (os.path.join(root, folder), root):
            if os.path.isdir(cand) and os.path.basename(os.path.normpath(cand)) == folder:
                return cand
    return None


def cifar_provenance(dataset: str, data_dir: str = "data") -> dict | None:
    """What the README of a CIFAR folder says of its pixels, where it says it (the copy this book was built from):
    {"official_per_batch": the first images of every batch that are the official pixels, "psnr_db": the median PSNR
    of the others, JPEG re-encodings, against the official pixels}. None for the official download (no README) or
    a README that says neither."""
    import re

    folder = _cifar_folder(dataset, data_dir) if dataset in _CIFAR else None
    path = next((p for p in (os.path.join(folder, n) for n in ("README.md", "README")) if os.path.isfile(p)),
                None) if folder else None
    if path is None:
        return None
    with open(path, encoding="utf-8", errors="replace") as fh:
        text = " ".join(fh.read().split())
    first = re.search(r"first ([\d,]+) images of every batch are the official pixels", text)
    psnr = re.search(r"median PSNR of ([\d.]+) dB", text)
    if not first:
        return None
    return {"official_per_batch": int(first.group(1).replace(",", "")),
            "psnr_db": float(psnr.group(1)) if psnr else None}


def available(dataset: str, data_dir: str = "data") -> bool:
    """Whether `dataset` can be loaded without a download: the multi-view data always (it is generated), a CIFAR
    set when its folder is in `data_dir`."""
    return dataset in MULTIVIEW_DATASETS or (dataset in _CIFAR and _cifar_folder(dataset, data_dir) is not None)


def _download_cifar(name: str, data_dir: str) -> None:
    try:
        import torchvision  # noqa: F401  (only here: it fails to import with CPU-only torch builds)
        from torchvision import datasets
    except Exception as e:  # ImportError or a broken install
        raise DataError(
            f"{name}: download needs torchvision, which does not import here ({type(e).__name__}); "
            f"put the official python version of {name} in {data_dir}/{_CIFAR[name][0]} instead"
        ) from None
    cls = datasets.CIFAR10 if name == "cifar10" else datasets.CIFAR100
    try:
        cls(root=data_dir, train=True, download=True)
        cls(root=data_dir, train=False, download=True)
    except Exception as e:
        raise DataError(f"{name}: download into {data_dir} failed ({e})") from None


# Images per file of the official releases: a file holding fewer is a truncated copy, never read as a smaller set.
OFFICIAL_FILE_SIZE = {"cifar10": (10000, 10000), "cifar100": (50000, 10000)}  # (each training file, the test file)


# What an official CIFAR python batch holds besides dicts, lists, bytes and numbers: numpy arrays (rebuilt by
# `_reconstruct`), their dtypes, and numpy scalars. Anything else a pickle names is never called.
CIFAR_PICKLE_GLOBALS = {(module, name) for module in ("numpy.core.multiarray", "numpy._core.multiarray")
                        for name in ("_reconstruct", "scalar")} | {("numpy", "ndarray"), ("numpy", "dtype")}


class _ForeignPickle(Exception):
    def __init__(self, module: str, name: str):
        super().__init__(f"{module}.{name}")


class CifarUnpickler(pickle.Unpickler):
    """An unpickler that builds only what the official CIFAR batches hold (`CIFAR_PICKLE_GLOBALS`): a file naming any
    other callable or class (`os.system`, a class of another module) stops before anything it names runs."""

    def find_class(self, module: str, name: str):
        if (module, name) not in CIFAR_PICKLE_GLOBALS:
            raise _ForeignPickle(module, name)
        return super().find_class(module, name)


def _read_batch(name: str, fpath: str, folder: str, label_key: bytes, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """One official python batch file: (images (N, 3, 32, 32) uint8, labels (N,)); a file that is not one (not a
    pickle, a pickle that names anything but numpy's arrays, other keys, other shapes, labels out of range) is a
    DataError naming it. The file is read with `CifarUnpickler`: nothing in it runs."""
    try:
        with open(fpath, "rb") as fh:
            d = CifarUnpickler(fh, encoding="bytes").load()
    except FileNotFoundError:
        raise DataError(f"{name}: {fpath} is missing; the folder {folder} is incomplete") from None
    except _ForeignPickle as e:
        raise DataError(f"{name}: {fpath} is not a CIFAR python batch: it names {e}, which an official batch never "
                        f"holds; nothing in it was run") from None
    except Exception as e:
        raise DataError(f"{name}: {fpath} is not a CIFAR python batch ({type(e).__name__})") from None
    try:
        data = np.asarray(d[b"data"])
        labels = np.asarray(d[label_key])
    except Exception:
        raise DataError(f"{name}: {fpath} is not a {name} python batch (no {b'data'!r} and {label_key!r} "
                        f"entries)") from None
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072 or labels.shape != (len(data),):
        raise DataError(f"{name}: {fpath} is not a {name} python batch (data {data.dtype} {tuple(data.shape)}, "
                        f"{labels.size} labels; expected uint8 (N, 3072) and N labels)")
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        raise DataError(f"{name}: {fpath} has labels outside 0..{num_classes - 1}: not a {name} batch")
    return data.reshape(-1, 3, 32, 32), labels.astype(np.int64)


def _first(name: str, fpath: str, n_file: int, per_file: int, official: int, setting: str) -> int:
    """How many images to take from a file of `n_file`: the first `per_file`, or all of an official-sized file
    (per_file 0). A file too short for either is a DataError naming it: a truncated copy never becomes a smaller
    data set without a word."""
    if per_file and n_file >= per_file:
        return per_file
    if not per_file and n_file == official:
        return n_file
    want = f"the first {per_file}" if per_file else f"all {official} images of the official file"
    raise DataError(f"{name}: {fpath} holds {n_file} images and this run needs {want} ({setting}="
                    f"{per_file}); the file is truncated or not the official one. Use the official download, or set "
                    f"{setting} to at most {n_file} to use a part of every file knowingly")


def load_cifar(name: str, data_dir: str, train: bool, download: bool = False, per_file: int = 0) -> TensorData:
    """CIFAR-10 or CIFAR-100 from `data_dir` (the folder holding `cifar-10-batches-py`, or that folder).

    per_file: take the first `per_file` images of every file of the split, in the official order (CIFAR-10's five
    training batches, or its one test batch), so that any copy holding at least those images selects the same ones;
    0 takes every image and requires each file to hold the official count. Files too short for that, or not CIFAR
    batches, are a DataError naming the file.
    """
    folder, train_files, test_files, label_key = _CIFAR[name]
    path = _cifar_folder(name, data_dir)
    where = os.path.abspath(data_roots(data_dir)[-1])
    if path is None and download:
        _download_cifar(name, where)
        path = _cifar_folder(name, data_dir)
    if path is None:
        raise DataError(
            f"{name} not found: put the official python version (folder {folder}) in {where} (or point at its "
            f"parent: --set data_dir=DIR, --data-dir DIR for eval, or ${DATA_ENV}=DIR), or download it with "
            f"--set download=true where torchvision imports and the internet is reachable"
        )
    classes = CIFAR10_CLASSES if name == "cifar10" else tuple(str(i) for i in range(100))
    official = OFFICIAL_FILE_SIZE[name][0 if train else 1]
    setting = "train_per_file" if train else "test_limit"
    xs, ys = [], []
    for fname in train_files if train else test_files:
        fpath = os.path.join(path, fname)
        data, labels = _read_batch(name, fpath, path, label_key, len(classes))
        n = _first(name, fpath, len(data), per_file, official, setting)
        xs.append(data[:n])
        ys.append(labels[:n])
    x = torch.from_numpy(np.concatenate(xs)).float().div_(255)
    y = torch.from_numpy(np.concatenate(ys))
    return TensorData(x, y, classes)


# ------------------------------------------------------------------------------------ multi-view data
@dataclass(frozen=True)
class MultiViewSpec:
    """Parameters of the multi-view dataset (SPEC 6). Pixel amplitudes are in centred units (before
    `x = 0.5 + scale * x_centred`); `eps_centred` is the L-inf budget in those units."""

    num_classes: int = 10
    n_train: int = 4000
    n_test: int = 2000
    patch: int = 8  # features live on a 4x4 grid of 8x8 patches
    patches_per_feature: int = 2
    amp1: float = 1.0  # pixel RMS of feature 1 (bright)
    amp2: float = 0.3  # pixel RMS of feature 2 (dim in pixels, still robustly usable: chapter 01)
    coef_low: float = 0.5  # per-patch coefficients ~ U[coef_low, coef_high]
    coef_high: float = 1.0
    rho: float = 0.1  # strength of the weak feature of a single-view sample
    gamma: float = 0.2  # strength of distractor features (other classes)
    distractor_prob: float = 0.2  # each other-class feature appears with this probability
    mu: float = 0.5  # fraction of single-view samples
    noise: float = 0.2  # Gaussian pixel noise
    scale: float = 1 / 8  # centred units -> [0, 1] pixels
    eps_centred: float = 0.05  # moves a feature-2 coefficient by about 0.13 (chapter 01 computes it)
    pattern_seed: int = 1234

    @property
    def eps(self) -> float:
        return self.eps_centred * self.scale


MULTIVIEW = MultiViewSpec()

# What a patch of the multi-view grid holds (the values of `TensorData.layout`): nothing but noise, one of the
# image's own class's feature-1 or feature-2 patches (also when that feature is weak), or a distractor (a feature
# of another class). A probe image's absent feature is placed with coefficient 0 and counts as "rest".
PATCH_ROLES = ("rest", "feature 1", "feature 2", "distractor")
REST, FEATURE_1, FEATURE_2, DISTRACTOR = range(len(PATCH_ROLES))


def feature_patterns(spec: MultiViewSpec = MULTIVIEW) -> torch.Tensor:
    """(num_classes, 2, 3, p, p): orthonormalised random patterns, feature l scaled to pixel RMS amp_l."""
    d = 3 * spec.patch * spec.patch
    g = np.random.default_rng(spec.pattern_seed).standard_normal((d, 2 * spec.num_classes))
    q, _ = np.linalg.qr(g)  # orthonormal columns
    v = torch.from_numpy(q.T.copy()).float().view(spec.num_classes, 2, 3, spec.patch, spec.patch) * math.sqrt(d)
    return v * torch.tensor([spec.amp1, spec.amp2]).view(1, 2, 1, 1, 1)


def coefficient_movement(spec: MultiViewSpec = MULTIVIEW) -> list[dict]:
    """How far an L-inf attack within the budget can move each feature's coefficient, per patch.

    The coefficient of pattern v on a patch x (centred units) is <x, v> / ||v||^2, and a perturbation with
    |delta_i| <= eps_centred changes it by at most eps ||v||_1 / ||v||^2 (delta = eps sign(v)), computed here from
    the dataset's actual patterns (the largest over the classes). One row per feature: that movement, the own
    coefficients' range [coef_low, coef_high], the strongest distractor coefficient gamma * coef_high, and the
    margin left after the attack between the weakest own patch (coef_low - move) and the strongest patch the
    attacker can make of another class's feature (a distractor raised to gamma * coef_high + move). A positive
    margin means a per-patch detector can still tell the class's own feature from a planted one.
    """
    v = feature_patterns(spec).flatten(2)  # (classes, 2, pixels)
    move = spec.eps_centred * v.abs().sum(-1) / v.pow(2).sum(-1)
    rows = []
    for f, amp in ((1, spec.amp1), (2, spec.amp2)):
        m = float(move[:, f - 1].max())
        planted = spec.gamma * spec.coef_high + m
        rows.append({"feature": f, "pixel_rms": amp, "move": m, "own_low": spec.coef_low, "own_high": spec.coef_high,
                     "distractor_high": spec.gamma * spec.coef_high, "weakest_after": spec.coef_low - m,
                     "planted_after": planted, "margin": spec.coef_low - m - planted})
    return rows


@functools.lru_cache(maxsize=8)
def make_multiview(n: int, seed: int, spec: MultiViewSpec = MULTIVIEW, probe: int = 0) -> TensorData:
    """n samples of the multi-view distribution (Definition A.1 / A.2).

    probe=0: the mixture (fraction mu single-view). probe=1 or 2: "probe" images carrying only feature
    `probe` of their class at full strength, the other absent, to test which features a model uses.
    Groups: single_view, multi_view, weak_f1 / weak_f2 (single-view with that feature weak). `layout` records
    the role of each patch of the grid (`PATCH_ROLES`), so attributions can be checked against where the
    features are; recording it draws no random number, so the images are those of the generator without it.
    The result is cached; treat its tensors as read-only.
    """
    rng = np.random.default_rng(seed)
    k, p = spec.num_classes, spec.patch
    grid = 32 // p
    patterns = feature_patterns(spec).numpy()
    x = np.zeros((n, 3, 32, 32), dtype=np.float32)
    y = rng.integers(0, k, n)
    weak = np.zeros(n, dtype=np.int64)  # 0: multi-view; 1 or 2: single-view with that feature weak
    layout = np.full((n, grid, grid), REST, dtype=np.int8)
    for i in range(n):
        if probe:
            strength = {probe: 1.0, 3 - probe: 0.0}
        else:
            if rng.random() < spec.mu:
                weak[i] = rng.integers(1, 3)
            strength = {1: spec.rho if weak[i] == 1 else 1.0, 2: spec.rho if weak[i] == 2 else 1.0}
        free = list(rng.permutation(grid * grid))
        placed = []  # (cell, pattern, coefficient, role)
        for f in (1, 2):
            for _ in range(spec.patches_per_feature):
                coef = rng.uniform(spec.coef_low, spec.coef_high) * strength[f]
                role = (FEATURE_1, FEATURE_2)[f - 1] if coef > 0 else REST
                placed.append((free.pop(), patterns[y[i], f - 1], coef, role))
        for j in range(k):
            if j == y[i]:
                continue
            for f in (1, 2):
                if rng.random() < spec.distractor_prob and free:
                    coef = spec.gamma * rng.uniform(spec.coef_low, spec.coef_high)
                    placed.append((free.pop(), patterns[j, f - 1], coef, DISTRACTOR))
        for cell, pattern, coef, role in placed:
            r, c = divmod(int(cell), grid)
            x[i, :, r * p:(r + 1) * p, c * p:(c + 1) * p] += coef * pattern
            layout[i, r, c] = role
    x += spec.noise * rng.standard_normal(x.shape).astype(np.float32)
    images = torch.from_numpy(x).mul_(spec.scale).add_(0.5).clamp_(0, 1)
    weak_t = torch.from_numpy(weak)
    groups = {
        "single_view": weak_t > 0,
        "multi_view": weak_t == 0,
        "weak_f1": weak_t == 1,
        "weak_f2": weak_t == 2,
    }
    classes = tuple(f"class{j}" for j in range(k))
    return TensorData(images, torch.from_numpy(y).long(), classes, {} if probe else groups, torch.from_numpy(layout))


# ------------------------------------------------------------------------------------------- loading
def dataset_defaults(name: str) -> dict:
    """Threat-model and augmentation defaults that depend on the dataset."""
    if name in MULTIVIEW_DATASETS:
        return {"eps": MULTIVIEW.eps, "eps_l2": MULTIVIEW.eps * math.sqrt(3 * 32 * 32) / 4, "augment": False,
                "num_classes": MULTIVIEW.num_classes}
    return {"eps": 8 / 255, "eps_l2": 128 / 255, "augment": True, "num_classes": 100 if name == "cifar100" else 10}


@dataclass
class Splits:
    train: TensorData
    val: TensorData
    test: TensorData
    probes: dict[str, TensorData] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return self.train.num_classes


def split_validation(data: TensorData, val_size: int, seed: int = 0) -> tuple[TensorData, TensorData]:
    """Hold out `val_size` training images, chosen by a fixed seed so every run shares the same split."""
    if val_size >= len(data):
        raise DataError(f"val_size={val_size} leaves no training data (the training set has {len(data)} images)")
    perm = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))
    return data.subset(perm[val_size:].sort().values), data.subset(perm[:val_size].sort().values)


MULTIVIEW_DATASETS = {"multiview": 0, "multiview_f2": 2}  # name -> probe: the mixture, or feature 2 alone


def load_splits(dataset: str, data_dir: str = "data", val_size: int = 1000, train_limit: int = 0,
                test_limit: int = 0, download: bool = False, train_per_file: int = 0) -> Splits:
    """Train / validation / test tensors (and, for the multi-view data, the probe sets).

    "multiview_f2" is the multi-view data with feature 2 alone in every image (the probe distribution), for
    training: it asks whether feature 2 can be learned robustly at all (chapter 01). CIFAR: `train_per_file` images
    of every official training file (0: all, `load_cifar`), then the validation split is held out of them.
    """
    if dataset in MULTIVIEW_DATASETS:
        full = make_multiview(MULTIVIEW.n_train, seed=1, probe=MULTIVIEW_DATASETS[dataset])
    elif dataset in _CIFAR:
        full = load_cifar(dataset, data_dir, train=True, download=download, per_file=train_per_file)
    else:
        raise DataError(f"dataset: unknown dataset {dataset!r}; known: {', '.join([*MULTIVIEW_DATASETS, *_CIFAR])}")
    test, probes = load_test(dataset, data_dir, test_limit, download)
    train, val = split_validation(full, val_size)
    return Splits(train.head(train_limit), val, test, probes)


def load_test(dataset: str, data_dir: str = "data", limit: int = 0,
              download: bool = False) -> tuple[TensorData, dict[str, TensorData]]:
    """The test set (first `limit` images) and, for the multi-view data, the probe sets."""
    if dataset in MULTIVIEW_DATASETS:
        n = MULTIVIEW.n_test
        probes = {"probe_f1": make_multiview(n // 2, seed=3, probe=1).head(limit),
                  "probe_f2": make_multiview(n // 2, seed=4, probe=2).head(limit)}
        return make_multiview(n, seed=2, probe=MULTIVIEW_DATASETS[dataset]).head(limit), probes
    if dataset in _CIFAR:  # the test set is one file: its first `limit` images
        return load_cifar(dataset, data_dir, train=False, download=download, per_file=limit), {}
    raise DataError(f"dataset: unknown dataset {dataset!r}; known: {', '.join([*MULTIVIEW_DATASETS, *_CIFAR])}")


# --------------------------------------------------------------------------------- batches, augment
def augment(x: torch.Tensor, generator: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Random crop with `pad` zero padding and random horizontal flip, for a whole batch at once.

    Random numbers come from the CPU `generator` (so checkpoints can store its state); the gather runs
    on x's device.
    """
    b = len(x)
    offsets = torch.randint(0, 2 * pad + 1, (2, b), generator=generator).to(x.device)
    flip = (torch.rand(b, generator=generator) < 0.5).to(x.device)
    return crop_flip(x, offsets, flip, pad)


def crop_flip(x: torch.Tensor, offsets: torch.Tensor, flip: torch.Tensor, pad: int = 4) -> torch.Tensor:
    """Window (offsets[0], offsets[1]) of x zero-padded by `pad`, mirrored where `flip`; all on x's device (the
    gather that `augment` and the on-device batches of `device_data` share)."""
    b, c, h, w = x.shape
    xp = F.pad(x, (pad, pad, pad, pad))
    rows = offsets[0, :, None] + torch.arange(h, device=x.device)
    cols = offsets[1, :, None] + torch.arange(w, device=x.device)
    cols = torch.where(flip[:, None], cols.flip(1), cols)
    bi = torch.arange(b, device=x.device)[:, None, None, None]
    ci = torch.arange(c, device=x.device)[None, :, None, None]
    return xp[bi, ci, rows[:, None, :, None], cols[:, None, None, :]]


def batches(data: TensorData, batch_size: int, generator: torch.Generator | None = None,
            shuffle: bool = True, augment_data: bool = False) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(x, y) batches on data's device. A last batch of a single image is dropped (BatchNorm needs two)."""
    n = len(data)
    if shuffle:
        order = torch.randperm(n, generator=generator).to(data.y.device)
    else:
        order = torch.arange(n, device=data.y.device)
    for start in range(0, n, batch_size):
        idx = order[start:start + batch_size]
        if shuffle and len(idx) < 2:
            break
        x = data.x[idx]
        if augment_data:
            x = augment(x, generator)
        yield x, data.y[idx]


def num_batches(n: int, batch_size: int) -> int:
    full, rest = divmod(n, batch_size)
    return full + (1 if rest >= 2 else 0)
