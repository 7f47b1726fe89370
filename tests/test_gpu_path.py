"""The GPU fast path, checked on the CPU: the precision chosen per device (capabilities mocked), the on-device
batches and augmentation, float32 evaluation, and `cktat bench`."""

import json

import pytest
import torch

from conftest import run_cut_after_epoch
from cktat_core import runtime, train as train_mod
from cktat_core.bench import PEAK_TFLOPS, format_report, peak_tflops, run_bench
from cktat_core.cli import main
from cktat_core.config import Config, from_profile
from cktat_core.data import TensorData, augment
from cktat_core.device_data import DeviceData, crop_flip, epoch_batches, epoch_draws, num_epoch_batches
from cktat_core.errors import ConfigError
from cktat_core.methods import METHODS

CUDA = torch.device("cuda")
CPU = torch.device("cpu")


# ------------------------------------------------------------------------------------------ precision
@pytest.mark.parametrize("capability, dtype, scaler", [
    ((9, 0), torch.bfloat16, False),  # H100
    ((8, 0), torch.bfloat16, False),  # A100
    ((8, 9), torch.bfloat16, False),  # L4
    ((7, 5), torch.float16, True),  # T4 (Colab)
    ((7, 0), torch.float16, True),  # V100
])
def test_cuda_precision_follows_the_card(capability, dtype, scaler):
    p = runtime.training_precision(True, "auto", CUDA, capability)
    assert (p.dtype, p.scaler, p.device_type) == (dtype, scaler, "cuda")


def test_capability_is_read_from_the_device_when_not_given(monkeypatch):
    seen = []
    monkeypatch.setattr(runtime, "cuda_capability", lambda d: seen.append(d) or (7, 5))
    p = runtime.precision_of(Config(), CUDA)
    assert seen == [CUDA] and p.name == "fp16" and p.scaler
    monkeypatch.setattr(runtime, "cuda_capability", lambda d: (9, 0))
    assert runtime.precision_of(Config(), CUDA).name == "bf16"


def test_cpu_trains_in_bf16_only_where_it_has_bf16_instructions_and_amp_off_is_float32():
    assert runtime.training_precision(True, "auto", CPU, cpu_bf16=False).name == "fp32"
    assert runtime.training_precision(True, "bf16", CPU, cpu_bf16=False).name == "fp32"
    assert runtime.training_precision(True, "auto", CPU, cpu_bf16=True).name == "bf16"
    assert runtime.training_precision(True, "fp16", CPU, cpu_bf16=True).name == "fp32"  # no fp16 path on a CPU
    assert not runtime.training_precision(True, "auto", CPU, cpu_bf16=True).scaler
    assert runtime.training_precision(False, "auto", CPU, cpu_bf16=True).name == "fp32"
    assert runtime.training_precision(False, "auto", CUDA, (9, 0)).name == "fp32"
    assert not runtime.training_precision(False, "fp16", CUDA, (7, 5)).scaler


def test_amp_dtype_forces_a_precision_and_bad_values_are_one_clear_error():
    assert runtime.training_precision(True, "fp16", CUDA, (9, 0)).scaler
    assert runtime.training_precision(True, "bf16", CUDA, (7, 5)).name == "bf16"
    with pytest.raises(ConfigError, match="amp_dtype"):
        runtime.training_precision(True, "fp8", CPU)


def test_grad_scaler_only_for_fp16():
    assert runtime.grad_scaler(runtime.training_precision(True, "auto", CUDA, (9, 0))) is None
    assert isinstance(runtime.grad_scaler(runtime.Precision(torch.float16, True, "cpu")), torch.amp.GradScaler)


def test_device_switch_defaults_are_the_fast_ones_per_device():
    cfg = Config()
    assert runtime.uses_device_data(cfg, CUDA) and not runtime.uses_device_data(cfg, CPU)
    assert runtime.uses_device_data(cfg.replace(device_data=True), CPU)
    assert not runtime.uses_device_data(cfg.replace(device_data=False), CUDA)
    assert runtime.uses_channels_last(cfg, CUDA) and runtime.uses_channels_last(cfg, CPU)
    assert not runtime.uses_channels_last(cfg.replace(channels_last=False), CPU)
    assert not cfg.compile


def test_compile_flag_compiles_in_place():
    net = torch.nn.Linear(2, 2)
    calls = []
    net.compile = lambda *a, **k: calls.append(1)
    assert runtime.maybe_compile(net, Config()) is net and calls == []
    assert runtime.maybe_compile(net, Config(compile=True)) is net and calls == [1]


def test_evaluation_precision_switches_autocast_off():
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.is_autocast_enabled("cpu")
        with runtime.evaluation_precision(CPU):
            assert not torch.is_autocast_enabled("cpu")
            assert torch.nn.Linear(3, 3)(torch.rand(2, 3)).dtype == torch.float32


class _SpyMethod:
    """A method that records, at every training step, whether CPU autocast is on; otherwise the real method."""

    def __init__(self, real, seen):
        self._real, self._seen = real, seen

    def __getattr__(self, name):
        return getattr(self._real, name)

    def step(self, ctx, x, y):
        self._seen.append(torch.is_autocast_enabled("cpu"))
        return self._real.step(ctx, x, y)


def _spy_step(monkeypatch, name, seen):
    monkeypatch.setitem(train_mod.METHODS, name, _SpyMethod(METHODS[name], seen))


def test_training_steps_use_autocast_and_no_evaluation_does(tiny, tmp_path, monkeypatch):
    """bf16 autocast forced on the CPU: the steps run in it, validation and test evaluation do not."""
    monkeypatch.setattr(train_mod, "precision_of", lambda cfg, device: runtime.Precision(torch.bfloat16, False, "cpu"))
    steps, evals = [], []
    _spy_step(monkeypatch, "pgdat", steps)
    real_eval = train_mod.evaluate

    def spy_eval(*a, **k):
        evals.append(torch.is_autocast_enabled("cpu"))
        return real_eval(*a, **k)
    monkeypatch.setattr(train_mod, "evaluate", spy_eval)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # even a caller's autocast does not reach evaluation
        train_mod.run(from_profile("smoke", dict(tiny, method="pgdat", epochs=1)), str(tmp_path / "r"))
    assert steps and all(steps)
    assert len(evals) >= 2 and not any(evals)  # one validation, the final test evaluation(s)


def test_fp16_scaler_state_is_checkpointed_and_restored_on_resume(tiny, tmp_path, monkeypatch):
    """The gradient scaler (fp16 on older GPUs, forced here on the CPU) counts its successful steps; a run cut off
    after its first epoch and resumed ends with the count of both epochs, so the scaler was restored, not new."""
    monkeypatch.setattr(train_mod, "precision_of", lambda cfg, device: runtime.Precision(None, True, "cpu"))
    cfg = from_profile("smoke", dict(tiny, method="pgdat", epochs=2))
    run_cut_after_epoch(monkeypatch, train_mod, cfg, str(tmp_path / "r"))
    path = str(tmp_path / "r" / "student" / "last.pt")
    cut = torch.load(path, weights_only=True)
    steps = cut["scaler"]["_growth_tracker"]
    assert cut["epoch"] == 1 and steps > 0 and cut["scaler"]["scale"] > 0
    train_mod.run(cfg, str(tmp_path / "r"))
    assert torch.load(path, weights_only=True)["scaler"]["_growth_tracker"] == 2 * steps


# ------------------------------------------------------------------------------ on-device augmentation
def _windows(x):
    """Every crop(pad 4)+flip of a one-image batch, keyed by its bytes -> (row offset, column offset, flip)."""
    table = {}
    for dr in range(9):
        for dc in range(9):
            for f in (False, True):
                w = crop_flip(x, torch.tensor([[dr], [dc]]), torch.tensor([f]))[0]
                table[w.numpy().tobytes()] = (dr, dc, f)
    assert len(table) == 9 * 9 * 2  # every window is distinguishable
    return table


def _draws_of(outputs, table):
    return [table[o.numpy().tobytes()] for o in outputs]  # a KeyError: not a window within the padding


def test_on_device_augmentation_has_the_cpu_paths_distribution():
    n = 1800
    img = ((torch.arange(3 * 32 * 32) % 251 + 1).float() / 255).view(1, 3, 32, 32)
    table = _windows(img)
    data = TensorData(img.expand(n, -1, -1, -1).clone(), torch.arange(n), tuple("0123456789"))
    dev = DeviceData.from_tensor_data(data, CPU)
    assert dev.x.dtype == torch.uint8  # k/255 images are stored exactly as uint8
    on_device = [o for x, y, share in epoch_batches(dev, 256, torch.Generator().manual_seed(1), augment=True)
                 for o in x]
    cpu = [o for o in augment(data.x, torch.Generator().manual_seed(2))]
    paths = {"device": _draws_of(on_device, table), "cpu": _draws_of(cpu, table)}
    hist = {}
    for name, draws in paths.items():
        assert len(draws) == n
        flips = sum(f for _, _, f in draws) / n
        assert abs(flips - 0.5) < 4 * (0.25 / n) ** 0.5  # flips half the time
        rows = torch.bincount(torch.tensor([d[0] for d in draws]), minlength=9).float() / n
        cols = torch.bincount(torch.tensor([d[1] for d in draws]), minlength=9).float() / n
        assert len(rows) == len(cols) == 9  # offsets in [0, 8]: crops within the padding
        assert (rows - 1 / 9).abs().max() < 0.04 and (cols - 1 / 9).abs().max() < 0.04  # uniform
        hist[name] = torch.cat([rows, cols])
    assert (hist["device"] - hist["cpu"]).abs().max() < 0.05  # the two paths agree (4.7 standard errors)


def test_epoch_batches_visit_every_image_once_and_follow_the_generator():
    data = TensorData(torch.rand(70, 3, 32, 32), torch.arange(70), tuple("0123456789"))
    dev = DeviceData.from_tensor_data(data, CPU)
    assert dev.x.dtype == torch.float32  # not k/255: kept as float, no precision lost
    seen = [(x, y, s) for x, y, s in epoch_batches(dev, 32, torch.Generator().manual_seed(0))]
    assert len(seen) == num_epoch_batches(70, 32) == 3
    assert sorted(torch.cat([y for _, y, _ in seen]).tolist()) == list(range(70))
    assert all(s == 1.0 for _, _, s in seen)
    for x, y, _ in seen:
        assert torch.equal(x, data.x[y])  # un-augmented: the images themselves
    order, _, _ = epoch_draws(70, torch.Generator().manual_seed(0), augment=False)
    assert torch.equal(torch.cat([y for _, y, _ in seen]), order)  # the checkpointed generator decides


def test_epoch_batches_drop_a_last_batch_of_one():
    data = TensorData(torch.rand(65, 3, 32, 32), torch.arange(65), tuple("0123456789"))
    batches = list(epoch_batches(DeviceData.from_tensor_data(data, CPU), 32, torch.Generator().manual_seed(0)))
    assert [len(y) for _, y, _ in batches] == [32, 32]


def test_device_data_training_resumes_exactly(tiny, tmp_path, monkeypatch):
    cfg = from_profile("smoke", dict(tiny, method="pgdat", epochs=2, augment=True, device_data=True))
    full = train_mod.run(cfg, str(tmp_path / "full"))
    run_cut_after_epoch(monkeypatch, train_mod, cfg, str(tmp_path / "cut"))
    assert torch.load(str(tmp_path / "cut" / "student" / "last.pt"), weights_only=True)["epoch"] == 1
    resumed = train_mod.run(cfg, str(tmp_path / "cut"))
    a = torch.load(str(tmp_path / "full" / "student" / "last.pt"), weights_only=True)["model"]
    b = torch.load(str(tmp_path / "cut" / "student" / "last.pt"), weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert full["student"]["history"][-1]["train_loss"] == resumed["student"]["history"][-1]["train_loss"]


# ------------------------------------------------------------------------------------------------ bench
def test_bench_measures_three_steps_and_projects_the_run():
    r = run_bench("small_cnn", 4, device="cpu", repeats=1, width=4)
    steps = r["steps"]
    assert list(steps) == ["clean", "pgd10", "cktat"]
    assert all(s["images_per_s"] > 0 and s["seconds"] > 0 for s in steps.values())
    # PGD-10 adds ten forward+backward passes to the input; CKTAT adds the teacher and a second student forward
    assert steps["clean"]["flops"] < steps["pgd10"]["flops"] < steps["cktat"]["flops"]
    assert r["peak_tflops"] is None and all(s["fraction_of_peak"] is None for s in steps.values())
    p = r["projection"]
    assert p["train_images"] == 50_000 - Config().val_size
    assert p["cktat_epoch_s"] > p["train_images"] / steps["cktat"]["images_per_s"]
    assert p["run_s"] > Config().epochs * p["cktat_epoch_s"] + Config().teacher_epochs * p["teacher_epoch_s"]
    text = format_report(r)
    assert "images/s" in text and r["device"] in text and "whole run" in text


def test_peak_table_lookup():
    assert peak_tflops("NVIDIA H100 PCIe", "bf16") == PEAK_TFLOPS["H100 PCIe"]["bf16"]
    assert peak_tflops("NVIDIA H100 80GB HBM3", "bf16") == PEAK_TFLOPS["H100"]["bf16"]
    assert peak_tflops("Tesla T4", "fp16") == PEAK_TFLOPS["T4"]["fp16"]
    assert peak_tflops("Tesla T4", "bf16") is None
    assert peak_tflops("AMD EPYC", "fp32") is None


def test_bench_command(capsys, tmp_path):
    out = tmp_path / "b.json"
    assert main(["bench", "--model", "small_cnn", "--batch", "4", "--repeats", "1", "--device", "cpu",
                 "--width", "4", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "cktat" in printed and "projected" in printed
    assert json.loads(out.read_text())["model"] == "small_cnn"
    assert main(["bench", "--model", "nope"]) == 2
    assert main(["bench", "--batch", "1", "--device", "cpu"]) == 2
    if not torch.cuda.is_available():
        assert main(["bench", "--device", "cuda"]) == 2
    assert "--batch" in capsys.readouterr().err
