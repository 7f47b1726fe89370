"""The paper's claims as the book tests them: one row per claim, with the paper's number, ours, the noise it is
judged against and a verdict, computed by the chapter that shows it and gathered by the scorecard page.

A `Claim` is built from a `noise.Comparison` of our two sides (`judged`): the paper states a direction ("CKTAT's
natural accuracy is above PGD-AT's"), and our comparison either shows it ("reproduced"), shows nothing beyond the
noise ("within noise") or shows the opposite ("contradicted"); a claim this profile cannot test says so ("not
testable in this profile"). A chapter saves its claims with `save` into `<results>/claims/<chapter>.json` (written
only when they changed, so re-executing a current chapter changes no file) and opens its page with `findings`; the
scorecard reads every chapter's file (`load_all`) and shows `scorecard_rows`. Torch-free.
"""

from __future__ import annotations

import glob
import json
import os
from dataclasses import asdict, dataclass

from .noise import ABOVE, BELOW, WITHIN, Comparison, p_text, p_value

REPRODUCED, WITHIN_NOISE, CONTRADICTED, UNTESTABLE = ("reproduced", "within noise", "contradicted",
                                                      "not testable in this profile")
LEVEL = "level"  # the paper's two numbers lie within their own sampling noise: it shows no direction
NOT_BELOW = "not below"  # first or tied first: no rival above it beyond the noise (`top_of` when the lead is LEVEL)
PAPER_IMAGES = 10_000  # CIFAR-10's and CIFAR-100's test sets, on which the papers report every accuracy
VERDICTS = (REPRODUCED, WITHIN_NOISE, CONTRADICTED, UNTESTABLE)


@dataclass(frozen=True)
class Claim:
    """One claim of a paper and our test of it. `paper` and `ours` are the two sides' effect in points (e.g. CKTAT
    minus PGD-AT natural accuracy) or a statistic named in `measure`; `noise` says what the verdict was judged
    against; `chapter` is the notebook's name, `section` the table it comes from."""

    chapter: str
    section: str
    claim: str
    measure: str
    paper: float | None
    ours: float | None
    noise: str
    verdict: str
    signed: bool = True  # the measure is a difference or a correlation (shown with its sign), not a level

    @property
    def difference(self) -> float | None:
        return None if self.paper is None or self.ours is None else self.ours - self.paper


def verdict(direction: str, word: str, ours: Comparison | None = None, paper_noise: float | None = None) -> str:
    """The verdict on a claim that our side lies in `direction` (ABOVE, BELOW, LEVEL: the paper's two sides lie
    within their own noise, or NOT_BELOW: level or above) when our comparison says `word`.

    A difference our test does not detect is not evidence that there is none. A LEVEL claim is reproduced only when
    our interval for the difference (`ours.difference` +- `ours.half_width`) lies inside the paper's own noise
    `paper_noise` (an equivalence test: our evidence rules out any difference the paper's numbers could have shown),
    and contradicted when ours differs beyond the noise; otherwise it is within noise. A NOT_BELOW claim is
    reproduced when ours is above, or when our interval's lower end lies above -`paper_noise`; contradicted when
    ours is below."""
    if direction in (LEVEL, NOT_BELOW):
        if ours is None or ours.half_width is None or paper_noise is None:
            raise ValueError(f"a {direction!r} claim needs our comparison with its half_width and the paper's noise")
        low, high = ours.difference - ours.half_width, ours.difference + ours.half_width
        if direction == LEVEL:
            if word != WITHIN:
                return CONTRADICTED
            return REPRODUCED if -paper_noise <= low and high <= paper_noise else WITHIN_NOISE
        if word == BELOW:
            return CONTRADICTED
        return REPRODUCED if word == ABOVE or low >= -paper_noise else WITHIN_NOISE
    if direction not in (ABOVE, BELOW):
        raise ValueError(f"a claimed direction is {ABOVE!r}, {BELOW!r} or {LEVEL!r}, not {direction!r}")
    if word == WITHIN:
        return WITHIN_NOISE
    return REPRODUCED if word == direction else CONTRADICTED


def side(effect: float, margin: float | None = None) -> str:
    """The direction the paper's numbers show: LEVEL when the effect lies within the paper's own sampling `margin`
    (two binomial standard errors on its test images; `paper_margin`), else ABOVE or BELOW by its sign."""
    if margin is not None and abs(effect) <= margin:
        return LEVEL
    return ABOVE if effect > 0 else BELOW


def paper_margin(a: float, b: float) -> float:
    """The sampling noise of the difference of two of the paper's accuracies, each on its `PAPER_IMAGES` test
    images (`noise.compare`'s binomial margin)."""
    from .noise import compare

    return compare(a, b, n=PAPER_IMAGES).margin


WORDS = {ABOVE: "above", BELOW: "below", LEVEL: "level with", NOT_BELOW: "not below"}


def judged(chapter: str, section: str, claim: str, measure: str, paper: float | None, ours: Comparison,
           direction: str | None = None, paper_noise: float | None = None) -> Claim:
    """A claim whose paper effect `paper` (points, signed) sets the direction (or `direction`, from `side`: ABOVE,
    BELOW, LEVEL or NOT_BELOW, the last two with the paper's own noise `paper_noise`), judged by our comparison
    `ours` (`verdict`); a claim the paper states without a number (`paper` None) must give its direction. A paper
    effect of exactly zero with no direction given is not testable."""
    if direction is None:
        if paper is None:
            raise ValueError(f"{claim!r}: a claim needs the paper's effect or a direction")
        if paper == 0:
            return untestable(chapter, section, claim, measure, paper, "the paper's two numbers are equal")
        direction = ABOVE if paper > 0 else BELOW
    level = direction in (LEVEL, NOT_BELOW)
    return Claim(chapter, section, claim, measure, paper, ours.difference,
                 _evidence(ours, paper_noise if level else None), verdict(direction, ours.word, ours, paper_noise))


def _evidence(c: Comparison, paper_noise: float | None = None) -> str:
    """What a comparison was judged against, without its difference (the claim shows that): "McNemar, 5000 paired
    images, p = 0.003"; for a claim of no difference also our interval's half-width against the paper's noise."""
    parts = [c.test]
    if c.p is not None:
        parts.append(p_text(c.p))
    if c.margin is not None:
        parts.append(f"noise {c.margin:.1f} points")
    if paper_noise is not None and c.half_width is not None:
        parts.append(f"our interval ±{c.half_width:.1f} points against the paper's noise {paper_noise:.1f}")
    return ", ".join(parts)



def untestable(chapter: str, section: str, claim: str, measure: str, paper: float | None, why: str) -> Claim:
    return Claim(chapter, section, claim, measure, paper, None, why, UNTESTABLE)


def value(v: float | None, signed: bool, digits: int = 1) -> str:
    return "-" if v is None else f"{v:+.{digits}f}" if signed else f"{v:.{digits}f}"


def sentence(c: Claim, digits: int = 1) -> str:
    """One claim as a sentence of a chapter's findings: the verdict, our number, the paper's, the evidence."""
    if c.verdict == UNTESTABLE:
        return f"{c.claim}: not testable in this profile ({c.noise})."
    word = {REPRODUCED: "reproduced", WITHIN_NOISE: "within noise, neither reproduced nor contradicted",
            CONTRADICTED: "contradicted"}[c.verdict]
    paper = "" if c.paper is None else f"; the paper {value(c.paper, c.signed, digits)}"
    return f"{c.claim}: **{word}** (ours {value(c.ours, c.signed, digits)}{paper}; {c.noise})."


def findings(claims: list[Claim], digits: int = 1) -> str:
    """Claims as sentences, a line each."""
    return "\n\n".join(sentence(c, digits) for c in claims)


def group_label(verdict: str) -> str:
    return f"**{verdict[0].upper() + verdict[1:]}**:"


def opening(claims: list[Claim], digits: int = 1, most: int = 4, listed: int = 12) -> str:
    """A chapter's first lines: its claims' sentences when there are at most `most`; else how many claims each
    verdict got and which claims got it, a line per verdict; beyond `listed` claims, the verdicts counted per table
    instead of named one by one (the sentences follow in the chapter's sections)."""
    if len(claims) <= most:
        return findings(claims, digits)
    count = tally(claims)
    if len(claims) > listed:
        per = by_section(claims)
        parts = []
        for section, group in per.items():
            c = tally(group)
            parts.append(f"**{section}**, {len(group)} claims: " + ", ".join(f"{c[v]} {v}" for v in VERDICTS if c[v]))
        return (f"Of the {len(claims)} claims this chapter tests: " + "; ".join(parts)
                + ". Each is decided, with its numbers, in its section below.")
    shown = [v for v in VERDICTS if count[v]]
    verb = "is" if count[shown[0]] == 1 else "are"
    lines = [f"Of the {len(claims)} claims this chapter tests, "
             + ", ".join(f"{count[v]} {verb + ' ' if i == 0 else ''}{v}" for i, v in enumerate(shown))
             + "; each is decided, with its numbers, in its section below."]
    for v in VERDICTS:
        group = [c.claim for c in claims if c.verdict == v]
        if group:
            lines.append(f"{group_label(v)} " + "; ".join(group) + ".")
    return "\n\n".join(lines)


# The chapters that test claims of the papers and save them (a test checks this against the notebooks).
CHAPTERS = ("02_cktat", "03_label_design", "05_attributions", "06_capacity", "07_ablations", "08_baselines",
            "09_raat_ducat")


def folder(results: str) -> str:
    return os.path.join(results, "claims")


def pending(results: str) -> list[str]:
    """The chapters of `CHAPTERS` that have not saved their claims under `results` (not executed there yet)."""
    return [c for c in CHAPTERS if not os.path.isfile(os.path.join(folder(results), f"{c}.json"))]


def pending_sentence(results: str, profile: str) -> str:
    """What the scorecard does not count yet, or "" when every chapter has saved its claims."""
    left = pending(results)
    if not left:
        return ""
    return (f"Not counted yet: {len(left)} of the {len(CHAPTERS)} chapters that test claims have not been executed "
            f"in the {profile} profile ({', '.join(left)}), so their claims are missing from this page.")


def save(results: str, chapter: str, claims: list[Claim]) -> str:
    """Write a chapter's claims to `<results>/claims/<chapter>.json`, only when they differ from what is there."""
    path = os.path.join(folder(results), f"{chapter}.json")
    text = json.dumps({"chapter": chapter, "claims": [asdict(c) for c in claims]}, indent=1) + "\n"
    os.makedirs(os.path.dirname(path), exist_ok=True)
    _write_if_changed(path, text)
    write_index(results)
    return path


INDEX = "index.json"  # the chapters that saved claims: read by `load_all`, so a new chapter makes the scorecard stale


def _write_if_changed(path: str, text: str) -> None:
    """Write `text` to `path` atomically unless it is there already. The comparison opens the file for update
    ("r+"), not for reading: `cktat reproduce` counts a file a chapter opens for reading as that chapter's input,
    and the index or a chapter's own claims are its output (with "r", a new chapter adding itself to the index
    made every chapter that saves claims stale)."""
    try:
        with open(path, "r+") as fh:
            if fh.read() == text:
                return
    except OSError:
        pass
    tmp = path + ".tmp"
    with open(tmp, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


def _chapter_files(results: str) -> list[str]:
    return sorted(p for p in glob.glob(os.path.join(folder(results), "*.json")) if os.path.basename(p) != INDEX)


def write_index(results: str) -> str:
    """`<results>/claims/index.json`: the chapters whose claims are saved there, rewritten only when that changes.
    `cktat reproduce` decides staleness from the files a chapter read; the scorecard reads this one, so a chapter
    saving claims for the first time makes it stale."""
    path = os.path.join(folder(results), INDEX)
    names = [os.path.basename(p)[:-len(".json")] for p in _chapter_files(results)]
    _write_if_changed(path, json.dumps({"chapters": names}, indent=1) + "\n")
    return path


def load_all(results: str) -> list[Claim]:
    """Every chapter's saved claims, in chapter order (those the index lists, when there is one)."""
    index = os.path.join(folder(results), INDEX)
    if os.path.isfile(index):
        with open(index) as fh:
            paths = [os.path.join(folder(results), f"{c}.json") for c in json.load(fh)["chapters"]]
    else:
        paths = _chapter_files(results)
    out = []
    for path in paths:
        with open(path) as fh:
            out += [Claim(**c) for c in json.load(fh)["claims"]]
    return out


def tally(claims: list[Claim]) -> dict[str, int]:
    return {v: sum(c.verdict == v for c in claims) for v in VERDICTS}


def scorecard_rows(claims: list[Claim], link=lambda chapter: chapter, digits: int = 1) -> list[dict]:
    """Table rows for the scorecard: the claim (linked to its chapter), the paper's number, ours, the difference,
    the noise and the verdict."""
    return [{"claim": f"[{c.claim}]({link(c.chapter)})", "table": c.section, "measure": c.measure,
             "paper": value(c.paper, c.signed, digits), "ours": value(c.ours, c.signed, digits),
             "ours - paper": value(c.difference, True, digits), "judged against": c.noise, "verdict": c.verdict}
            for c in claims]


# ---- the claims of each chapter
def accuracy(result: dict, attack: str = "natural", which: str = "last") -> float:
    """A run's test accuracy under `attack` ("natural", "pgd20") for its last epoch or its best-on-validation one."""
    return result["student"][which]["test"]["attacks"][attack]["accuracy"]


def versus(a: list[dict], b: list[dict], attack: str, spread: float | None = None):
    """Runs a against runs b (one or more seeds each) under `attack`, last epoch: Welch over the seeds where both
    sides have several, else McNemar on the first runs' per-image results (`noise.compare`)."""
    from .noise import compare, compare_evaluations

    if len(a) >= 2 and len(b) >= 2:
        return compare([accuracy(r, attack) for r in a], [accuracy(r, attack) for r in b])
    return compare_evaluations(a[0]["student"]["last"], b[0]["student"]["last"], attack, spread)


def method_pair(chapter: str, section: str, runs: dict[str, list[dict]], first: str, second: str,
                paper_first: list[float], paper_second: list[float], attack: str, names: dict[str, str]) -> list[Claim]:
    """"`first` above (below, level with) `second`" in natural and in robust accuracy, as the paper's numbers (its
    columns 0 and 1: natural, PGD) show it beyond their own noise (`side`), against ours (`versus`), one claim each."""
    robust = attack.replace("pgd", "PGD-")
    out = []
    for i, (metric, label) in enumerate((("natural", "natural accuracy"), (attack, f"{robust} accuracy"))):
        effect = paper_first[i] - paper_second[i]
        noise = paper_margin(paper_first[i], paper_second[i])
        direction = side(effect, noise)
        out.append(judged(chapter, section, f"{names[first]}'s {label} {WORDS[direction]} {names[second]}'s",
                          f"{names[first]} - {names[second]}, {label} (points)", effect,
                          versus(runs[first], runs[second], metric), direction, noise))
    return out


def paired_rows(a: list[dict], b: list[dict], attacks: list[str]) -> list[dict]:
    """Runs a and b of the same seeds, seed by seed: per attack the difference (a - b, points), the images only a
    gets right and only b gets right, and McNemar's p."""
    from .noise import mcnemar_p

    out = []
    for ra, rb in zip(a, b):
        row = {"seed": ra["seed"]}
        for att in attacks:
            ea, eb = ra["student"]["last"]["test"]["attacks"][att], rb["student"]["last"]["test"]["attacks"][att]
            row[f"{att}: difference"] = ea["accuracy"] - eb["accuracy"]
            if ea.get("bits") and eb.get("bits"):
                p, only_a, only_b = mcnemar_p(ea["bits"], eb["bits"])
                row[f"{att}: only one right"] = f"{only_a} / {only_b}"
                row[f"{att}: p"] = p_value(p)
        out.append(row)
    return out


def trend(chapter: str, section: str, claim: str, measure: str, values: list[float], ours: list[float],
          paper: list[float], alpha: float = 0.05) -> Claim:
    """A claim that an accuracy rises (or falls) along a sweep: the paper's Spearman correlation between the swept
    values and its accuracies sets the direction; ours is judged by the two-sided Spearman test
    (`scipy.stats.spearmanr`) over our runs: the same sign at p < alpha reproduces the claim, the opposite sign
    contradicts it, anything else is within noise. `paper` and `ours` are the two correlations."""
    from .noise import spearman

    rho_paper, _ = spearman(values, paper, "two-sided")
    rho, p = spearman(values, ours, "two-sided")
    if rho_paper is None or rho_paper == 0:
        return untestable(chapter, section, claim, measure, rho_paper, "the paper's values show no trend")
    if rho is None:
        return Claim(chapter, section, claim, measure, rho_paper, None, "our accuracies are constant", WITHIN_NOISE)
    word = WITHIN if p >= alpha else (ABOVE if rho > 0 else BELOW)
    return Claim(chapter, section, claim, measure, rho_paper, rho,
                 f"Spearman over {len(values)} runs, {p_text(p)}", verdict(ABOVE if rho_paper > 0 else BELOW, word))


def collapsed(result: dict, alpha: float = 0.05) -> str | None:
    """Why a run's network cannot test a claim, or None: its natural test accuracy is not above chance (one over the
    number of classes) beyond noise (`scipy.stats.binomtest`, one-sided), as for a network that gives every image
    the same label."""
    from scipy.stats import binomtest

    nat = result["student"]["last"]["test"]["attacks"]["natural"]
    classes = nat.get("per_class") or {}
    if not classes:
        return None
    chance = 1 / len(classes)
    if binomtest(nat["correct"], nat["total"], chance, alternative="greater").pvalue < alpha:
        return None
    full = [c for c, acc in classes.items() if acc == 100.0]
    label = f"; every {full[0]} image is right and every other class wrong" if len(full) == 1 else ""
    return (f"the run collapsed: natural accuracy {nat['accuracy']:.1f}% on {nat['total']:,} images, chance "
            f"{100 * chance:.1f}%{label}")


def ablation(chapter: str, part: str, ablated: dict, full: dict, paper_ablated: list[float],
             paper_full: list[float], attack: str, column: int = 1, spread: float | None = None,
             stated: str | None = None) -> Claim:
    """Table 3a: removing `part` of CKTAT ("the clean-model initialisation") moves `attack` accuracy as in the paper
    (its column `column`: 0 natural, 1 PGD). The direction is the one the paper's numbers show beyond their own noise
    (`side`), or `stated` (ABOVE or BELOW) where the paper's text states it in words (Sec. 5.1: removing the
    initialisation or the teacher term "resulted in a decrease in the natural accuracy and robust accuracy"), which
    is the claim the paper makes. Ours: the ablated run against the full run on the same test images (McNemar), with
    the full run's seed spread (`spread`) as the run-to-run margin. An ablated run that collapsed to chance
    (`collapsed`) tests nothing: the claim is not testable, with the reason."""
    from .noise import compare_evaluations

    label = "natural" if column == 0 else attack.replace("pgd", "PGD-")
    effect = paper_ablated[column] - paper_full[column]
    noise = paper_margin(paper_ablated[column], paper_full[column])
    direction = stated or side(effect, noise)
    word = {BELOW: "lowers", ABOVE: "raises", LEVEL: "leaves unchanged"}[direction]
    metric = "natural" if column == 0 else attack
    claim, measure = f"Removing {part} {word} {label} accuracy", f"ablated - full CKTAT, {label} (points)"
    why = collapsed(ablated)
    if why:
        return untestable(chapter, "Table 3a", claim, measure, effect, why)
    return judged(chapter, "Table 3a", claim, measure, effect,
                  compare_evaluations(ablated["student"]["last"], full["student"]["last"], metric, spread), direction,
                  noise)


def by_section(claims: list[Claim]) -> dict[str, list[Claim]]:
    """Claims grouped by the table they come from, in the order they were saved."""
    out: dict[str, list[Claim]] = {}
    for c in claims:
        out.setdefault(c.section, []).append(c)
    return out


def tally_sentence(count: dict[str, int], profile: str) -> str:
    """The scorecard's opening: how many claims each verdict got."""
    total = sum(count.values())
    if not total:
        return f"No chapter of the {profile} profile has saved its claims yet: execute the chapters first."
    parts = [f"{count[v]} {v}" for v in VERDICTS if count[v]]
    return (f"**{total} claims tested in the {profile} profile: " + ", ".join(parts) + ".** "
            + f"{count[REPRODUCED]} of {total} show what the paper claims beyond the noise of our runs: its direction, "
            f"or, where it claims no difference, a difference our interval confines within the paper's own noise.")


def capacity(chapter: str, method: str, metric: str, label: str, runs: dict, paper: dict[str, dict[str, list[float]]],
             spread: float | None = None) -> Claim:
    """Table 1 for one method and accuracy: its gap to PGD-AT (clean teacher; `runs[(method, capacity)]` and
    `runs[("PGDAT", capacity)]`, results of `train.run`) changes from the small to the large student as the paper's
    numbers change from ResNet-18 to WRN-34-10 (`paper[network][method]` = [natural, PGD]). Ours: the per-image
    paired test of the four models (`noise.compare_change`), with PGD-AT's seed spread."""
    from .noise import Z, change_margin, compare_change

    col = 0 if metric == "natural" else 1
    effect = ((paper["wrn34_10"][method][col] - paper["wrn34_10"]["PGDAT"][col])
              - (paper["resnet18"][method][col] - paper["resnet18"]["PGDAT"][col]))
    ev = {k: runs[k]["student"]["last"]["test"]["attacks"][metric] for k in
          ((method, "large"), ("PGDAT", "large"), (method, "small"), ("PGDAT", "small"))}
    accs = tuple(e["accuracy"] for e in ev.values())
    bits = [e.get("bits") for e in ev.values()]
    if all(bits) and len({len(b) for b in bits}) == 1:
        ours = compare_change((bits[0], bits[1]), (bits[2], bits[3]), accs, spread)
    else:  # no per-image results: the binomial margin of four accuracies (and the seeds' spread)
        diff = (accs[0] - accs[1]) - (accs[2] - accs[3])
        n = min(e["total"] for e in ev.values())
        margin = max(change_margin(accs, n), Z * 2 * spread if spread else 0.0)
        word = WITHIN if abs(diff) <= margin else (ABOVE if diff > 0 else BELOW)
        ours = Comparison(word, diff, None, margin, f"binomial margin of four accuracies, {n:,} images each", margin)
    pa = [paper[net][m][col] for net in ("wrn34_10", "resnet18") for m in (method, "PGDAT")]
    noise = change_margin(pa, PAPER_IMAGES)
    direction = side(effect, noise)
    word = {ABOVE: "grows", BELOW: "shrinks", LEVEL: "does not change"}[direction]
    return judged(chapter, "Table 1", f"{method}'s {label} gap to PGD-AT (clean teacher) {word} with capacity",
                  f"change of {method} - PGD-AT, {label}, small to large student (points)", effect, ours, direction,
                  noise)


def capacity_claims(chapter: str, runs: dict, paper: dict[str, dict[str, list[float]]], attack: str,
                    spread: dict[str, float | None] | None = None) -> list[Claim]:
    """`capacity` for every method of the paper's Table 1 and both accuracies, from `book_runs.capacity`'s runs
    ((title, teacher, capacity) -> result; the clean or co-trained teacher's run of each method)."""
    spread = spread or {}
    by_method = {(m, k): res for (m, t, k), res in runs.items() if t in ("none", "clean", "clean (co-trained)")}
    robust = attack.replace("pgd", "PGD-")
    return [capacity(chapter, m, metric, label, by_method, paper, spread.get(metric))
            for m in paper["resnet18"] if m != "PGDAT"
            for metric, label in (("natural", "natural"), (attack, robust))]


def capacity_signs(chapter: str, runs: dict, paper: dict[str, dict[str, list[float]]], attack: str,
                   spread: dict[str, float | None] | None = None) -> list[Claim]:
    """Table 1's signs, as Sec. 4.2 of the paper reads them: with a clean teacher each method against PGD-AT on the
    same student, per accuracy, on the small student (ResNet-18 in the paper) and on the large one (WRN-34-10).
    The paper's text says "a dual decrease" on ResNet-18 and "a dual increase" on WRN-34-10; each claim here takes
    the direction of the paper's own number for that method (`side`: above, below, or level within its noise), so
    where its Table 1 departs from its text the claim follows the table. Ours: McNemar on the same test images with
    PGD-AT's seed spread (`spread`: accuracy -> spread) as the run-to-run margin."""
    from .noise import compare_evaluations

    spread = spread or {}
    by_method = {(m, k): res for (m, t, k), res in runs.items() if t in ("none", "clean", "clean (co-trained)")}
    robust = attack.replace("pgd", "PGD-")
    out = []
    for k, net in (("small", "resnet18"), ("large", "wrn34_10")):
        for m in paper[net]:
            if m == "PGDAT" or (m, k) not in by_method:
                continue
            for i, (metric, label) in enumerate((("natural", "natural"), (attack, robust))):
                effect = paper[net][m][i] - paper[net]["PGDAT"][i]
                noise = paper_margin(paper[net][m][i], paper[net]["PGDAT"][i])
                direction = side(effect, noise)
                ours = compare_evaluations(by_method[m, k]["student"]["last"], by_method["PGDAT", k]["student"]["last"],
                                           metric, spread.get(metric))
                out.append(judged(chapter, "Table 1 (signs)", f"On the {k} student, {m}'s {label} accuracy (clean "
                                  f"teacher) {WORDS[direction]} PGD-AT's", f"{m} - PGD-AT, {label}, {k} student (points)",
                                  effect, ours, direction, noise))
    return out


def ordering(chapter: str, section: str, column: str, ours: dict[str, float], paper: dict[str, float],
             alpha: float = 0.05) -> Claim:
    """Our ordering of the methods in one column agrees with the paper's: Spearman's correlation between our values
    and the paper's over the methods both have, two-sided test (`scipy.stats.spearmanr`); a positive correlation at
    p < alpha reproduces the ordering, a negative one contradicts it."""
    from .noise import spearman

    names = [m for m in ours if m in paper and ours[m] is not None and paper[m] is not None]
    rho, p = spearman([ours[m] for m in names], [paper[m] for m in names], "two-sided")
    claim = f"The {column} ordering of the {len(names)} methods"
    measure = "Spearman rho of ours against the paper's"
    if rho is None:
        return Claim(chapter, section, claim, measure, None, None, "constant values", WITHIN_NOISE)
    word = WITHIN if p >= alpha else (ABOVE if rho > 0 else BELOW)
    return Claim(chapter, section, claim, measure, None, rho, f"Spearman over {len(names)} methods, {p_text(p)}",
                 verdict(ABOVE, word))


def suite_accuracy(evaluation: dict, attack: str) -> float:
    return evaluation["attacks"][attack]["accuracy"]


def top_of(chapter: str, section: str, method: str, column: str, label: str, evals: dict[str, dict],
           paper: dict[str, dict], spread: float | None = None, excluding: tuple[str, ...] = ()) -> Claim:
    """Where `method` stands in `column` as the paper's numbers put it, among the methods but `excluding` (those
    the paper's text places above it: Sec. 5.2, CKTAT's natural accuracy "is only weaker than Generalist and
    PGDAT"), compared image by image on the attack suite's test images (`evals`: label -> `evaluate` result):
    - first beyond the paper's noise ("has the highest accuracy"): ours against our best other method, ABOVE;
    - first or second within the paper's noise of its first (`side` says LEVEL): the paper shows it at the top, tied;
      "no method is above it", ours against our best other method, NOT_BELOW (level or above reproduces it);
    - below the paper's first beyond its noise: ours against that method, BELOW.
    `spread`: one run's seed spread, the run-to-run margin of two single runs (`noise.compare`)."""
    from .noise import compare_evaluations

    pool = [m for m in paper if m != method and m not in excluding]
    paper_rival = max(pool, key=lambda m: paper[m][column])
    lead = paper[method][column] - paper[paper_rival][column]
    noise = paper_margin(paper[method][column], paper[paper_rival][column])
    direction = side(lead, noise)
    but = "" if not excluding else " but " + (excluding[0] if len(excluding) == 1 else
                                             f"{', '.join(excluding[:-1])} and {excluding[-1]}")
    if direction in (ABOVE, LEVEL):
        rival = max((m for m in evals if m != method and m not in excluding),
                    key=lambda m: suite_accuracy(evals[m], column))
        measure = f"{method} - the best other method{but} ({label}, points)"
        if direction == ABOVE:
            text = f"{method} has the highest {label} accuracy of the {len(evals) - len(excluding)} methods{but}"
        else:
            text = (f"No method{but} is above {method} in {label} accuracy (the paper's lead over {paper_rival} "
                    f"lies within its noise)")
            direction = NOT_BELOW
    else:
        rival = paper_rival
        text = f"{method}'s {label} accuracy {WORDS[direction]} {paper_rival}'s"
        measure = f"{method} - {paper_rival} ({label}, points)"
    return judged(chapter, section, text, measure, lead,
                  compare_evaluations(evals[method], evals[rival], column, spread), direction, noise)


def suite_pair(chapter: str, section: str, first: str, second: str, column: str, label: str, evals: dict[str, dict],
               paper: dict[str, dict], spread: float | None = None, stated: str | None = None) -> Claim:
    """`first` against `second` in one column (`evals`: label -> evaluation on the same test images), compared image
    by image (McNemar) with `spread`, one run's seed spread, as the run-to-run margin of two single runs. The
    direction is the one the paper's numbers show beyond their own noise, or `stated` (ABOVE or BELOW) where the
    paper's text states it in words."""
    from .noise import compare_evaluations

    effect = paper[first][column] - paper[second][column]
    noise = paper_margin(paper[first][column], paper[second][column])
    direction = stated or side(effect, noise)
    return judged(chapter, section, f"{first}'s {label} accuracy {WORDS[direction]} {second}'s",
                  f"{first} - {second}, {label} (points)", effect,
                  compare_evaluations(evals[first], evals[second], column, spread), direction, noise)


def shared_errors(chapter: str, shares: dict, claim_share: float, attack: str, alpha: float = 0.05) -> Claim:
    """DUCAT's premise: some adversarial examples are misclassified by every model (its abstract: up to
    `claim_share`% on CIFAR-10). Ours: the share of test images every model gets wrong under its own `attack`
    against what independent errors would give, an exact binomial test (`scipy.stats.binomtest`); where
    `verdicts.wrong_shares` was given the clean results, over the images every model classifies correctly clean
    (its "core"), so that errors every model already makes clean do not count as the attack's."""
    from scipy.stats import binomtest

    core = shares.get("core")
    basis = core if core else shares
    where = "of images every model classifies correctly clean " if core else ""
    n = basis["n"]
    k = round(basis["all"] * n / 100)
    p_ind = min(max(basis["independent"] / 100, 1e-12), 1 - 1e-12)
    p = float(binomtest(k, n, p_ind).pvalue)
    word = WITHIN if p >= alpha else (ABOVE if basis["all"] > basis["independent"] else BELOW)
    return Claim(chapter, "DUCAT", f"Adversarial examples ({attack}) {where}that every model gets wrong are more "
                 f"common than independent errors would make them", f"share of those images every model gets wrong (%)",
                 claim_share, basis["all"], f"binomial test against independent errors "
                 f"({basis['independent']:.2f}%), {n} images, {p_text(p)}", verdict(ABOVE, word), signed=False)
