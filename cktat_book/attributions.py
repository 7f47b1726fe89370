"""Chapter 05 (the paper's Table 5): which pixels a model relies on ("visualization of knowledge points learned
by different models"), rendered with Captum, counted, and read against the paper's ranking.

The paper (Sec. 5.3, Table 5) shows, for CIFAR-10 airplane, cat and bird images, the pixels PGD-AT, TRADES
and CKTAT rely on, and reads them as "CKTAT learns more discriminatory features, followed by TRADES, while
PGDAT learns far fewer feature knowledge points". It gives pictures only: it names no attribution method, no
threshold and no count. This module makes the pictures and the numbers:

- `attribution_maps`: one non-negative map (N, H, W) per image from Captum's `IntegratedGradients`,
  `Saliency` or `LayerGradCam` (on `last_conv_block`, upsampled to the image), for the true class.
- `mass_shares`: on the multi-view data, whose images record the role of every patch (`data.PATCH_ROLES`:
  the class's own feature-1 and feature-2 patches, distractors, the rest), the share of a map's mass on each.
- `knowledge_points` / `point_counts`: the pixels whose attribution reaches a fraction of the image's maximum
  (our reading of the paper's undefined "knowledge points"), counted per image, in total and per patch role.

Choices the paper leaves open, made here: attributions are for the true label; Integrated Gradients starts
from a constant image (`channel_mean_baseline`: the images' per-channel mean, the grey of the multi-view
background, where a black image would credit every background pixel) and uses `n_steps` Gauss-Legendre
points; for Integrated Gradients and Saliency the per-pixel value is |sum over colour channels| of the
signed attribution (Captum's `visualize_image_attr` with sign "absolute_value"); Grad-CAM keeps the positive
part (`relu_attributions`) and is upsampled bilinearly. Every map is computed in eval mode (BatchNorm with
running statistics; the model's own modes are restored afterwards) and in float32 (autocast off; a model
held in another precision is attributed through a float32 copy). Captum is imported only when a map is
computed.

`table5_images`, `measure` and `measured` are chapter 05's: which test images, and every number and picture it
shows from one model, cached per model so that the chapter re-executes without the weights. `claim_check`,
`claim_sentence`, `threshold_sentence`, `feature_reading` and `attribution_comparison` read those numbers against
the paper's ranking (per image, the same images for every model: a paired test).
"""

from __future__ import annotations

import copy
import hashlib
import json
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import torch
import torch.nn as nn

from cktat_core.attacks import eval_mode
from cktat_core.data import DISTRACTOR, FEATURE_1, FEATURE_2, PATCH_ROLES, REST
from cktat_core.errors import CktatError

from .report import listed, mean_of

METHODS = ("integrated_gradients", "saliency", "grad_cam")
TITLES = {"integrated_gradients": "Integrated Gradients", "saliency": "Saliency", "grad_cam": "Grad-CAM"}
ROLE_KEYS = ("f1", "f2", "distractor", "rest")  # column names for PATCH_ROLES' feature 1, feature 2, ...
ROLE_OF_KEY = {"f1": FEATURE_1, "f2": FEATURE_2, "distractor": DISTRACTOR, "rest": REST}


def _captum_attr():
    try:
        import captum.attr as captum_attr  # optional dependency: imported only when a map is computed
    except ImportError:
        raise CktatError("attributions need Captum: pip install captum (it is in the project's `eval` and "
                         "`book` extras)") from None
    return captum_attr


def last_conv_block(model: nn.Module) -> nn.Module | None:
    """The layer Grad-CAM reads: a ResNet's `layer4`, a WideResNet's `block3`, otherwise the last registered
    `nn.Conv2d` (small_cnn's fourth convolution, a 4x4 map on 32x32 inputs); None when there is no convolution."""
    for name in ("layer4", "block3"):
        found = [m for n, m in model.named_modules() if n.rsplit(".", 1)[-1] == name]
        if found:
            return found[-1]
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    return convs[-1] if convs else None


@contextmanager
def evaluating(model: nn.Module) -> Iterator[nn.Module]:
    """`model` in eval mode and float32 for the duration; every module's train flag is restored afterwards. A
    model with parameters or buffers in another floating dtype is replaced by a float32 copy (the original is
    not converted in place)."""
    tensors = [*model.parameters(), *model.buffers()]
    if any(t.is_floating_point() and t.dtype != torch.float32 for t in tensors):
        model = copy.deepcopy(model).float()
    with eval_mode(model):
        yield model


def channel_mean_baseline(x: torch.Tensor) -> torch.Tensor:
    """(1, C, 1, 1): the per-channel mean of images `x`, Integrated Gradients' starting image."""
    return x.float().mean(dim=(0, 2, 3), keepdim=True)


def _device(model: nn.Module) -> torch.device:
    p = next(iter([*model.parameters(), *model.buffers()]), None)
    return p.device if p is not None else torch.device("cpu")


def _batch_maps(model: nn.Module, captum_attr, method: str, x: torch.Tensor, y: torch.Tensor,
                baseline: torch.Tensor, n_steps: int) -> torch.Tensor | None:
    if method == "integrated_gradients":
        a = captum_attr.IntegratedGradients(model).attribute(x, baselines=baseline.expand_as(x), target=y,
                                                             n_steps=n_steps, internal_batch_size=len(x))
        return a.sum(1).abs()
    if method == "saliency":
        return captum_attr.Saliency(model).attribute(x, target=y, abs=False).sum(1).abs()
    layer = last_conv_block(model)
    if layer is None:
        return None
    cam = captum_attr.LayerGradCam(model, layer).attribute(x, target=y, relu_attributions=True)
    return captum_attr.LayerAttribution.interpolate(cam, tuple(x.shape[-2:]), "bilinear").squeeze(1)


def attribution_maps(model: nn.Module, x: torch.Tensor, y: torch.Tensor, method: str,
                     baseline: torch.Tensor | float = 0.0, n_steps: int = 16,
                     batch_size: int = 128) -> torch.Tensor | None:
    """(N, H, W) non-negative float32 maps on the CPU: how much each pixel of each image `x` counts for the
    logit of its label `y`, by `method` (one of `METHODS`; see the module doc for the reductions). None for
    "grad_cam" when the network has no convolution. `baseline`: Integrated Gradients' starting image (a number
    or a tensor broadcastable to x). Runs on the model's device, `batch_size` images (or interpolation points)
    at a time."""
    if method not in METHODS:
        raise CktatError(f"attribution method: must be one of {', '.join(METHODS)} (got {method!r})")
    captum_attr = _captum_attr()
    maps = []
    with evaluating(model) as net, torch.autocast(_device(model).type, enabled=False):
        device = _device(net)
        base = torch.as_tensor(baseline, dtype=torch.float32, device=device)
        base = base.view(1, -1, 1, 1) if base.dim() <= 1 else base.view(1, *base.shape[-3:])
        for start in range(0, len(x), batch_size):
            xb = x[start:start + batch_size].to(device, torch.float32).clone().requires_grad_(True)
            yb = y[start:start + batch_size].to(device)
            m = _batch_maps(net, captum_attr, method, xb, yb, base, n_steps)
            if m is None:
                return None
            maps.append(m.detach().float().cpu())
    return torch.cat(maps) if maps else torch.zeros(0, *x.shape[-2:])


def role_pixels(layout: torch.Tensor, size: int) -> torch.Tensor:
    """(N, size, size): every pixel's patch role, from the per-image grid of roles `layout` (N, g, g)."""
    cell = size // layout.shape[-1]
    return layout.long().repeat_interleave(cell, 1).repeat_interleave(cell, 2)


def mass_shares(maps: torch.Tensor, layout: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per image, the share (0..1) of its map's total on each patch role ("f1", "f2", "distractor", "rest");
    NaN for an image whose map is zero everywhere."""
    roles = role_pixels(layout, maps.shape[-1])
    total = maps.flatten(1).sum(1)
    out = {}
    for key in ROLE_KEYS:
        on = (maps * (roles == ROLE_OF_KEY[key])).flatten(1).sum(1)
        out[key] = torch.where(total > 0, on / total.clamp_min(1e-30), torch.full_like(total, float("nan")))
    return out


def area_shares(layout: torch.Tensor, size: int = 32) -> dict[str, torch.Tensor]:
    """Per image, the share of its pixels in each patch role: the mass shares of a map spread evenly."""
    roles = role_pixels(layout, size).flatten(1)
    return {key: (roles == ROLE_OF_KEY[key]).float().mean(1) for key in ROLE_KEYS}


def knowledge_points(maps: torch.Tensor, fraction: float) -> torch.Tensor:
    """(N, H, W) booleans: the pixels whose attribution reaches `fraction` of its image's maximum (an image
    whose map is zero everywhere has none)."""
    top = maps.flatten(1).amax(1).view(-1, 1, 1)
    return (maps >= fraction * top) & (top > 0)


def point_counts(maps: torch.Tensor, fraction: float, layout: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Knowledge points per image: "total"; with a layout also per patch role ("f1", "f2", "distractor",
    "rest"), "inside" the class's own feature patches (f1 + f2) and "outside" them."""
    points = knowledge_points(maps, fraction)
    out = {"total": points.flatten(1).sum(1).float()}
    if layout is not None:
        roles = role_pixels(layout, maps.shape[-1])
        for key in ROLE_KEYS:
            out[key] = (points & (roles == ROLE_OF_KEY[key])).flatten(1).sum(1).float()
        out["inside"] = out["f1"] + out["f2"]
        out["outside"] = out["total"] - out["inside"]
    return out


def choose(y: torch.Tensor, n: int, seed: int, mask: torch.Tensor | None = None,
           classes: tuple[int, ...] | None = None) -> torch.Tensor:
    """Up to n indices drawn without replacement, by `seed`, among the images of `classes` (all when None)
    where `mask` holds: the same images every time."""
    ok = torch.ones(len(y), dtype=torch.bool) if mask is None else mask.cpu().bool()
    if classes is not None:
        ok = ok & torch.isin(y.cpu(), torch.tensor(classes))
    idx = torch.nonzero(ok).flatten()
    order = torch.randperm(len(idx), generator=torch.Generator().manual_seed(seed))
    return idx[order[:n]]


def per_class(y: torch.Tensor, classes: tuple[int, ...], per: int, seed: int,
              mask: torch.Tensor | None = None) -> torch.Tensor:
    """`per` seeded images of each class in `classes`, class by class in that order (fewer where there are not
    enough)."""
    return torch.cat([choose(y, per, seed + c, mask, (c,)) for c in classes])


ROLE_NAMES = dict(zip(ROLE_KEYS, [PATCH_ROLES[ROLE_OF_KEY[k]] for k in ROLE_KEYS]))


# Table 5's choices (chapter 05): the paper's classes, Integrated Gradients' points, how many images are measured,
# and the thresholds of a knowledge point (a fraction of the image's maximum attribution; MAIN is the table's).
CLASSES = (0, 3, 2)  # airplane, cat, bird on CIFAR-10 (Table 5); the same class indices on the multi-view data
N_STEPS = 16
PER_KIND = 150  # images of each kind measured (fewer when the test set has fewer)
FRACTIONS = (0.1, 0.2, 0.3, 0.5, 0.7)
MAIN = 0.3


@dataclass
class Images:
    """The test images Table 5 draws and measures: `grid` (the pictures, with their `titles`) and, per kind of
    image, the indices measured (`chosen`), concatenated in `idx` with each kind's `spans`."""
    grid: torch.Tensor
    titles: list[str]
    chosen: dict[str, torch.Tensor]

    @property
    def idx(self) -> torch.Tensor:
        return torch.cat(list(self.chosen.values()))

    @property
    def spans(self) -> dict[str, slice]:
        out, start = {}, 0
        for k, v in self.chosen.items():
            out[k], start = slice(start, start + len(v)), start + len(v)
        return out

    def digest(self) -> str:
        text = json.dumps([self.grid.tolist(), {k: v.tolist() for k, v in self.chosen.items()}])
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def table5_images(test) -> Images:
    """A fixed, seeded choice. On CIFAR-10: two images of each of `CLASSES` for the pictures, 2 x `PER_KIND` test
    images measured. On the multi-view data (`test.layout` records the patches): per class one multi-view image and
    one single-view image whose feature 1 is weak, and `PER_KIND` of each kind measured."""
    if test.layout is not None:
        kinds = {"multi-view": test.groups["multi_view"], "feature 1 weak": test.groups["weak_f1"]}
        grid = torch.cat([choose(test.y, 1, seed=c, mask=m, classes=(c,)) for c in CLASSES for m in kinds.values()])
        titles = [f"{test.classes[int(test.y[i])]}, {next(k for k, m in kinds.items() if m[i])}" for i in grid]
        chosen = {k: choose(test.y, PER_KIND, seed=1, mask=m) for k, m in kinds.items()}
    else:
        grid = per_class(test.y, CLASSES, 2, seed=0)
        titles = [test.classes[int(test.y[i])] for i in grid]
        chosen = {"test images": choose(test.y, 2 * PER_KIND, seed=1)}
    return Images(grid, titles, chosen)


def _listed(t: torch.Tensor | None, digits: int = 4):
    """A tensor as nested lists of floats rounded to `digits` significant digits (JSON); None stays None."""
    rounded = lambda x: [rounded(v) for v in x] if isinstance(x, list) else float(f"{x:.{digits}g}")
    return None if t is None else rounded(t.tolist())


def measure(model: nn.Module, test, images: Images, baseline: torch.Tensor) -> dict:
    """Everything Table 5 needs from one model, as JSON: "grid" (method -> the pictures' maps), "counts" (fraction ->
    `point_counts` of its Integrated-Gradients maps of the measured images) and, on the multi-view data, "shares"
    (method -> `mass_shares`). A method without a map (Grad-CAM on a network without convolutions) is None."""
    idx = images.idx
    layout = test.layout[idx] if test.layout is not None else None
    out = {"grid": {}, "counts": {}, "shares": {}}
    for method in METHODS:
        out["grid"][method] = _listed(attribution_maps(model, test.x[images.grid], test.y[images.grid], method,
                                                       baseline, N_STEPS))
        maps = attribution_maps(model, test.x[idx], test.y[idx], method, baseline, N_STEPS)
        if method == "integrated_gradients":
            out["counts"] = {str(t): {k: v.tolist() for k, v in point_counts(maps, t, layout).items()}
                             for t in FRACTIONS}
        if layout is not None and maps is not None:
            out["shares"][method] = {k: v.tolist() for k, v in mass_shares(maps, layout).items()}
    return out


def measured(ch, paths: dict[str, str], test, images: Images) -> dict[str, dict]:
    """`measure` for each model (name -> checkpoint path), cached per model in <out>/eval/attributions_<name>.json
    (`cache.computed`): a clone re-executes chapter 05 from these files without the weights. The tensors come back
    as tensors ("grid": (N, H, W) per method, "counts" by fraction (float) and "shares" by method: per image)."""
    from cktat_core.cache import computed
    from cktat_core.checkpoint import load_classifier
    from cktat_core.runtime import pick_device

    device = pick_device(ch.resolved("pgdat").device)
    baseline = channel_mean_baseline(test.x)
    request = {"table5": images.digest(), "n_steps": N_STEPS, "fractions": list(FRACTIONS), "methods": list(METHODS),
               "test": [ch.resolved("pgdat").dataset, len(test)]}
    out = {}
    for name, path in paths.items():
        file = f"{ch.out}/eval/attributions_{name.lower().replace(' ', '_')}.json"
        r = computed(path, file, lambda p: measure(load_classifier(p)[0].to(device), test, images, baseline),
                     restore=ch.weights, **request)
        out[name] = {"grid": {m: None if v is None else torch.tensor(v) for m, v in r["grid"].items()},
                     "counts": {float(t): {k: torch.tensor(v) for k, v in c.items()} for t, c in r["counts"].items()},
                     "shares": {m: {k: torch.tensor(v) for k, v in s.items()} for m, s in r["shares"].items()}}
    return out


# Sec. 5.3 of the CKTAT paper: "CKTAT learns more discriminatory features, followed by TRADES, while PGDAT learns
# far fewer feature knowledge points" (Table 5, pictures only), as a ranking from most to fewest.
TABLE5_CLAIM = ("CKTAT", "TRADES", "PGDAT")

def paired_order(a: list[float], b: list[float]) -> int:
    """1 when the per-image values `a` lie above `b` (the same images, in the same order) beyond chance, -1 when
    below, 0 when within: the sign of `noise.compare_values` (a paired t-test)."""
    from .noise import compare_values

    return compare_values(a, b).sign

def claim_check(scores: dict[str, list[float]], claim: tuple[str, ...] = TABLE5_CLAIM) -> dict:
    """Does a per-image measure (e.g. knowledge points on the class's own feature patches) order the models as
    `claim` (most first)? Every pair of the claim is compared with `paired_order`.

    Returns "outcome": "matches" (every pair in the claimed order beyond noise), "contradicts" (some pair
    reversed beyond noise) or "unresolved" (no pair reversed, some within noise); "reversed" and "tied": the
    pairs (claimed higher, claimed lower) of each kind; "means"; "order": the models by mean, most first, joined
    by ">" or, within noise, "≈"; "n": images per model.
    """
    pairs = [(claim[i], claim[j]) for i in range(len(claim)) for j in range(i + 1, len(claim))]
    signs = {p: paired_order(scores[p[0]], scores[p[1]]) for p in pairs}
    reversed_ = [p for p, s in signs.items() if s < 0]
    tied = [p for p, s in signs.items() if s == 0]
    outcome = "contradicts" if reversed_ else "unresolved" if tied else "matches"
    means = {m: mean_of(scores[m]) for m in claim}
    ranked = sorted(claim, key=lambda m: -means[m])
    order = ranked[0]
    for hi, lo in zip(ranked, ranked[1:]):
        order += (" > " if paired_order(scores[hi], scores[lo]) > 0 else " ≈ ") + lo
    return {"outcome": outcome, "reversed": reversed_, "tied": tied, "means": means, "order": order,
            "ranked": ranked, "n": len(scores[claim[0]])}

def orders_agree(a: dict[str, float], b: dict[str, float]) -> bool:
    """Whether two measures of the same models (e.g. a mean attribution share and a probe accuracy) rank them in
    the same order, highest first."""
    return sorted(a, key=lambda m: -a[m]) == sorted(a, key=lambda m: -b[m])

def claim_sentence(check: dict, measure: str, claim: tuple[str, ...] = TABLE5_CLAIM, digits: int = 1,
                   unit: str = "") -> str:
    """The page's sentence for one `claim_check`: the measured order with the means, and whether it matches,
    contradicts or leaves open the paper's ranking."""
    means = ", ".join(f"{m} {check['means'][m]:.{digits}f}{unit}" for m in check["ranked"])
    said = " > ".join(claim)

    def pairs(ps):
        return listed([f"{a} vs {b}" for a, b in ps])

    tie = " ('≈': within noise, a paired t-test at p >= 0.05)" if "≈" in check["order"] else ""
    head = f"By {measure}, over {check['n']:,} images ({means}), the models order as {check['order']}{tie}. "
    if check["outcome"] == "matches":
        return head + f"This matches the paper's ranking {said}: every pair lies in that order beyond sampling noise."
    if check["outcome"] == "contradicts":
        rev = listed([f"{b} lies above {a}" for a, b in check["reversed"]])
        return head + (f"This contradicts the paper's ranking {said}: {rev} beyond sampling noise"
                       + (f" (the difference {pairs(check['tied'])} lies within it)" if len(check["tied"]) == 1
                          else f" (the differences {pairs(check['tied'])} lie within it)" if check["tied"] else "")
                       + ".")
    return head + (f"This neither confirms nor contradicts the paper's ranking {said}: no pair is reversed beyond "
                   f"sampling noise, but the difference{'s' if len(check['tied']) > 1 else ''} "
                   f"{pairs(check['tied'])} lie{'' if len(check['tied']) > 1 else 's'} within it.")

def threshold_sentence(checks: dict[float, dict], main: float) -> str:
    """Whether the outcome of `claim_check` at the main threshold holds over a sweep of thresholds (fractions
    of each image's maximum attribution)."""
    ts = sorted(checks)
    same = [t for t in ts if checks[t]["outcome"] == checks[main]["outcome"]]
    span = f"{len(ts)} thresholds from {ts[0]:.0%} to {ts[-1]:.0%} of each image's maximum"
    if len(same) == len(ts):
        return f"The outcome is the same at all {span}: it does not hinge on the threshold."
    other = "; ".join(f"at {t:.0%} it {checks[t]['outcome']}, ordering {checks[t]['order']}" for t in ts
                      if t not in same)
    return (f"The outcome at {main:.0%} holds at {len(same)} of the {span}; elsewhere it differs: {other}. The "
            f"ranking depends on the threshold.")

def feature_reading(shares: dict[str, list[float]], even: list[float], feature: str, images: str) -> str:
    """Which models put more of their attribution on `feature`'s patches than a map spread evenly over the image
    would (`even`: that share per image, the patches' area), beyond chance (`paired_order`), on `images`.
    `shares`: per model, the per-image share (%) on those patches."""
    above = [m for m, s in shares.items() if paired_order(s, even) > 0]
    below = [m for m in shares if m not in above]
    values = ", ".join(f"{m} {mean_of(s):.1f}%" for m, s in shares.items())
    text = (f"On {images}, the share of attribution on the {feature} patches is {values}, against "
            f"{mean_of(even):.1f}% for a map spread evenly over the image. ")
    if not above:
        return text + f"No model puts more there than even spreading would: none of them relies on {feature}."
    if not below:
        return text + f"Every model puts more there than even spreading would: all of them look at {feature}."
    return text + (f"{', '.join(above)} put{'s' if len(above) == 1 else ''} more there than even spreading would; "
                   f"{', '.join(below)} do{'es' if len(below) == 1 else ''} not, beyond sampling noise.")

def attribution_comparison(ours: list, theirs: list, profile: str, other: str, brief: bool = False) -> str:
    """Chapter 05's two readings side by side: its claims in this profile and those it saved in `other` (the
    multi-view data against real images), and whether they agree; `brief`: that last sentence only, with the
    other data's verdicts (for the chapter's opening)."""
    if not theirs:
        return (f"The {other} profile's execution of this chapter has saved no claims in this copy of the book, so "
                f"there is nothing to set beside ours.")
    data = {"smoke": "the multi-view data", "cpu": "real CIFAR-10 images", "paper": "CIFAR-10 (paper profile)"}
    mine = {c.claim: c for c in ours}
    if brief:
        same = sum(c.claim in mine and mine[c.claim].verdict == c.verdict for c in theirs)
        told = "; ".join(f"“{c.claim}” {c.verdict}" for c in theirs)
        return (f"On {data.get(other, other)} ({other} profile) the same comparisons give: {told}; the same "
                f"verdict as here on {same} of {len(theirs)} (the last section compares the two readings).")
    lines = []
    for c in theirs:
        m = mine.get(c.claim)
        here = f"{m.verdict} ({m.noise})" if m else "not measured"
        lines.append(f"- {c.claim}: on {data.get(profile, profile)} {here}; on {data.get(other, other)} {c.verdict} "
                     f"({c.noise}).")
    same = [c.claim for c in theirs if c.claim in mine and mine[c.claim].verdict == c.verdict]
    lines.append(f"\nThe two data sets give the same verdict on {len(same)} of {len(theirs)} comparisons"
                 + ("." if len(same) == len(theirs) else
                    ": where they differ, the multi-view verdict counts points on the known discriminative patches, "
                    "the real-image one counts every pixel above the threshold, which rewards maps that spread "
                    "attribution over many pixels, the background included."))
    return "\n".join(lines)


def clean_count_sentence(points: dict[str, list[float]], clean: str, trained: list[str]) -> str:
    """Where the clean model has the fewest knowledge points per image (`points`: model -> per image, the same
    images), whether it lies below the nearest adversarially trained model beyond the noise (`noise.compare_values`,
    paired over the images) before the page sets that against the paper's reading (Sec. 3: clean training learns
    more features; its Table 5 shows no clean model). Empty where the clean model is not the lowest."""
    from .noise import BELOW, compare_values

    mean = {m: mean_of(v) for m, v in points.items()}
    if min(mean, key=mean.get) != clean:
        return ""
    nearest = min(trained, key=mean.get)
    c = compare_values(points[clean], points[nearest])
    text = (f"By this count the {clean} has the fewest knowledge points of the {len(mean)} models ({mean[clean]:.1f} "
            f"per image, against {mean[nearest]:.1f} to {max(mean[m] for m in trained):.1f} for the adversarially "
            f"trained ones; against the nearest, {nearest}: {c.evidence()})")
    if c.word == BELOW:
        return text + (", which sits badly with the paper's reading that clean training learns more features (Sec. "
                       "3; its Table 5 shows no clean model).")
    return text + (": within the noise, so the count neither supports nor contradicts the paper's reading that clean "
                   "training learns more features (Sec. 3; its Table 5 shows no clean model).")
