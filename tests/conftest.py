import os

import pytest
import torch
import torch.nn as nn

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

# A run small enough for a test: 256 multi-view training images, 2+2 epochs, PGD-2.
TINY = {
    "train_limit": 256, "val_size": 128, "test_limit": 128, "teacher_epochs": 2, "epochs": 2,
    "batch_size": 64, "attack_steps": 2, "val_attack_steps": 2, "eval_steps": 3, "progress": False,
}


@pytest.fixture
def tiny():
    return dict(TINY)


def tiny_trained_cnn(epochs: int = 6, seed: int = 0):
    """A small CNN trained cleanly on 1000 multi-view images: well above chance, not robust."""
    from cktat_core.data import load_splits
    from cktat_core.models import build_model

    torch.manual_seed(seed)
    s = load_splits("multiview", val_size=200, train_limit=1000, test_limit=256)
    model = build_model("small_cnn", 10)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    g = torch.Generator().manual_seed(seed)
    from cktat_core.data import batches
    for _ in range(epochs):
        for x, y in batches(s.train, 100, g):
            loss = torch.nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
    opt.zero_grad(set_to_none=True)
    return model.eval(), s


@pytest.fixture(scope="session")
def trained_cnn():
    return tiny_trained_cnn()


class CountForwards(nn.Module):
    """A wrapper with a side effect in forward: it counts its calls."""

    def __init__(self, model):
        super().__init__()
        self.model, self.calls = model, 0

    def forward(self, x):
        self.calls += 1
        return self.model(x)


def run_cut_after_epoch(monkeypatch, train_mod, cfg, out: str, epoch: int = 1) -> None:
    """Train `cfg` into `out` and stop it (KeyboardInterrupt) during the validation of epoch `epoch + 1`, after
    epoch `epoch`'s checkpoint is written: an interrupted run, left to be resumed."""
    calls, real_eval = {"n": 0}, train_mod.evaluate

    def crash(model, data, *a, **k):
        if len(data) == cfg.val_size:  # a validation pass, at the end of an epoch
            calls["n"] += 1
            if calls["n"] == epoch + 1:
                raise KeyboardInterrupt
        return real_eval(model, data, *a, **k)

    monkeypatch.setattr(train_mod, "evaluate", crash)
    with pytest.raises(KeyboardInterrupt):
        train_mod.run(cfg, out)
    monkeypatch.setattr(train_mod, "evaluate", real_eval)
