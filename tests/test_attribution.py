"""Chapter 05's measurements: patch layouts of the multi-view data, Captum attributions (eval mode, float32,
Captum imported only when used), their mass on known patches, knowledge points, the figures and the verdicts."""

import os
import subprocess
import sys

import matplotlib
import numpy as np
import pytest
import torch
import torch.nn as nn

from cktat_book import attributions, figures
from cktat_core.data import (DISTRACTOR, FEATURE_1, FEATURE_2, MULTIVIEW, REST, MultiViewSpec, TensorData,
                             feature_patterns, make_multiview)
from cktat_core.models import build_model

matplotlib.use("Agg")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# --- the patch layout of the multi-view data ------------------------------------------------------------

def _generator_without_layout(n, seed, spec=MULTIVIEW, probe=0):
    """The multi-view generator as it was before it recorded layouts (pixels, labels and weak flags only)."""
    rng = np.random.default_rng(seed)
    k, p = spec.num_classes, spec.patch
    grid = 32 // p
    patterns = feature_patterns(spec).numpy()
    x = np.zeros((n, 3, 32, 32), dtype=np.float32)
    y = rng.integers(0, k, n)
    weak = np.zeros(n, dtype=np.int64)
    for i in range(n):
        if probe:
            strength = {probe: 1.0, 3 - probe: 0.0}
        else:
            if rng.random() < spec.mu:
                weak[i] = rng.integers(1, 3)
            strength = {1: spec.rho if weak[i] == 1 else 1.0, 2: spec.rho if weak[i] == 2 else 1.0}
        free = list(rng.permutation(grid * grid))
        placed = []
        for f in (1, 2):
            for _ in range(spec.patches_per_feature):
                coef = rng.uniform(spec.coef_low, spec.coef_high) * strength[f]
                placed.append((free.pop(), patterns[y[i], f - 1], coef))
        for j in range(k):
            if j == y[i]:
                continue
            for f in (1, 2):
                if rng.random() < spec.distractor_prob and free:
                    coef = spec.gamma * rng.uniform(spec.coef_low, spec.coef_high)
                    placed.append((free.pop(), patterns[j, f - 1], coef))
        for cell, pattern, coef in placed:
            r, c = divmod(int(cell), grid)
            x[i, :, r * p:(r + 1) * p, c * p:(c + 1) * p] += coef * pattern
    x += spec.noise * rng.standard_normal(x.shape).astype(np.float32)
    images = torch.from_numpy(x).mul_(spec.scale).add_(0.5).clamp_(0, 1)
    return images, torch.from_numpy(y).long(), torch.from_numpy(weak)


@pytest.mark.parametrize("probe", [0, 1, 2])
def test_recording_the_layout_leaves_every_image_bit_identical(probe):
    d = make_multiview.__wrapped__(300, seed=2, probe=probe)
    x, y, weak = _generator_without_layout(300, seed=2, probe=probe)
    assert torch.equal(d.x, x) and torch.equal(d.y, y)
    if not probe:
        assert torch.equal(d.groups["weak_f1"], weak == 1) and torch.equal(d.groups["multi_view"], weak == 0)
    assert d.layout.shape == (300, 4, 4)


def _coefficients(d, spec):
    """(N, 4, 4, classes, 2): each patch's coefficient on every class's two patterns (centred units)."""
    v = feature_patterns(spec).flatten(2)  # (k, 2, d)
    cells = ((d.x - 0.5) / spec.scale).unfold(2, 8, 8).unfold(3, 8, 8)  # (n, 3, 4, 4, 8, 8)
    cells = cells.permute(0, 2, 3, 1, 4, 5).flatten(3)  # (n, 4, 4, d)
    return torch.einsum("nrcd,kfd->nrckf", cells, v) / v.pow(2).sum(-1)


def test_the_layout_says_where_each_feature_lies():
    spec = MultiViewSpec(noise=0.0)  # no noise: a patch's pixels are its pattern times its coefficient
    d = make_multiview.__wrapped__(400, seed=5, spec=spec)
    coef = _coefficients(d, spec)
    idx = torch.arange(len(d))
    own = coef[idx, :, :, d.y]  # (n, 4, 4, 2)
    lay = d.layout.long()
    assert ((lay == FEATURE_1).sum((1, 2)) == spec.patches_per_feature).all()
    assert ((lay == FEATURE_2).sum((1, 2)) == spec.patches_per_feature).all()
    strong1 = (lay == FEATURE_1) & ~d.groups["weak_f1"].view(-1, 1, 1)
    weak1 = (lay == FEATURE_1) & d.groups["weak_f1"].view(-1, 1, 1)
    assert own[..., 0][strong1].min() > spec.coef_low - 0.05
    assert own[..., 0][weak1].max() < spec.rho * spec.coef_high + 0.05 and own[..., 0][weak1].min() > 0.02
    strong2 = (lay == FEATURE_2) & ~d.groups["weak_f2"].view(-1, 1, 1)
    assert own[..., 1][strong2].min() > spec.coef_low - 0.05
    assert own[..., 0][lay == FEATURE_2].abs().max() < 0.05  # feature-2 patches hold no feature 1
    # a distractor patch holds another class's feature at gamma strength, none of its own class's
    other = coef.clone()
    other[idx, :, :, d.y] = 0
    dis = lay == DISTRACTOR
    assert dis.any() and other.amax((-2, -1))[dis].min() > spec.gamma * spec.coef_low - 0.03
    assert own.abs().amax(-1)[dis].max() < 0.05
    # every other patch is empty
    assert coef.abs().amax((-2, -1))[lay == REST].max() < 0.05


def test_probe_images_mark_only_their_feature_and_subsets_carry_the_layout():
    p2 = make_multiview.__wrapped__(100, seed=4, probe=2)
    assert not (p2.layout == FEATURE_1).any() and ((p2.layout == FEATURE_2).sum((1, 2)) == 2).all()
    d = make_multiview(200, seed=11)
    idx = torch.tensor([5, 0, 17])
    assert torch.equal(d.subset(idx).layout, d.layout[idx])
    assert torch.equal(d.head(10).layout, d.layout[:10]) and torch.equal(d.to("cpu").layout, d.layout)
    assert TensorData(d.x[:2], d.y[:2], d.classes).subset(torch.tensor([1])).layout is None


# --- attributions -----------------------------------------------------------------------------------------

CELL = (1, 2)  # row, column of the one patch the model below reads (not on the diagonal: a transposed map fails)


class OnePatch(nn.Module):
    """Logits = each class's feature-1 pattern matched against patch CELL alone: the answer depends on that
    patch only."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 10, 8, 8, bias=False)
        with torch.no_grad():
            self.conv.weight.copy_(feature_patterns()[:, 0])

    def forward(self, x):
        return self.conv(x - 0.5)[:, :, CELL[0], CELL[1]]


def _images_with_pattern_at_cell(n=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 10
    x = 0.5 + 0.03 * torch.randn(n, 3, 32, 32, generator=g)
    r, c = CELL
    x[:, :, 8 * r:8 * r + 8, 8 * c:8 * c + 8] += MULTIVIEW.scale * 0.8 * feature_patterns()[y, 0]
    return x.clamp(0, 1), y


def _cell_mass(maps):
    return maps.unfold(1, 8, 8).unfold(2, 8, 8).sum((-2, -1))  # (n, 4, 4)


@pytest.mark.parametrize("method", attributions.METHODS)
def test_the_patch_the_answer_depends_on_carries_the_most_attribution(method):
    model = OnePatch()
    x, y = _images_with_pattern_at_cell()
    assert (model(x).argmax(1) == y).all()
    maps = attributions.attribution_maps(model, x, y, method, baseline=attributions.channel_mean_baseline(x),
                                        batch_size=5)
    assert maps.shape == (12, 32, 32) and maps.dtype == torch.float32 and (maps >= 0).all()
    mass = _cell_mass(maps).flatten(1)
    assert (mass.argmax(1) == CELL[0] * 4 + CELL[1]).all()
    layout = torch.zeros(12, 4, 4, dtype=torch.int8)
    layout[:, CELL[0], CELL[1]] = FEATURE_2
    layout[:, 3, 0] = FEATURE_1
    shares = attributions.mass_shares(maps, layout)
    assert torch.allclose(sum(shares.values()), torch.ones(12), atol=1e-5)
    assert (shares["f2"] > shares["f1"]).all() and (shares["f2"] > shares["rest"] / 14).all()
    if method != "grad_cam":  # gradients outside the patch are exactly zero
        assert (shares["f2"] > 0.999).all()


def test_grad_cam_reads_the_last_convolutional_block():
    net = build_model("resnet18", 10)
    assert attributions.last_conv_block(net) is net.layer4
    cnn = build_model("small_cnn", 10)
    assert attributions.last_conv_block(cnn) is [m for m in cnn.modules() if isinstance(m, nn.Conv2d)][-1]
    wrn = build_model("wrn28_10", 10)
    assert attributions.last_conv_block(wrn) is wrn.block3
    linear = nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 10))
    x, y = _images_with_pattern_at_cell(4)
    assert attributions.last_conv_block(linear) is None
    assert attributions.attribution_maps(linear, x, y, "grad_cam") is None
    assert attributions.attribution_maps(linear, x, y, "saliency").shape == (4, 32, 32)
    with pytest.raises(Exception, match="must be one of"):
        attributions.attribution_maps(linear, x, y, "lime")


def test_attributions_are_computed_in_eval_mode_and_float32():
    torch.manual_seed(0)
    net = build_model("small_cnn", 10)
    x, y = _images_with_pattern_at_cell(8)
    with torch.no_grad():  # running statistics that differ from any one batch's
        net.train()
        for _ in range(3):
            net(torch.rand(64, 3, 32, 32))
    net.eval()
    reference = attributions.attribution_maps(net, x, y, "saliency")
    net.train()
    got = attributions.attribution_maps(net, x, y, "saliency")
    assert net.training and all(m.training for m in net.modules())  # the modes are given back
    assert torch.allclose(got, reference)
    xg = x.clone().requires_grad_(True)  # what a train-mode (batch statistics) saliency would have given
    net(xg).gather(1, y[:, None]).sum().backward()
    assert not torch.allclose(xg.grad.sum(1).abs(), reference, atol=1e-4)
    double = build_model("small_cnn", 10).double()
    double.load_state_dict(net.state_dict())
    maps = attributions.attribution_maps(double.eval(), x.double(), y, "integrated_gradients", baseline=0.5)
    assert maps.dtype == torch.float32 and next(double.parameters()).dtype == torch.float64
    assert torch.allclose(maps, attributions.attribution_maps(net, x, y, "integrated_gradients", baseline=0.5),
                          rtol=1e-3, atol=1e-6)


def test_captum_is_imported_only_when_a_map_is_computed():
    code = ("import sys, torch\nfrom cktat_book import attributions, figures, capacity, mechanism\n"
            "assert 'captum' not in sys.modules, 'imported early'\n"
            "x = torch.rand(2, 3, 32, 32)\n"
            "attributions.attribution_maps(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3072, 10)), x, "
            "torch.tensor([0, 1]), 'saliency')\n"
            "assert 'captum' in sys.modules\n")
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr


# --- knowledge points, shares, the choice of images ----------------------------------------------------------

def test_knowledge_points_count_the_pixels_near_the_maximum_inside_and_outside_the_patches():
    maps = torch.full((2, 32, 32), 0.1)
    maps[0, 9, 17] = 1.0  # in patch (1, 2)
    maps[0, 0, 0:3] = 0.5  # in patch (0, 0)
    maps[1] = 0.0  # a zero map has no knowledge points
    layout = torch.zeros(2, 4, 4, dtype=torch.int8)
    layout[:, 1, 2] = FEATURE_1
    layout[:, 0, 0] = DISTRACTOR
    c = attributions.point_counts(maps, 0.3, layout)
    assert c["total"].tolist() == [4, 0] and c["f1"].tolist() == [1, 0] and c["distractor"].tolist() == [3, 0]
    assert c["inside"].tolist() == [1, 0] and c["outside"].tolist() == [3, 0]
    assert attributions.point_counts(maps, 0.05)["total"].tolist() == [1024, 0]
    assert attributions.point_counts(maps, 0.6)["total"].tolist() == [1, 0]
    assert set(attributions.point_counts(maps, 0.3)) == {"total"}  # no layout, no roles
    even = attributions.area_shares(layout)
    assert even["f1"][0] == pytest.approx(1 / 16) and even["rest"][0] == pytest.approx(14 / 16)
    shares = attributions.mass_shares(maps, layout)
    assert shares["f1"][0] == pytest.approx((1.0 + 63 * 0.1) / maps[0].sum())
    assert torch.isnan(shares["f1"][1])


def test_the_images_are_a_fixed_seeded_choice_per_class():
    d = make_multiview(400, seed=2)
    before = d.groups["weak_f1"].clone()
    a = attributions.per_class(d.y, (0, 3, 2), 2, seed=0, mask=d.groups["weak_f1"])
    assert torch.equal(d.groups["weak_f1"], before)  # the mask is not written to
    assert torch.equal(a, attributions.per_class(d.y, (0, 3, 2), 2, seed=0, mask=d.groups["weak_f1"]))
    assert d.y[a].tolist() == [0, 0, 3, 3, 2, 2] and d.groups["weak_f1"][a].all()
    assert not torch.equal(a, attributions.per_class(d.y, (0, 3, 2), 2, seed=1, mask=d.groups["weak_f1"]))
    many = attributions.choose(d.y, 10_000, seed=0, mask=d.groups["multi_view"])
    assert len(many) == int(d.groups["multi_view"].sum()) and len(set(many.tolist())) == len(many)


def test_table5_is_measured_once_per_model_and_read_back_without_the_weights(trained_cnn, tmp_path, monkeypatch):
    """Chapter 05's numbers come from `measure`, cached per model: what the maps give is what comes back, and a
    clone (the checkpoint gone) re-executes the chapter from the file, computing nothing."""
    from types import SimpleNamespace

    from cktat_core import checkpoint as ckpt
    from cktat_core.data import load_test

    model, _ = trained_cnn
    path = str(tmp_path / "m.pt")
    ckpt.save_atomic(ckpt.model_checkpoint(model, "small_cnn", 10, {"dataset": "multiview", "width": 0},
                                           classes=10, method="pgdat"), path)
    test, _ = load_test("multiview", limit=200)
    images = attributions.table5_images(test)
    assert len(images.idx) == sum(len(v) for v in images.chosen.values()) and set(images.spans) == set(images.chosen)
    asked = []
    ch = SimpleNamespace(out=str(tmp_path / "out"), weights=asked.append,
                         resolved=lambda m: SimpleNamespace(device="cpu", dataset="multiview"))
    got = attributions.measured(ch, {"a model": path}, test, images)["a model"]
    assert asked == [path] and os.path.isfile(tmp_path / "out" / "eval" / "attributions_a_model.json")
    base = attributions.channel_mean_baseline(test.x)
    ig = attributions.attribution_maps(model, test.x[images.idx], test.y[images.idx], "integrated_gradients", base,
                                      attributions.N_STEPS)
    layout = test.layout[images.idx]
    expected = attributions.point_counts(ig, attributions.MAIN, layout)
    assert set(got["counts"]) == set(attributions.FRACTIONS)
    assert all(torch.equal(got["counts"][attributions.MAIN][k], expected[k]) for k in expected)
    shares = attributions.mass_shares(ig, layout)["f2"]
    assert torch.allclose(got["shares"]["integrated_gradients"]["f2"], shares, atol=1e-6, equal_nan=True)
    grid = attributions.attribution_maps(model, test.x[images.grid], test.y[images.grid], "saliency", base)
    assert torch.allclose(got["grid"]["saliency"], grid, rtol=1e-3)  # kept to 4 significant digits
    os.remove(path)  # a clone
    monkeypatch.setattr(attributions, "attribution_maps", lambda *a, **k: pytest.fail("recomputed"))
    again = attributions.measured(ch, {"a model": path}, test, images)["a model"]
    assert asked == [path] and torch.equal(again["counts"][0.1]["total"], got["counts"][0.1]["total"])


def test_the_grid_shares_one_colour_scale_per_method_and_outlines_the_patches():
    d = make_multiview(50, seed=2)
    maps = {"A": torch.rand(3, 32, 32), "B": 5 * torch.rand(3, 32, 32), "C": None}
    fig = figures.attribution_grid(d.x[:3], maps, ["a", "b", "c"], layout=d.layout[:3], method="Saliency")
    image_axes = fig.axes[:12]
    clims = {ax.images[0].get_clim() for ax in image_axes[3:9]}
    assert len(clims) == 1 and list(clims)[0][1] > 1.0  # B's larger values set the shared scale
    assert not image_axes[9].images  # no map, nothing drawn
    outlined = sum(len(ax.patches) for ax in image_axes[:3])
    assert outlined == int((d.layout[:3] != REST).sum())
    # per row: each model divided by its own 99.5th percentile, so the small A is as visible as the large B
    rows = figures.attribution_grid(d.x[:3], maps, ["a", "b", "c"], per_row=True).axes
    assert {ax.images[0].get_clim() for ax in rows[3:9]} == {(0.0, 1.0)}
    shown = lambda k: np.percentile(np.concatenate([np.ma.getdata(rows[3 + 3 * k + j].images[0].get_array()).ravel()
                                                    for j in range(3)]), 99.5)
    assert shown(0) == pytest.approx(1.0, abs=1e-4) and shown(1) == pytest.approx(1.0, abs=1e-4)
    fig2 = figures.sweep_lines([0.1, 0.5], {"inside": {"A": [3.0, 1.0]}, "outside": {"A": [5.0, 0.0]}}, "points")
    assert len(fig2.axes) == 2


# --- the verdicts --------------------------------------------------------------------------------------------

def test_paired_order_uses_the_noise_of_the_paired_differences():
    a = [10.0, 12.0, 11.0, 13.0]
    assert attributions.paired_order([v + 1 for v in a], a) == 1  # constant difference: beyond any noise
    assert attributions.paired_order(a, [v + 1 for v in a]) == -1
    assert attributions.paired_order(a, a) == 0
    assert attributions.paired_order([1.0, -1.0, 1.0, -1.0], [0.0] * 4) == 0  # mean 0
    assert attributions.paired_order([2.0, -1.0, 2.0, -1.0], [0.0] * 4) == 0  # mean 0.5, standard error 0.87
    with pytest.raises(ValueError):
        attributions.paired_order([1.0], [1.0, 2.0])


def _scores(cktat, trades, pgdat, n=40, seed=0):
    g = np.random.default_rng(seed)
    base = g.normal(10, 3, n)
    return {"CKTAT": list(base + cktat + g.normal(0, 0.5, n)), "TRADES": list(base + trades + g.normal(0, 0.5, n)),
            "PGDAT": list(base + pgdat + g.normal(0, 0.5, n))}


def test_the_claim_check_matches_contradicts_or_leaves_open_the_papers_ranking():
    ok = attributions.claim_check(_scores(4, 2, 0))
    assert ok["outcome"] == "matches" and ok["order"] == "CKTAT > TRADES > PGDAT"
    s = attributions.claim_sentence(ok, "knowledge points")
    assert "matches the paper's ranking CKTAT > TRADES > PGDAT" in s and "over 40 images" in s
    bad = attributions.claim_check(_scores(0, 2, 4))
    assert bad["outcome"] == "contradicts" and bad["order"] == "PGDAT > TRADES > CKTAT"
    assert ("CKTAT", "PGDAT") in bad["reversed"]
    said = attributions.claim_sentence(bad, "knowledge points")
    assert "contradicts" in said and "over 40 images" in said
    assert "TRADES lies above CKTAT, PGDAT lies above CKTAT and PGDAT lies above TRADES beyond" in said
    tie = attributions.claim_check(_scores(4, 4, 0))
    assert tie["outcome"] == "unresolved" and tie["tied"] == [("CKTAT", "TRADES")]
    assert tie["order"] in ("CKTAT ≈ TRADES > PGDAT", "TRADES ≈ CKTAT > PGDAT")
    assert "neither confirms nor contradicts" in attributions.claim_sentence(tie, "knowledge points")
    assert "the difference CKTAT vs TRADES lies within it" in attributions.claim_sentence(tie, "knowledge points")
    assert "'≈': within noise, a paired t-test at p >= 0.05" in attributions.claim_sentence(tie, "knowledge points")
    assert "≈" not in attributions.claim_sentence(ok, "knowledge points")
    same = attributions.threshold_sentence({0.1: ok, 0.3: ok, 0.5: ok}, 0.3)
    assert "same at all 3 thresholds from 10% to 50%" in same
    mixed = attributions.threshold_sentence({0.1: bad, 0.3: ok, 0.5: ok}, 0.3)
    assert "holds at 2 of the 3 thresholds" in mixed and "at 10% it contradicts, ordering" in mixed


def test_the_feature_reading_compares_each_model_with_an_even_spread():
    even = [12.5] * 30
    g = np.random.default_rng(1)
    shares = {"CKTAT": list(30 + g.normal(0, 2, 30)), "PGDAT": list(12.5 + g.normal(0, 2, 30))}
    text = attributions.feature_reading(shares, even, "feature 2", "the single-view images")
    assert "CKTAT puts more there than even spreading would; PGDAT does not" in text and "12.5%" in text
    assert "none of them" in attributions.feature_reading({"PGDAT": shares["PGDAT"]}, even, "feature 2", "images")


def test_orders_agree_compares_rankings_not_values():
    assert attributions.orders_agree({"A": 70.0, "B": 60.0, "C": 10.0}, {"A": 81.0, "B": 65.0, "C": 23.0})
    assert not attributions.orders_agree({"A": 70.0, "B": 60.0, "C": 10.0}, {"A": 65.0, "B": 81.0, "C": 23.0})


def test_the_two_readings_of_table_5_are_set_side_by_side():
    from cktat_book import claims

    mk = lambda name, verdict: claims.Claim("05_attributions", "Table 5", name, "m", None, 1.0, "n", verdict)
    ours = [mk("A over B", claims.REPRODUCED), mk("B over C", claims.WITHIN_NOISE)]
    theirs = [mk("A over B", claims.REPRODUCED), mk("B over C", claims.CONTRADICTED)]
    brief = attributions.attribution_comparison(ours, theirs, "cpu", "smoke", brief=True)
    assert brief.startswith("On the multi-view data (smoke profile) the same comparisons give: “A over B” "
                            "reproduced; “B over C” contradicted;")
    assert "the same verdict as here on 1 of 2" in brief
    full = attributions.attribution_comparison(ours, theirs, "cpu", "smoke")
    assert "- B over C: on real CIFAR-10 images within noise (n); on the multi-view data contradicted (n)." in full
    assert "same verdict on 1 of 2 comparisons: where they differ" in full
    assert "nothing to set beside" in attributions.attribution_comparison(ours, [], "cpu", "smoke")


def test_the_clean_models_low_count_is_weighed_against_the_nearest_trained_model_before_it_is_read():
    from cktat_book import attributions as at

    trained = ["PGDAT", "CKTAT"]
    far = {"clean teacher": [10.0, 11.0, 12.0, 10.0, 11.0], "PGDAT": [20.0, 21.0, 22.0, 20.0, 21.0],
           "CKTAT": [30.0, 31.0, 30.0, 32.0, 31.0]}
    text = at.clean_count_sentence(far, "clean teacher", trained)
    assert "the fewest knowledge points of the 3 models (10.8 per image, against 20.8 to 30.8" in text
    assert "nearest, PGDAT" in text and "sits badly" in text
    near = {**far, "clean teacher": [20.0, 21.5, 21.0, 20.0, 21.0]}  # below PGDAT on average, within the noise
    assert at.clean_count_sentence(near, "clean teacher", trained).endswith(
        "within the noise, so the count neither supports nor contradicts the paper's reading that clean training learns "
        "more features (Sec. 3; its Table 5 shows no clean model).")
    assert at.clean_count_sentence({**far, "clean teacher": [40.0] * 5}, "clean teacher", trained) == ""
