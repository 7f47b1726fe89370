"""Chapter 10 (the budget ladder): which of the small budget's contradictions move towards the paper as the budget
grows, and the readings of the other chapters, each tested by the run it names. Torch-free.

The ladder (`book_runs.ladder`) trains PGD-AT, TRADES and CKTAT at the profile's budget ("1x", the seeds every
chapter shares), at twice and four times its epochs, and with the `paper` profile's training attack (`ATTACK_RUNG`:
PGD-10, step 2/255, RAAT's setting, App. D.1; the CKTAT paper states none) at its epochs. For each headline difference
of Table 4 (`PAIRS`, natural and robust accuracy):

- `ladder_rows`: the difference at each rung, ours (the 1x seeds' mean, one run elsewhere) and the paper's;
- `movements`: from 1x (the seeds' mean) to a rung, whether the difference moves towards the paper's, past it, away
  from it, or stays within noise (`movement`). The change is measured image by image on the same test images
  (`noise.compare_change`: the rung's two runs against the seeds of each method), tested at 0.05 over the rung's six
  differences (Bonferroni) and counted only beyond the run-to-run margin of those runs (`noise.change_margin`, from
  the network's pooled seed spread at its upper bound);
- `movement_sentence`: the page's sentence for every difference.

A reading of another chapter (`Reading`) is a prediction about how a run it names moves a result ("CKTAT's natural
lead over PGD-AT shrinks with a longer schedule"); `test_reading` decides it with the same comparison: *supported*
(the run moves the result the way the reading predicts, beyond the noise), *not supported* (it moves it the other
way, beyond the noise) or *within noise*. The chapters save their readings beside their claims
(`claims.save(..., readings=...)`), and the scorecard shows each contradicted claim's reading and verdict.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from .noise import ABOVE, BELOW, WITHIN, Comparison, compare_change, compare_evaluations
from .report import listed

PAIRS = (("cktat", "pgdat"), ("trades", "pgdat"), ("cktat", "trades"))  # Table 4's headline differences
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


def _seeds(base: dict[str, dict | list[dict]], method: str) -> list[dict]:
    runs = base[method]
    return runs if isinstance(runs, list) else [runs]


def change(base: dict[str, dict | list[dict]], rung: dict[str, dict], first: str, second: str, attack: str,
           spread: float | None, alpha: float = 0.05) -> Comparison:
    """How `first` - `second` changes from the `base` rung (method -> its runs: the profile's seeds, or one run) to
    `rung` (method -> one run each), all on the same test images: `noise.compare_change`, per image the rung's
    difference minus the seeds' mean difference, with the run-to-run margin of those runs (`noise.change_margin`:
    `spread`, one run's spread, the pooled seeds' upper bound), at `alpha` (a family's share)."""
    f, s = _seeds(base, first), _seeds(base, second)
    k = min(len(f), len(s))
    f, s = f[:k], s[:k]
    mean = lambda runs: sum(_evaluation(r, attack)["accuracy"] for r in runs) / len(runs)
    after = (_evaluation(rung[first], attack), _evaluation(rung[second], attack))
    return compare_change((after[0]["bits"], after[1]["bits"]),
                          ([_evaluation(r, attack)["bits"] for r in f], [_evaluation(r, attack)["bits"] for r in s]),
                          (after[0]["accuracy"], after[1]["accuracy"], mean(f), mean(s)), spread, alpha)


TOWARDS, AWAY, PAST, WITHIN_WORD, AT_PAPER, NO_ROW = ("towards the paper", "away from the paper", "past the paper",
                                                      "within noise", "off the paper's value", "no paper row")


def movement(c: Comparison, start: float, paper: float, band: float = 0.0) -> str:
    """Where a change `c` of our difference (from `start`, points) takes it against the paper's (`paper`, whose own
    noise is `band`: `claims.paper_margin`): within noise when `c` does not leave the noise; else towards the paper when
    it ends nearer the paper's value than it started without crossing it, or within the paper's band of it; past the
    paper when it crosses the paper's value and ends beyond that band (an overshoot, nearer or not); away from the
    paper when it moves the other way; off the paper's value when it started within the paper's band of it and moved
    beyond the noise."""
    if paper != paper:  # NaN: the paper reports no row at this setting
        return NO_ROW
    if c.word == WITHIN:
        return WITHIN_WORD
    if abs(start - paper) <= band:
        return AT_PAPER
    end = start + c.difference
    if (c.difference > 0) != (paper > start):
        return AWAY
    crossed = (end - paper) * (start - paper) < 0
    return PAST if crossed and abs(end - paper) > band else TOWARDS


def ladder_rows(ladder: dict[str, dict[str, dict]], seeds: dict[str, list[dict]], attack: str, paper: dict,
                labels: dict[str, str]) -> list[dict]:
    """One row per headline difference and accuracy: ours at every rung (the 1x column the seeds' mean; None where a
    rung's run of either method has not landed, `book_runs.ladder`) and the paper's (`paper`: method -> its Table 4
    row, columns natural and PGD)."""
    out = []
    for first, second in PAIRS:
        for i, (a, label) in enumerate((("natural", "natural"), (attack, labels.get(attack, attack)))):
            row = {"difference": f"{NAMES[first]} - {NAMES[second]}", "accuracy": label}
            for rung, runs in ladder.items():
                landed = rung == "1x" or (first in runs and second in runs)
                row[rung] = (difference(seeds if rung == "1x" else {m: [r] for m, r in runs.items()}, first, second, a)
                             if landed else None)
            row["paper"] = paper[first][i] - paper[second][i]
            out.append(row)
    return out


def movements(ladder: dict[str, dict[str, dict]], seeds: dict[str, list[dict]], attack: str, paper: dict,
              spread: dict[str, float | None], rungs: tuple[str, ...], alpha: float = 0.05,
              pairs=PAIRS) -> list[dict]:
    """Per headline difference (of `pairs`), accuracy and rung of `rungs`: its change from the profile's budget (the mean over the
    `seeds` of each method, image by image, `change`) and where that takes it against the paper's difference
    (`movement`, with the paper's own noise). The differences of one rung are one family: each is tested at `alpha`
    divided by their number (Bonferroni, as a table's orderings are: all six of a rung, whichever `pairs` are asked
    for, so a chapter that asks for one pair gets chapter 10's verdicts). A difference without a seed spread, or whose
    runs collapsed (`ablations.collapsed`), is not judged ("not testable"); one whose rung lacks a run of either method
    waits for it (NOT_TRAINED_YET)."""
    from .ablations import collapsed

    out = []
    family = 2 * len(PAIRS)
    for first, second in pairs:
        for i, a in enumerate(("natural", attack)):
            start = difference(seeds, first, second, a)
            target = paper[first][i] - paper[second][i]
            band = paper_band(paper[first][i], paper[second][i])
            for rung in rungs:
                if rung not in ladder:
                    continue
                if first not in ladder[rung] or second not in ladder[rung]:
                    out.append({"first": first, "second": second, "attack": a, "rung": rung, "comparison": None,
                                "start": start, "paper": target, "band": band, "movement": NOT_TRAINED_YET})
                    continue
                runs = [ladder[rung][first], ladder[rung][second]] + seeds[first] + seeds[second]
                if spread.get(a) is None or any(collapsed(r) for r in runs):
                    out.append({"first": first, "second": second, "attack": a, "rung": rung, "comparison": None,
                                "start": start, "paper": target, "band": band, "movement": "not testable"})
                    continue
                c = change(seeds, ladder[rung], first, second, a, spread[a], alpha / family)
                out.append({"first": first, "second": second, "attack": a, "rung": rung, "comparison": c,
                            "start": start, "paper": target, "band": band,
                            "movement": movement(c, start, target, band)})
    return out


def not_landed(ladder: dict[str, dict[str, dict]], methods=tuple(NAMES)) -> str:
    """The sentence naming the rungs' runs that have not landed (`book_runs.ladder` without training), by rung, or ""
    when every run is here."""
    parts = []
    for rung, runs in ladder.items():
        missing = [NAMES[m] for m in methods if m not in runs]
        if missing:
            parts.append(f"{listed(missing)} {'with the' if rung == ATTACK_RUNG else 'at'} {rung}")
    if not parts:
        return ""
    return (f"Not trained yet: {'; '.join(parts)}. The build's `ladder` stage trains them (`cktat runs --stages "
            f"ladder`, resumable), and this page shows each run as it lands: until then a difference that needs one "
            f"is marked *{NOT_TRAINED_YET}*.")


def pair_sentence(moves: list[dict], labels: dict[str, str]) -> str:
    """What the ladder's rungs in `moves` (`movements` of one pair) do to that pair's differences, rung by rung, as
    chapter 10 decides it: "At 4x epochs, towards the paper in natural (-2.8) and PGD-20 (+2.9)."; "" without a
    measured rung."""
    out = []
    for rung in dict.fromkeys(m["rung"] for m in moves):
        group = [m for m in moves if m["rung"] == rung and m["comparison"] is not None]
        if not group:
            continue
        words = dict.fromkeys(m["movement"] for m in group)
        parts = [f"{word} in " + listed([f"{labels.get(m['attack'], m['attack'])} ({m['comparison'].difference:+.1f})"
                                         for m in group if m["movement"] == word]) for word in words]
        out.append(f"At {rung}, {'; '.join(parts)}.")
    if not out:
        return ""
    m = moves[0]
    return (f"Along the ladder ([chapter 10](10_budget.ipynb)), {NAMES[m['first']]} - {NAMES[m['second']]} changes "
            f"from the profile's budget (the seeds' mean) as follows, in points. " + " ".join(out))


def paper_band(a: float, b: float) -> float:
    """The paper's own noise for the difference of two of its accuracies (`claims.paper_margin`); 0 without a row."""
    if a != a or b != b:
        return 0.0
    from .claims import paper_margin

    return paper_margin(a, b)


def movement_sentence(moves: list[dict], labels: dict[str, str]) -> str:
    """Per rung, which differences move towards the paper's, past it, away from it, off it or stay within noise, with
    the family's test level and the smallest change the training noise lets count."""
    out = []
    for rung in dict.fromkeys(m["rung"] for m in moves):
        group = [m for m in moves if m["rung"] == rung]
        parts = []
        if all(m["movement"] == NOT_TRAINED_YET for m in group):
            out.append(f"At {rung}, no difference can be measured yet.")
            continue
        for word in (TOWARDS, PAST, AWAY, AT_PAPER, WITHIN_WORD, NO_ROW, "not testable", NOT_TRAINED_YET):
            names = [f"{NAMES[m['first']]} - {NAMES[m['second']]} in {labels.get(m['attack'], m['attack'])}"
                     + (f" ({m['comparison'].difference:+.1f})" if m["comparison"] else "")
                     for m in group if m["movement"] == word]
            if names:
                parts.append(f"{word}: {', '.join(names)}")
        out.append(f"From 1x to {rung}, of the {len(group)} differences (change in points): " + "; ".join(parts) + ".")
    margins = {labels.get(m["attack"], m["attack"]): m["comparison"].margin for m in moves if m["comparison"]}
    if margins:
        out.append(f"Each change is tested image by image at 0.05 over the {2 * len(PAIRS)} differences of a rung "
                   f"(Bonferroni) and counts only beyond the training noise of its runs: "
                   + ", ".join(f"{v:.1f} points in {k}" for k, v in margins.items() if v)
                   + "; a smaller change, whatever its direction, is within noise.")
    return " ".join(out)


# ---- readings, tested
@dataclass(frozen=True)
class Reading:
    """A chapter's reading of a contradicted claim (`claim`, its text), as a prediction tested by a run: `text` (the
    reading in words), `run` (which run tests it), `verdict` (SUPPORTED, NOT_SUPPORTED or WITHIN_NOISE), `evidence`
    (the numbers that decided it), `shows` (what the run shows, in words: it replaces a reading the run does not
    support), `budget` (whether the reading blames the small budget, tested by a larger one, or another cause),
    `resolves` (for a supported reading: whether the contradiction itself is gone at that run, or only narrowed)."""

    chapter: str
    claim: str
    text: str
    run: str
    verdict: str
    evidence: str
    shows: str = ""
    budget: bool = True  # the reading blames the small budget (a larger one tests it), not another cause
    resolves: bool | None = None  # at the run that tests it, is the contradiction gone (None: not asked)

    def sentence(self, claims: list[str] | None = None) -> str:
        """The reading on the page, after the claim it reads (`claims`: the claims it reads, where one reading
        explains several with the same outcome: `sentences`)."""
        return f"**Reading of {_named(claims or [self.claim])}, tested.** {self.text} {self.test()}"

    def test(self, lead: str = "Tested") -> str:
        """How its run decided it: the run, the verdict, the evidence and what the run shows."""
        out = f"{lead} by {self.run}: **{self.verdict}**; {self.evidence}."
        return out + (f" {self.shows}" if self.shows else "")


def _named(claims: list[str]) -> str:
    return listed([f"\u201c{c}\u201d" for c in claims])


def sentences(readings: list[Reading]) -> list[str]:
    """The readings of a page, each said once: one reading of several claims whose tests came out alike (the same
    text, run, verdict and evidence, as when their run is not trained yet) is one paragraph naming them all; one
    reading of several claims each tested apart is one paragraph naming them all, then each claim's test as an item."""
    groups: dict[str, dict[tuple, list[Reading]]] = {}
    for r in readings:
        groups.setdefault(r.text, {}).setdefault((r.run, r.verdict, r.evidence, r.shows), []).append(r)
    out = []
    for text, tests in groups.items():
        if len(tests) == 1:
            [rs] = tests.values()
            out.append(rs[0].sentence([r.claim for r in rs]))
            continue
        claims = [r.claim for rs in tests.values() for r in rs]
        out.append(f"**Reading of {_named(claims)}, tested.** {text}\n\n"
                   + "\n".join(f"- {_named([r.claim for r in rs])}: {rs[0].test('tested')}" for rs in tests.values()))
    return out


def test_reading(c: Comparison, predicted: str) -> str:
    """The verdict on a reading that predicts the change `c` goes `predicted` (ABOVE or BELOW): supported when `c`
    says that direction beyond the noise, not supported when it says the other, within noise otherwise."""
    if c.word == WITHIN:
        return WITHIN_NOISE
    return SUPPORTED if c.word == predicted else NOT_SUPPORTED


def ladder_reading(chapter: str, claim: str, text: str, ladder: dict[str, dict[str, dict]] | None, first: str,
                   second: str, attack: str, rung: str, predicted: str, spread: float | None, label: str,
                   stage: str = "ladder", run: str | None = None, names: dict[str, str] = NAMES) -> Reading:
    """A reading that predicts `first` - `second` in `attack` moves `predicted` (ABOVE or BELOW) from the profile's
    budget (`ladder["1x"]`: method -> its seeds, or one run) to `rung` of the ladder, tested by the change
    (`change`: image by image, the rung's difference against the seeds' mean, with the run-to-run margin of
    `spread`; where one method has fewer seeds, both keep as many as it has). Without the rung's runs of the two
    methods (`ladder` None or lacking either), the reading waits for the build's `stage` (`pending`). `run`: the runs
    that test it, in words (default: the ladder's, chapter 10); `names`: method -> its name. The verdict says whether
    the prediction holds, not that the mechanism the reading names is the only one that could make it hold."""
    run = run or f"the ladder's {rung} runs of {names[first]} and {names[second]} (chapter 10)"
    if not ladder or any(m not in ladder.get(rung, {}) for m in (first, second)):
        return pending(chapter, claim, text, run, stage)
    if spread is None:
        return Reading(chapter, claim, text, run, NOT_TESTED, "the network has no seed spread to judge one run by")
    c = change(ladder["1x"], ladder[rung], first, second, attack, spread)
    seeds = {m: _seeds(ladder["1x"], m) for m in (first, second)}
    k = min(len(seeds[first]), len(seeds[second]))
    before = difference({m: s[:k] for m, s in seeds.items()}, first, second, attack)  # the seeds `change` compares
    after = before + c.difference
    verdict = test_reading(c, predicted)
    # the contradiction lay on the side the reading predicts the difference leaves: is it still there at the rung?
    there = compare_evaluations(ladder[rung][first]["student"]["last"], ladder[rung][second]["student"]["last"],
                                attack, spread)
    resolves = None if verdict != SUPPORTED else there.word != (BELOW if predicted == ABOVE else ABOVE)
    shows = (f"With {rung}, {names[first]} - {names[second]} in {label} goes from {before:+.1f} "
             + (f"(the mean of {k} seeds) " if k > 1 else "") + f"to {after:+.1f} points"
             + ((": the contradiction is gone there." if resolves else
                 f": narrowed, but the difference at {rung} still contradicts the claim beyond the noise "
                 f"({there.evidence()}).") if verdict == SUPPORTED else
                f": the run moves it the other way, so the reading is replaced by what the run shows: the gap "
                f"{'widens' if abs(after) > abs(before) else 'narrows'} with {rung}." if verdict == NOT_SUPPORTED else
                ", a change within the noise: the run does not decide the reading."))
    return Reading(chapter, claim, text, run, verdict, f"change {c.evidence()}", shows, resolves=resolves)


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
