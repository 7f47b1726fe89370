"""Chapter 10 (the budget ladder): which of the small budget's contradictions move towards the paper as the budget
grows, and the readings of the other chapters, each tested by the run it names. Torch-free.

The ladder (`book_runs.ladder`) trains PGD-AT, TRADES and CKTAT at the profile's budget ("1x", the seeds every
chapter shares), at twice and four times its epochs, and with the `paper` profile's training attack (`ATTACK_RUNG`:
PGD-10, step 2/255, RAAT's setting, App. D.1; the CKTAT paper states none) at its epochs. For each headline difference
of Table 4 (`PAIRS`, natural and robust accuracy):

- `ladder_rows`: the difference at each rung, ours (the 1x seeds' mean, one run elsewhere) and the paper's;
- `movement`: from 1x to a rung, whether the difference moves towards the paper's, away from it, or stays within
  noise. The change of a difference is four models on the same test images: the per-image paired test of
  `noise.compare_change`, with the run-to-run margin of four single runs from the network's pooled seed spread;
- `movement_sentence`: the page's sentence for every difference.

A reading of another chapter (`Reading`) is a prediction about how a run it names moves a result ("CKTAT's natural
lead over PGD-AT shrinks with a longer schedule"); `test_reading` decides it with the same comparison: *supported*
(the run moves the result the way the reading predicts, beyond the noise), *not supported* (it moves it the other
way, beyond the noise) or *within noise*. The chapters save their readings beside their claims
(`claims.save(..., readings=...)`), and the scorecard shows each contradicted claim's reading and verdict.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from .noise import ABOVE, BELOW, WITHIN, Comparison, compare_change  # noqa: F401  (BELOW: for the readings)

PAIRS = (("cktat", "pgdat"), ("trades", "pgdat"), ("cktat", "trades"))  # Table 4's headline differences
PAPER_KEYS = {"pgdat": "PGDAT", "trades": "TRADES", "cktat": "CKTAT_beta6"}
NAMES = {"pgdat": "PGD-AT", "trades": "TRADES", "cktat": "CKTAT"}
SUPPORTED, NOT_SUPPORTED, WITHIN_NOISE = "supported", "not supported", "within noise"
ATTACK_RUNG = "paper-profile attack"  # the rung trained with the `paper` profile's attack, not the CKTAT paper's


NOT_TESTED = "not tested"  # no run within the budget tests the reading
NOT_TRAINED_YET = "not trained yet"  # the run that tests it is a stage of the build that has not landed


def _evaluation(run: dict, attack: str) -> dict:
    return run["student"]["last"]["test"]["attacks"][attack]


def difference(runs: dict[str, list[dict]], first: str, second: str, attack: str) -> float:
    """`first` minus `second` (points): the means over the runs of each."""
    mean = lambda m: sum(_evaluation(r, attack)["accuracy"] for r in runs[m]) / len(runs[m])
    return mean(first) - mean(second)


def change(base: dict[str, dict], rung: dict[str, dict], first: str, second: str, attack: str,
           spread: float | None) -> Comparison:
    """How `first` - `second` changes from the `base` rung to `rung` (method -> one run each, the same test images):
    `noise.compare_change`, the per-image paired test of four models with the run-to-run margin of four single runs
    (`spread`: one run's spread, the pooled seeds' upper bound)."""
    ev = [_evaluation(rung[first], attack), _evaluation(rung[second], attack), _evaluation(base[first], attack),
          _evaluation(base[second], attack)]
    return compare_change((ev[0]["bits"], ev[1]["bits"]), (ev[2]["bits"], ev[3]["bits"]),
                          tuple(e["accuracy"] for e in ev), spread)


def movement(c: Comparison, start: float, paper: float) -> str:
    """"towards the paper", "away from the paper" or "within noise": the sign of a change `c` of our difference
    (from `start`) against the side on which the paper's difference lies."""
    if paper != paper:  # NaN: the paper reports no row at this setting
        return "no paper row"
    if c.word == WITHIN or paper == start:
        return "within noise"
    towards = (c.word == ABOVE) == (paper > start)
    return "towards the paper" if towards else "away from the paper"


def ladder_rows(ladder: dict[str, dict[str, dict]], seeds: dict[str, list[dict]], attack: str, paper: dict,
                labels: dict[str, str]) -> list[dict]:
    """One row per headline difference and accuracy: ours at every rung (the 1x column the seeds' mean) and the
    paper's (`paper`: method -> its Table 4 row, columns natural and PGD)."""
    out = []
    for first, second in PAIRS:
        for i, (a, label) in enumerate((("natural", "natural"), (attack, labels.get(attack, attack)))):
            row = {"difference": f"{NAMES[first]} - {NAMES[second]}", "accuracy": label}
            for rung, runs in ladder.items():
                row[rung] = difference(seeds if rung == "1x" else {m: [r] for m, r in runs.items()}, first, second, a)
            row["paper"] = paper[first][i] - paper[second][i]
            out.append(row)
    return out


def movements(ladder: dict[str, dict[str, dict]], seeds: dict[str, list[dict]], attack: str, paper: dict,
              spread: dict[str, float | None], rungs: tuple[str, ...]) -> list[dict]:
    """Per headline difference, accuracy and rung of `rungs`: its change from 1x (the seed-0 runs, image by image),
    and whether that moves it towards the paper's difference (`movement`), from where the change starts: the seed-0
    difference (`start`), not the seeds' mean, which may lie on the other side of the paper's. (`seeds`: the 1x seeds,
    kept for the callers' rows.)"""
    out = []
    base = {m: [r] for m, r in ladder["1x"].items()}
    for first, second in PAIRS:
        for i, a in enumerate(("natural", attack)):
            start = difference(base, first, second, a)
            for rung in rungs:
                if rung not in ladder:
                    continue
                c = change(ladder["1x"], ladder[rung], first, second, a, spread.get(a))
                out.append({"first": first, "second": second, "attack": a, "rung": rung, "comparison": c,
                            "start": start, "paper": paper[first][i] - paper[second][i],
                            "movement": movement(c, start, paper[first][i] - paper[second][i])})
    return out


def movement_sentence(moves: list[dict], labels: dict[str, str]) -> str:
    """Per rung, which differences move towards the paper's, away from it, or stay within noise."""
    out = []
    for rung in dict.fromkeys(m["rung"] for m in moves):
        group = [m for m in moves if m["rung"] == rung]
        parts = []
        for word in ("towards the paper", "away from the paper", "within noise", "no paper row"):
            names = [f"{NAMES[m['first']]} - {NAMES[m['second']]} in {labels.get(m['attack'], m['attack'])} "
                     f"({m['comparison'].difference:+.1f})" for m in group if m["movement"] == word]
            if names:
                parts.append(f"{word}: {', '.join(names)}")
        out.append(f"From 1x to {rung}, of the {len(group)} differences (change in points): " + "; ".join(parts) + ".")
    return " ".join(out)


# ---- readings, tested
@dataclass(frozen=True)
class Reading:
    """A chapter's reading of a contradicted claim (`claim`, its text), as a prediction tested by a run: `text` (the
    reading in words), `run` (which run tests it), `verdict` (SUPPORTED, NOT_SUPPORTED or WITHIN_NOISE), `evidence`
    (the numbers that decided it), `shows` (what the run shows, in words: it replaces a reading the run does not
    support), `budget` (whether the reading blames the small budget, tested by a larger one, or another cause)."""

    chapter: str
    claim: str
    text: str
    run: str
    verdict: str
    evidence: str
    shows: str = ""
    budget: bool = True  # the reading blames the small budget (a larger one tests it), not another cause

    def sentence(self, claims: list[str] | None = None) -> str:
        """The reading on the page, after the claim it reads (`claims`: the claims it reads, where one reading
        explains several with the same outcome: `sentences`)."""
        named = " and ".join(f"\u201c{c}\u201d" for c in (claims or [self.claim]))
        out = f"**Reading of {named}, tested.** {self.text} Tested by {self.run}: **{self.verdict}**; {self.evidence}."
        return out + (f" {self.shows}" if self.shows else "")


def sentences(readings: list[Reading]) -> list[str]:
    """The readings of a page, each said once: one reading of several claims whose tests came out alike (the same
    text, run, verdict and evidence, as when their run is not trained yet) is one paragraph naming them all; where
    each claim's test has its own evidence, each has its own paragraph."""
    groups: dict[tuple, list[Reading]] = {}
    for r in readings:
        groups.setdefault((r.text, r.run, r.verdict, r.evidence, r.shows), []).append(r)
    return [rs[0].sentence([r.claim for r in rs]) for rs in groups.values()]


def test_reading(c: Comparison, predicted: str) -> str:
    """The verdict on a reading that predicts the change `c` goes `predicted` (ABOVE or BELOW): supported when `c`
    says that direction beyond the noise, not supported when it says the other, within noise otherwise."""
    if c.word == WITHIN:
        return WITHIN_NOISE
    return SUPPORTED if c.word == predicted else NOT_SUPPORTED


def ladder_reading(chapter: str, claim: str, text: str, ladder: dict[str, dict[str, dict]] | None, first: str,
                   second: str, attack: str, rung: str, predicted: str, spread: float | None, label: str) -> Reading:
    """A reading that predicts `first` - `second` in `attack` moves `predicted` (ABOVE or BELOW) from the 1x runs to
    `rung` of the ladder, tested by the change of the four models (`change`, image by image, with the run-to-run margin
    of `spread`). Without the rung's runs (`ladder` None or lacking it), the reading waits for the build's `ladder`
    stage (`pending`)."""
    run = f"the ladder's {rung} runs of {NAMES[first]} and {NAMES[second]} (chapter 10)"
    if not ladder or rung not in ladder:
        return pending(chapter, claim, text, run, "ladder")
    c = change(ladder["1x"], ladder[rung], first, second, attack, spread)
    a, b = ladder["1x"], ladder[rung]
    before = _evaluation(a[first], attack)["accuracy"] - _evaluation(a[second], attack)["accuracy"]
    after = _evaluation(b[first], attack)["accuracy"] - _evaluation(b[second], attack)["accuracy"]
    verdict = test_reading(c, predicted)
    shows = (f"With {rung}, {NAMES[first]} - {NAMES[second]} in {label} goes from {before:+.1f} to {after:+.1f} "
             f"points (seed 0)" + ("." if verdict == SUPPORTED else
                                   ": the reading is replaced by what the run shows." if verdict == NOT_SUPPORTED else
                                   ", a change within the noise: the run does not decide the reading."))
    return Reading(chapter, claim, text, run, verdict, f"change {c.evidence()}", shows)


# The budget of the ladder's rungs and the runs the chapters' readings name: every run they add, evaluation included,
# at most 10 hours of this machine in all. `benchmarks/real_image_build.py` counts what they took as its part "the
# budget ladder and the readings' runs" (`PARTS`; a test checks the two agree).
LADDER_BUDGET_HOURS = 10.0


def untested(chapter: str, claim: str, text: str, run: str, cost: str, budget: bool = True) -> Reading:
    """A reading no committed run tests: which run would, and what it would cost."""
    return Reading(chapter, claim, text, run, NOT_TESTED, f"no stage of the build trains it: it would cost {cost}",
                   budget=budget)


def pending(chapter: str, claim: str, text: str, run: str, stage: str, budget: bool = True) -> Reading:
    """A reading whose run is a stage of the build (`cktat runs --stages <stage>`) that has not landed yet."""
    return Reading(chapter, claim, text, run, NOT_TRAINED_YET,
                   f"the build's `{stage}` stage trains them: `cktat runs --stages {stage}`",
                   budget=budget)


def as_dicts(readings: list[Reading]) -> list[dict]:
    return [asdict(r) for r in readings]



def shown(reading: Reading) -> bool:
    """Whether a chapter still shows a reading as its interpretation: not when the run that tests it does not support
    it (the tested statement says what the run shows instead)."""
    return reading.verdict != NOT_SUPPORTED
