"""The papers' claims as the book tests them: one row per claim, with the paper's number, ours, the noise it is
judged against and a verdict, computed by the chapter that shows it and gathered by the scorecard page.

One rule set, for every page:

1. **The direction.** Where the paper's text states a direction (an ablation "resulted in a decrease", CKTAT's
   natural accuracy "is only weaker than Generalist and PGDAT"), the claim is the text's (`stated`; the claim records
   `source="text"`). Elsewhere the paper's numbers set it: "above" or "below" when its two numbers differ beyond
   their own noise, "level" when they lie within it (`side`). The paper's noise is two binomial standard errors of
   the difference on its 10,000 test images (`paper_margin`); where its text and its numbers disagree, the scorecard's
   audit says so (`scorecard.audit`).
2. **Level, decided the same way for both sides.** One band, the paper's noise for that difference, decides "level"
   for the paper's numbers and for ours (an equivalence test): ours reproduce a level claim when our 95% interval for
   the difference lies inside the band, contradict it when our interval lies wholly outside it (a difference larger
   than the band, beyond our noise), and are within noise otherwise. "Not below" (first or tied first) is reproduced
   when our interval's low end lies above minus the band and contradicted when its high end lies below it.
3. **A direction.** Reproduced when our comparison (`noise.compare`: Welch over seeds, McNemar on the same images,
   with the pooled seed spread as the run-to-run margin of single runs; for a change of a gap, Table 1's, the paired
   test of four models, `noise.compare_change`) shows it beyond our noise, contradicted when it shows the opposite,
   within noise otherwise.
4. **A number.** A claim about a quantity the text states (DUCAT's "up to 40%") is judged on that quantity:
   reproduced when the paper's value lies inside our 95% interval, contradicted when it lies outside (`quantity`).
5. **A trend or an ordering** (a sweep, the ranking of Table 4's rows): Spearman's rank correlation, the text's
   direction or the sign of the paper's own correlation against ours, two-sided at p < 0.05 (`ablations.trend`,
   `baselines.ordering`; the orderings of one table's columns at 0.05 divided by their number, Bonferroni); within
   noise, the claim says our ordering has no detectable relation to the paper's.

A claim records the rows of `paper_numbers.yaml` it rests on (`rests_on`), so the scorecard can mark those that rest on
a row its audit of the paper's own numbers flags. A chapter saves its claims with `save` into
`<results>/claims/<chapter>.json` (written only when they changed, so re-executing a current chapter changes no
file) and opens its page with `findings`; the scorecard reads every chapter's file (`load_all`). Torch-free.
"""

from __future__ import annotations

import glob
import json
import os
from dataclasses import asdict, dataclass

from .noise import ABOVE, BELOW, WITHIN, Comparison, p_text, p_value, rounded

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
    rests_on: tuple[str, ...] = ()  # the rows of paper_numbers.yaml it rests on ("cktat.table4_cifar10.PGDAT")
    source: str = "numbers"  # where its direction comes from: the paper's "numbers" or its "text"

    @property
    def difference(self) -> float | None:
        return None if self.paper is None or self.ours is None else self.ours - self.paper


def verdict(direction: str, word: str, ours: Comparison | None = None, band: float | None = None) -> str:
    """The verdict on a claim that our side lies in `direction` (ABOVE, BELOW, LEVEL or NOT_BELOW) when our comparison
    `ours` says `word` (rules 2 and 3 of the module docstring). LEVEL and NOT_BELOW need our interval
    (`ours.difference` +- `ours.half_width`) and the `band` that decided the paper's side: the same band decides ours.
    A difference our test does not detect is not evidence that there is none: it only reproduces a level claim when
    our interval excludes every difference as large as the band."""
    if direction in (LEVEL, NOT_BELOW):
        if ours is None or ours.half_width is None or band is None:
            raise ValueError(f"a {direction!r} claim needs our comparison with its half_width and the band")
        low, high = ours.difference - ours.half_width, ours.difference + ours.half_width
        if direction == LEVEL:
            if -band <= low and high <= band:
                return REPRODUCED
            return CONTRADICTED if low > band or high < -band else WITHIN_NOISE
        if low >= -band:
            return REPRODUCED
        return CONTRADICTED if high < -band else WITHIN_NOISE
    if direction not in (ABOVE, BELOW):
        raise ValueError(f"a claimed direction is {ABOVE!r}, {BELOW!r} or {LEVEL!r}, not {direction!r}")
    if word == WITHIN:
        return WITHIN_NOISE
    return REPRODUCED if word == direction else CONTRADICTED


def side(effect: float, margin: float | None = None) -> str:
    """The direction the paper's numbers show: LEVEL when the effect lies within the paper's own sampling `margin`
    (two binomial standard errors on its test images; `paper_margin`) or is exactly zero, else ABOVE or BELOW by its
    sign."""
    if (margin is not None and abs(effect) <= margin) or effect == 0:
        return LEVEL
    return ABOVE if effect > 0 else BELOW


def paper_margin(a: float, b: float) -> float:
    """The sampling noise of the difference of two of the paper's accuracies, each on its `PAPER_IMAGES` test
    images (`noise.compare`'s binomial margin)."""
    from .noise import compare

    return compare(a, b, n=PAPER_IMAGES).margin


WORDS = {ABOVE: "above", BELOW: "below", LEVEL: "level with", NOT_BELOW: "not below"}


def judged(chapter: str, section: str, claim: str, measure: str, paper: float | None, ours: Comparison,
           direction: str | None = None, band: float | None = None, rests_on: tuple[str, ...] = (),
           stated: bool = False) -> Claim:
    """A claim whose paper effect `paper` (points, signed) sets the direction (or `direction`: ABOVE, BELOW, LEVEL or
    NOT_BELOW, the last two with the `band` that decides them; `stated`: the direction is the paper's text's), judged
    by our comparison `ours` (`verdict`); a claim the paper states without a number (`paper` None) must give its
    direction. A paper effect of exactly zero with no direction given is not testable."""
    if direction is None:
        if paper is None:
            raise ValueError(f"{claim!r}: a claim needs the paper's effect or a direction")
        if paper == 0:
            return untestable(chapter, section, claim, measure, paper, "the paper's two numbers are equal",
                              rests_on)
        direction = ABOVE if paper > 0 else BELOW
    level = direction in (LEVEL, NOT_BELOW)
    return Claim(chapter, section, claim, measure, paper, ours.difference, _evidence(ours, band if level else None),
                 verdict(direction, ours.word, ours, band), rests_on=tuple(rests_on),
                 source="text" if stated else "numbers")


def quantity(chapter: str, section: str, claim: str, measure: str, paper: float, ours: float, low: float, high: float,
             test: str, rests_on: tuple[str, ...] = (), signed: bool = False) -> Claim:
    """A claim about a quantity (rule 4): the paper's `paper` against our `ours` with its 95% interval `low` to `high`
    (from `test`): reproduced when the paper's value lies inside our interval, contradicted when outside."""
    return Claim(chapter, section, claim, measure, paper, ours, f"{test}: our 95% interval {low:.1f} to {high:.1f}",
                 REPRODUCED if low <= paper <= high else CONTRADICTED, signed=signed, rests_on=tuple(rests_on),
                 source="text")


def _evidence(c: Comparison, band: float | None = None) -> str:
    """What a comparison was judged against, without its difference (the claim shows that): "McNemar, 5000 paired
    images, p = 0.003"; for a claim of no difference also our interval's half-width against the band."""
    parts = [c.test]
    if c.p is not None:
        parts.append(p_text(c.p))
    if c.margin is not None:
        parts.append(f"noise {c.margin:.1f} points")
    if band is not None and c.half_width is not None:
        parts.append(f"our interval ±{c.half_width:.1f} points against the band ±{band:.1f} (the paper's noise)")
    return ", ".join(parts)


def untestable(chapter: str, section: str, claim: str, measure: str, paper: float | None, why: str,
               rests_on: tuple[str, ...] = ()) -> Claim:
    return Claim(chapter, section, claim, measure, paper, None, why, UNTESTABLE, rests_on=tuple(rests_on))


def value(v: float | None, signed: bool, digits: int = 1) -> str:
    """A claim's number in a cell or sentence; one that rounds to zero prints as 0 ("+0.0", never "-0.0")."""
    if v is None:
        return "-"
    v = rounded(v, digits)
    return f"{v:+.{digits}f}" if signed else f"{v:.{digits}f}"


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


def in_list(claim: str) -> str:
    """A claim as an item of a sentence's list: "The PGD-20 ordering ..." -> "the PGD-20 ordering ...", "Removing the
    ..." -> "removing the ..." (a name such as CKTAT, TRADES's or PGD-20 keeps its capitals)."""
    first = claim.split(" ", 1)[0]
    return claim[0].lower() + claim[1:] if first[:1].isupper() and first[1:].islower() else claim


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
            lines.append(f"{group_label(v)} " + "; ".join(in_list(c) for c in group) + ".")
    return "\n\n".join(lines)


# The chapters that test claims of the papers and save them (a test checks this against the notebooks).
CHAPTERS = ("02_cktat", "03_label_design", "05_attributions", "06_capacity", "07_ablations", "08_baselines",
            "09_raat_ducat")  # chapter 10 tests no claim of a paper: it gathers the readings the others saved


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
    one = len(left) == 1
    return (f"Not counted yet: {len(left)} of the {len(CHAPTERS)} chapters that test claims {'has' if one else 'have'} "
            f"saved none in the {profile} profile ({', '.join(left)}: not executed there yet, or waiting for a run "
            f"{'its' if one else 'their'} page names), so {'its' if one else 'their'} claims are missing from this "
            f"page.")


def save(results: str, chapter: str, claims: list[Claim], readings: list | None = None) -> str:
    """Write a chapter's claims (and its tested readings, `budget.Reading`) to `<results>/claims/<chapter>.json`, only
    when they differ from what is there."""
    path = os.path.join(folder(results), f"{chapter}.json")
    doc = {"chapter": chapter, "claims": [asdict(c) for c in claims]}
    if readings:
        doc["readings"] = [asdict(r) for r in readings]
    text = json.dumps(doc, indent=1) + "\n"
    os.makedirs(os.path.dirname(path), exist_ok=True)
    _write_if_changed(path, text)
    write_index(results)
    return path


def withdraw(results: str, chapter: str) -> None:
    """Remove a chapter's saved claims (its page no longer shows them: `reproduce._pending_page`)."""
    path = os.path.join(folder(results), f"{chapter}.json")
    if os.path.exists(path):
        os.remove(path)
        write_index(results)


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
            out += [Claim(**{**c, "rests_on": tuple(c.get("rests_on", ()))}) for c in json.load(fh)["claims"]]
    return out


def load_readings(results: str) -> list[dict]:
    """Every chapter's saved readings (`budget.Reading` as dicts), in chapter order."""
    index = os.path.join(folder(results), INDEX)
    names = json.load(open(index))["chapters"] if os.path.isfile(index) else \
        [os.path.basename(p)[:-len(".json")] for p in _chapter_files(results)]
    out = []
    for name in names:
        with open(os.path.join(folder(results), f"{name}.json")) as fh:
            out += json.load(fh).get("readings", [])
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
                paper_first: list[float], paper_second: list[float], attack: str, names: dict[str, str],
                stated: tuple[str | None, str | None] = (None, None), rests_on: tuple[str, ...] = (),
                spread: dict[str, float | None] | None = None) -> list[Claim]:
    """"`first` above (below, level with) `second`" in natural and in robust accuracy (the paper's columns 0 and 1:
    natural, PGD), one claim each: the direction the paper's text states for that column (`stated`: ABOVE, BELOW or
    None), else the one its numbers show (`side`); ours by `versus` (Welch over the seeds where both sides have
    several, else McNemar with `spread`, column -> the pooled seed spread's upper bound, as the run-to-run margin)."""
    robust = attack.replace("pgd", "PGD-")
    out = []
    for i, (metric, label) in enumerate((("natural", "natural accuracy"), (attack, f"{robust} accuracy"))):
        effect = paper_first[i] - paper_second[i]
        band = paper_margin(paper_first[i], paper_second[i])
        direction = stated[i] or side(effect, band)
        out.append(judged(chapter, section, f"{names[first]}'s {label} {WORDS[direction]} {names[second]}'s",
                          f"{names[first]} - {names[second]}, {label} (points)", effect,
                          versus(runs[first], runs[second], metric, (spread or {}).get(metric)), direction, band,
                          rests_on, stated=stated[i] is not None))
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


