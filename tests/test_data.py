import os
import pickle

import numpy as np
import pytest
import torch

from cktat_core.data import (MULTIVIEW, augment, batches, feature_patterns, load_cifar, load_splits,
                             make_multiview, num_batches, split_validation)
from cktat_core.errors import DataError


def test_feature_patterns_are_orthogonal_with_the_set_amplitudes():
    v = feature_patterns().flatten(2)  # (k, 2, d)
    flat = v.reshape(-1, v.shape[-1])
    gram = flat @ flat.T
    off = gram - torch.diag(torch.diag(gram))
    assert off.abs().max() < 1e-3
    rms = v.pow(2).mean(-1).sqrt()
    assert torch.allclose(rms[:, 0], torch.full((10,), MULTIVIEW.amp1), atol=1e-4)
    assert torch.allclose(rms[:, 1], torch.full((10,), MULTIVIEW.amp2), atol=1e-4)


def test_multiview_groups_are_consistent_and_seeded():
    d = make_multiview(600, seed=11)
    g = d.groups
    assert torch.equal(g["single_view"], g["weak_f1"] | g["weak_f2"])
    assert not (g["weak_f1"] & g["weak_f2"]).any()
    assert torch.equal(g["multi_view"], ~g["single_view"])
    frac = g["single_view"].float().mean().item()
    assert abs(frac - MULTIVIEW.mu) < 0.08
    assert d.x.min() >= 0 and d.x.max() <= 1 and d.x.shape == (600, 3, 32, 32)
    again = make_multiview.__wrapped__(600, seed=11)
    assert torch.equal(again.x, d.x) and torch.equal(again.y, d.y)
    other = make_multiview.__wrapped__(600, seed=12)
    assert not torch.equal(other.x, d.x)


def _feature_energy(d, cls_feature):
    """Projection energy of every image onto a given class-feature pattern, maximised over patch cells."""
    v = feature_patterns()[cls_feature[0], cls_feature[1]].flatten()
    v = v / v.norm()
    xc = (d.x - 0.5) / MULTIVIEW.scale
    cells = xc.unfold(2, 8, 8).unfold(3, 8, 8)  # (n, 3, 4, 4, 8, 8)
    cells = cells.permute(0, 2, 3, 1, 4, 5).reshape(len(d), 16, -1)
    return (cells @ v).max(1).values


def test_weak_feature_is_weak_and_probes_hold_one_feature():
    d = make_multiview(800, seed=5)
    cls = 3
    sel = d.y == cls
    e1 = _feature_energy(d, (cls, 0))[sel]
    weak1 = d.groups["weak_f1"][sel]
    assert e1[weak1].mean() < 0.3 * e1[~weak1].mean()
    p2 = make_multiview.__wrapped__(400, seed=6, probe=2)
    sel2 = p2.y == cls
    assert _feature_energy(p2, (cls, 0))[sel2].mean() < 0.2 * e1[~weak1].mean()  # feature 1 absent
    assert _feature_energy(p2, (cls, 1))[sel2].mean() > 1.0  # feature 2 present


def test_augment_is_a_shifted_window_or_its_mirror():
    x = torch.rand(64, 3, 32, 32)
    out = augment(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    xp = torch.nn.functional.pad(x, (4, 4, 4, 4))
    flips = 0
    for i in range(64):
        found = False
        for dy in range(9):
            for dx in range(9):
                win = xp[i, :, dy:dy + 32, dx:dx + 32]
                if torch.equal(out[i], win):
                    found = True
                elif torch.equal(out[i], win.flip(-1)):
                    found, flips = True, flips + 1
                if found:
                    break
            if found:
                break
        assert found, i
    assert 10 < flips < 54  # about half are mirrored


def test_batches_cover_each_sample_once_and_are_seeded():
    d = make_multiview(130, seed=7)
    seen = torch.cat([y for _, y in batches(d, 64, torch.Generator().manual_seed(0))])
    assert len(seen) == 130 and num_batches(130, 64) == 3
    a = [x for x, _ in batches(d, 64, torch.Generator().manual_seed(3))]
    b = [x for x, _ in batches(d, 64, torch.Generator().manual_seed(3))]
    assert all(torch.equal(p, q) for p, q in zip(a, b))
    # a final batch of one image is dropped (BatchNorm needs two)
    assert sum(len(y) for _, y in batches(d.head(129), 64, torch.Generator())) == 128


def test_validation_split_is_disjoint_and_fixed():
    d = make_multiview(300, seed=8)
    tr, va = split_validation(d, 50)
    tr2, va2 = split_validation(d, 50)
    assert len(tr) == 250 and len(va) == 50 and torch.equal(va.x, va2.x)
    flat_tr = {tuple(r) for r in tr.x.flatten(1)[:, :8].tolist()}
    assert not any(tuple(r) in flat_tr for r in va.x.flatten(1)[:, :8].tolist())
    with pytest.raises(DataError):
        split_validation(d, 300)


def _write_fake_cifar(root, n=20):
    folder = os.path.join(root, "cifar-10-batches-py")
    os.makedirs(folder)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        d = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), b"labels": list(rng.integers(0, 10, n))}
        with open(os.path.join(folder, name), "wb") as fh:
            pickle.dump(d, fh)
    return folder


def test_cifar_loader_reads_the_official_format(tmp_path):
    folder = _write_fake_cifar(str(tmp_path))
    with open(os.path.join(folder, "data_batch_2"), "rb") as fh:
        raw = pickle.load(fh, encoding="bytes")
    train = load_cifar("cifar10", str(tmp_path), train=True, per_file=20)
    assert len(train) == 100 and train.x.dtype == torch.float32
    first = torch.from_numpy(raw[b"data"][0].reshape(3, 32, 32)).float() / 255
    assert torch.allclose(train.x[20], first)
    assert train.y[20].item() == raw[b"labels"][0]
    # the batches folder itself works as data_dir too
    assert len(load_cifar("cifar10", folder, train=False, per_file=20)) == 20
    s = load_splits("cifar10", str(tmp_path), val_size=10, test_limit=20, train_per_file=20)
    assert (len(s.train), len(s.val), len(s.test)) == (90, 10, 20)


def test_per_file_selection_takes_the_first_images_of_every_file_in_order(tmp_path):
    """The real-image profile's rule (the first N of each official batch): a copy holding more images per file
    selects the same ones."""
    _write_fake_cifar(str(tmp_path))
    train = load_cifar("cifar10", str(tmp_path), train=True, per_file=5)
    full = load_cifar("cifar10", str(tmp_path), train=True, per_file=20)
    assert len(train) == 25
    for b in range(5):
        assert torch.equal(train.x[5 * b:5 * b + 5], full.x[20 * b:20 * b + 5])
        assert torch.equal(train.y[5 * b:5 * b + 5], full.y[20 * b:20 * b + 5])


def test_a_truncated_copy_is_an_error_naming_the_file_never_a_smaller_data_set(tmp_path):
    _write_fake_cifar(str(tmp_path))
    with pytest.raises(DataError) as e:  # every image asked for: each file must hold the official 10,000
        load_cifar("cifar10", str(tmp_path), train=True)
    assert "data_batch_1 holds 20 images" in str(e.value) and "10000" in str(e.value)
    with pytest.raises(DataError) as e:
        load_cifar("cifar10", str(tmp_path), train=True, per_file=25)
    assert "data_batch_1" in str(e.value) and "first 25" in str(e.value)
    with pytest.raises(DataError) as e:
        load_splits("cifar10", str(tmp_path), val_size=10, test_limit=30, train_per_file=20)
    assert "test_batch holds 20 images" in str(e.value)


@pytest.mark.parametrize("content, words", [
    ({b"data": np.zeros((20, 100), dtype=np.uint8), b"labels": [0] * 20}, "uint8 (N, 3072)"),
    ({b"data": np.zeros((20, 3072), dtype=np.uint8), b"labels": [12] * 20}, "labels outside 0..9"),
    ({b"pixels": np.zeros((20, 3072), dtype=np.uint8)}, "not a cifar10 python batch"),
    ([1, 2, 3], "not a cifar10 python batch"),
])
def test_a_foreign_file_is_one_clear_error_naming_it(tmp_path, content, words):
    folder = _write_fake_cifar(str(tmp_path))
    with open(os.path.join(folder, "data_batch_4"), "wb") as fh:
        pickle.dump(content, fh)
    with pytest.raises(DataError) as e:
        load_cifar("cifar10", str(tmp_path), train=True, per_file=20)
    assert "data_batch_4" in str(e.value) and words in str(e.value)


class _CreatesAFile:
    """Unpickled, it would call open(path, "w"): a file appears where nothing should run."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_a_pickle_that_would_run_code_is_refused_before_anything_runs(tmp_path, capsys):
    """A batch file naming a callable (here `open`, which would create a file) is one error naming the file and
    what it held; the callable never runs, from the library or from `cktat train` (exit 2, one line)."""
    from cktat_core.cli import main

    folder = _write_fake_cifar(str(tmp_path))
    marker = tmp_path / "created"
    with open(os.path.join(folder, "data_batch_1"), "wb") as fh:
        pickle.dump({b"data": _CreatesAFile(str(marker)), b"labels": [0]}, fh)
    with pytest.raises(DataError) as e:
        load_cifar("cifar10", str(tmp_path), train=True, per_file=20)
    assert "data_batch_1" in str(e.value) and "names io.open" in str(e.value)
    assert not marker.exists()
    assert main(["train", "--profile", "cpu", "--out", str(tmp_path / "run"), "--set", f"data_dir={tmp_path}",
                 "train_per_file=20", "epochs=1", "teacher_epochs=1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "data_batch_1" in err[0] and "names io.open" in err[0]
    assert not marker.exists()
    # the official format still loads: numpy arrays, dtypes and numpy scalars are what it holds
    assert len(load_cifar("cifar10", str(tmp_path), train=False, per_file=20)) == 20


def test_the_data_folder_is_found_from_any_working_directory_and_through_the_environment(tmp_path, monkeypatch):
    from cktat_core import data

    _write_fake_cifar(str(tmp_path))
    monkeypatch.setenv(data.DATA_ENV, str(tmp_path))
    monkeypatch.chdir("/")
    assert len(load_cifar("cifar10", "data", train=False, per_file=20)) == 20
    monkeypatch.delenv(data.DATA_ENV)
    assert data.data_roots("data")[-1] == os.path.join(data.CHECKOUT, "data")


def test_missing_cifar_says_where_to_put_it(tmp_path):
    with pytest.raises(DataError) as e:
        load_cifar("cifar10", str(tmp_path / "nowhere"), train=True)
    assert "cifar-10-batches-py" in str(e.value) and "data_dir" in str(e.value)


def test_download_without_torchvision_is_a_clear_error(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_torchvision(name, *a, **k):
        if name.startswith("torchvision"):
            raise ImportError("no torchvision here")
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_torchvision)
    with pytest.raises(DataError) as e:
        load_cifar("cifar10", str(tmp_path), train=True, download=True)
    assert "torchvision" in str(e.value)


def test_corrupt_cifar_batch_is_a_clear_error(tmp_path):
    folder = _write_fake_cifar(str(tmp_path))
    with open(os.path.join(folder, "data_batch_3"), "wb") as fh:
        fh.write(b"not a pickle")
    with pytest.raises(DataError) as e:
        load_cifar("cifar10", str(tmp_path), train=True, per_file=20)
    assert "data_batch_3" in str(e.value)


def test_package_import_does_not_import_torchvision():
    import subprocess
    import sys

    code = "import sys, cktat_core, cktat_core.cli, cktat_core.train, cktat_core.data; print('torchvision' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
