"""Chapter 06 (the paper's Table 1): does a teacher help a small student less than a large one?

The pair of students (`capacity_candidates`, `separation`), the claims of Table 1 and of Sec. 4.2's reading of it (`capacity`,
`capacity_claims`, `capacity_signs`), each teacher against PGD-AT image by image (`teacher_contrast_paired`,
`teacher_tally`), the readings of the contradicted signs tested by runs (`teacher_readings`, `schedule_readings`), what a
pair that separates would cost (`wider_pair_sentence`) and the page's sentences (`capacity_check_sentence`,
`capacity_reading`). Torch-free.
"""

from __future__ import annotations

import math

from cktat_core.results import duration

from . import budget
from .claims import CONTRADICTED, WORDS, Claim, judged
from .noise import ABOVE, BELOW, WITHIN, Comparison, compare_evaluations
from .report import listed


# Sec. 4.2 and Table 1 of the CKTAT paper: with a clean teacher, ARD, IAD, RSLAD, LTD and LBGAT lose natural and
# robust accuracy against PGD-AT on ResNet-18 ("a dual decrease") and gain both on WRN-34-10 ("a dual increase").
RESNET_FAMILY = ("resnet18", "preact_resnet18", "wrn34_10", "wrn28_10")

def capacity_candidates(model: str, width: int, default_width: int) -> list[dict[str, dict]]:
    """The pairs of students Table 1 may use, the nearest first, as the config fields that change from the chapter's
    network ({} for the chapter's own network, so its runs are the ones every other chapter shares): ResNet-18 and
    WRN-34-10 (the paper's pair) when the chapter's network is a ResNet or a WRN; for the small CNN, its own width as
    the large student and a half, a quarter, then an eighth of it as the small one (`width` 0 means
    `default_width`). The chapter uses the first pair whose students differ on validation (`separated`)."""
    if model in RESNET_FAMILY:
        return [{"small": {} if model == "resnet18" else {"model": "resnet18"},
                 "large": {} if model == "wrn34_10" else {"model": "wrn34_10"}}]
    w = width or default_width
    if w < 2:
        raise ValueError(f"a width of {w} cannot be halved for a smaller student")
    return [{"small": {"width": w // d}, "large": {}} for d in (2, 4, 8) if w // d >= 1]


def capacity_pair(model: str, width: int, default_width: int) -> dict[str, dict]:
    """The cheapest candidate pair (`capacity_candidates`)."""
    return capacity_candidates(model, width, default_width)[0]


def separation(small: list[dict], large: list[dict], n_val: int) -> dict:
    """PGD-AT's best validation accuracies over the epochs of the large student against the small one's (`small`,
    `large`: the runs' histories), per accuracy: `noise.compare` on the n_val validation images."""
    from .noise import compare

    key = next(k for k in small[0] if k.startswith("val_pgd"))
    best = lambda h, k: max(e[k] for e in h)
    return {k: compare(best(large, k), best(small, k), n=n_val) for k in ("val_natural", key)}


def separated(sep: dict) -> bool:
    """Whether the large student lies above the small one beyond noise in every accuracy of `separation`: a pair
    that can test whether capacity changes what a teacher does."""
    return all(c.word == ABOVE for c in sep.values())


def teacher_tally(contrasts: list[dict[str, dict[str, int]]]) -> dict[str, dict[int, int]]:
    """How many (method, accuracy) comparisons of `teacher_contrast` fall above (1), below (-1) and within (0)
    noise, per comparison ("robust", "clean": against PGD-AT; "robust_vs_clean")."""
    out = {k: {1: 0, -1: 0, 0: 0} for k in ("robust", "clean", "robust_vs_clean")}
    for c in contrasts:
        for signs in c.values():
            for k, v in signs.items():
                out[k][v] += 1
    return out

def teacher_tally_sentence(student: str, tally: dict[str, dict[int, int]]) -> str:
    """The page's sentence for one student's `teacher_tally`."""
    def part(k):
        t = tally[k]
        return f"above in {t[1]}, below in {t[-1]}, within noise in {t[0]}"
    total = sum(tally["robust"].values())
    return (f"On the {student} student, of {total} comparisons (method x accuracy) with PGD-AT: with the robust "
            f"teacher the distilled student lies {part('robust')}; with the clean teacher {part('clean')}. The robust "
            f"teacher against the clean one: {part('robust_vs_clean')}.")

def capacity_check_sentence(best: dict[str, dict[str, float]], sep: dict, val_robust: str, name: dict[str, str],
                            n_val: int) -> str:
    """Whether the two students differ on validation (PGD-AT's best validation accuracies; `sep`: key ->
    `noise.Comparison` of the large against the small student), and what that means for the chapter's question."""
    said = {"above": "the large student lies above the small one beyond sampling noise",
            "below": "the large student lies BELOW the small one beyond sampling noise",
            "within noise": "the two lie within sampling noise of each other"}
    vr = val_robust.replace("val_pgd", "PGD-")
    text = (f"Best validation accuracy of PGD-AT over the epochs ({n_val:,} validation images): natural "
            f"{best['small']['val_natural']:.1f}% ({name['small']}) and {best['large']['val_natural']:.1f}% "
            f"({name['large']}): {said[sep['val_natural'].word]}; {vr} {best['small'][val_robust]:.1f}% and "
            f"{best['large'][val_robust]:.1f}%: {said[sep[val_robust].word]}. ")
    if separated(sep):
        return text + ("So the two students differ in what adversarial training gets out of them, in both accuracies: "
                       "the pair can test the claim.")
    return text + ("So validation does not show that the larger network gets more out of adversarial training in both "
                   "accuracies: this pair may not test the paper's capacity question.")

def pair_caveat(sep: dict, untried: int) -> str:
    """The opening's words on the chosen pair (`sep`: its `separation`; `untried`: how many candidate pairs are not
    checked yet, `book_runs.capacity_checks`): "" when it separates."""
    if separated(sep):
        return ""
    if untried:
        return (" No candidate pair of students checked so far differs on validation in both accuracies (see *Two "
                "capacities that differ*), so this pair may not test the capacity question; the next candidate's "
                "PGD-AT run is not trained yet.")
    return (" No candidate pair of students differs on validation in both accuracies (see *Two capacities that "
            "differ*), so this pair may not test the capacity question.")


def untried_sentence(names: list[str], large: str) -> str:
    """The candidate pairs not checked yet (`names`: their small students), or "" where there are none."""
    if not names:
        return ""
    one = len(names) == 1
    which, whose = ("this pair", "its") if one else ("these pairs", "their")
    return (f"**{listed(names)} against {large}**: **not trained yet**. The check of {which} waits for {whose} small "
            f"student's PGD-AT run, which the build's `capacity` stage trains (`cktat runs --stages capacity`); until "
            f"it lands, the claims below are decided on the last pair checked.")


def teacher_contrast_paired(ev: dict[str, dict], metrics: dict[str, str],
                            spread: dict[str, float | None] | None = None) -> dict[str, dict[str, int]]:
    """For one method on one student: each teacher's effect against PGD-AT per accuracy and the robust teacher
    against the clean one, image by image (`noise.compare_evaluations`: McNemar where the evaluations hold per-image
    results, with `spread`, attack -> the student's pooled seed spread's upper bound, as the run-to-run margin). `ev`:
    {"robust", "clean", "pgdat"} final evaluations; `metrics`: label -> attack."""
    from .noise import compare_evaluations

    sign = lambda a, b, att: compare_evaluations(ev[a], ev[b], att, (spread or {}).get(att)).sign
    return {label: {"robust": sign("robust", "pgdat", att), "clean": sign("clean", "pgdat", att),
                    "robust_vs_clean": sign("robust", "clean", att)} for label, att in metrics.items()}

def capacity_reading(acc: dict, paper: dict, found: list, pair: dict, name: dict[str, str], robust: str,
                     sizes: dict[str, int] | None = None, paper_sizes: dict[str, int] | None = None) -> str:
    """Chapter 06's closing reading, from its numbers: how much the attack takes from PGD-AT on each student, how far
    apart the two students' PGD-AT runs are against the paper's pair (and, with `sizes` {"small", "large"} and
    `paper_sizes` {"resnet18", "wrn34_10"} parameter counts, how much each pair grows the network), and how the
    claims came out. Its closing interpretation is untested, and says so."""
    drop = {k: acc["PGDAT", "none", k]["natural"] - acc["PGDAT", "none", k][robust] for k in pair}
    p_drop = {k: paper[net]["PGDAT"][0] - paper[net]["PGDAT"][1] for k, net in (("small", "resnet18"), ("large", "wrn34_10"))}
    ours_gap = [acc["PGDAT", "none", "large"][c] - acc["PGDAT", "none", "small"][c] for c in ("natural", robust)]
    paper_gap = [paper["wrn34_10"]["PGDAT"][i] - paper["resnet18"]["PGDAT"][i] for i in (0, 1)]
    by = {v: [c.claim for c in found if c.verdict == v] for v in ("reproduced", "within noise", "contradicted")}
    text = (f"The attack takes {drop['small']:.1f} points from PGD-AT's natural accuracy on the small student and "
            f"{drop['large']:.1f} on the large one (the paper: {p_drop['small']:.1f} on ResNet-18, {p_drop['large']:.1f} "
            f"on WRN-34-10). Our two students' PGD-AT runs differ by {ours_gap[0]:+.1f} natural and {ours_gap[1]:+.1f} "
            f"robust points, the paper's pair by {paper_gap[0]:+.1f} and {paper_gap[1]:+.1f}. ")
    signs = [c for c in found if c.section == "Table 1 (signs)" and c.ours is not None]
    if signs:
        decided = lambda nat, up: sum(1 for c in signs if ("natural" in c.claim) == nat and c.verdict != "within noise"
                                      and (c.ours > 0) == up)
        n = sum(1 for c in signs if "natural" in c.claim)
        text += (f"With the clean teacher, against PGD-AT of the same student, natural accuracy is above beyond noise in "
                 f"{decided(True, True)} of {n} method-student pairs and below in {decided(True, False)}; robust "
                 f"accuracy above in {decided(False, True)} and below in {decided(False, False)}")
        along = decided(True, True) > decided(True, False) and decided(False, False) > decided(False, True)
        text += (": the clean teacher moves our students along the trade-off, more natural and less robust accuracy, "
                 "where the paper reads a dual decrease on its small student and a dual increase on its large one. "
                 if along else ". ")
    count = lambda n, what: f"{n} {'is' if n == 1 else 'are'} {what}"
    text += (f"Of the {len(found)} claims, {count(len(by['reproduced']), 'reproduced')}, "
             f"{count(len(by['within noise']), 'within noise')} and {count(len(by['contradicted']), 'contradicted')}. ")
    if not (by["within noise"] or by["contradicted"]):
        return text
    text += "Our reading: "
    if sizes and paper_sizes:
        ours_x, paper_x = sizes["large"] / sizes["small"], paper_sizes["wrn34_10"] / paper_sizes["resnet18"]
        text += (f"our pair grows the network {ours_x:.1f}x in parameters, the paper's {paper_x:.1f}x from ResNet-18 to "
                 f"WRN-34-10, ")
    moves = lambda o, p: "less" if abs(o) < abs(p) else "as much or more"
    text += (f"yet PGD-AT's robust accuracy moves {moves(ours_gap[1], paper_gap[1])} between our students than "
             f"between the paper's ({ours_gap[1]:+.1f} against {paper_gap[1]:+.1f} points), and its natural accuracy "
             f"{moves(ours_gap[0], paper_gap[0])} ({ours_gap[0]:+.1f} against {paper_gap[0]:+.1f}). We think networks "
             f"this far from fitting CIFAR-10, trained for a few epochs, leave a teacher's effect little room to change "
             f"with capacity: {len(by['within noise'])} of the {len(found)} claims lie inside our noise. This reading "
             f"is ours, not a run's: no run of the book tests it.")
    return text


# Sec. 4.2's words for Table 1: with a clean teacher "a dual decrease in both the clean accuracy and the robust
# accuracy" on ResNet-18 and "a dual increase in these two metrics" on WRN-34-10: the direction of every method's
# accuracy against PGD-AT per student, and so a gap to PGD-AT that grows from the small student to the large one.
STATED = {"small": BELOW, "large": ABOVE}
PAPER_NETWORK = {"small": "resnet18", "large": "wrn34_10"}


def _rows(method: str) -> tuple[str, ...]:
    return tuple(f"cktat.table1_capacity.{net}.{m}" for net in ("resnet18", "wrn34_10") for m in (method, "PGDAT"))


def _combined(spread: dict[str, dict[str, float | None]], metric: str) -> float | None:
    """One run's spread for a sum over both students (`noise.compare_change` takes z * 2 * spread as the margin of
    four runs): the root mean square of the two students' spreads."""
    values = [spread.get(k, {}).get(metric) for k in ("small", "large")]
    if any(v is None for v in values):
        return None
    return math.sqrt(sum(v * v for v in values) / 2)


def capacity(chapter: str, method: str, metric: str, label: str, runs: dict, paper: dict[str, dict[str, list[float]]],
             spread: float | None = None) -> Claim:
    """Table 1 for one method and accuracy: its gap to PGD-AT (clean teacher; `runs[(method, capacity)]` and
    `runs[("PGDAT", capacity)]`, results of `train.run`) grows from the small to the large student, as Sec. 4.2's
    "dual decrease" on ResNet-18 and "dual increase" on WRN-34-10 state (`STATED`); the paper's own change is
    `paper[network][method]` = [natural, PGD]. Ours: the per-image paired test of the four models
    (`noise.compare_change`), with the run-to-run margin of four runs from `spread`."""
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
    return judged(chapter, "Table 1", f"{method}'s {label} gap to PGD-AT (clean teacher) grows with capacity",
                  f"change of {method} - PGD-AT, {label}, small to large student (points)", effect, ours, ABOVE,
                  rests_on=_rows(method), stated=True)


def capacity_claims(chapter: str, runs: dict, paper: dict[str, dict[str, list[float]]], attack: str,
                    spread: dict[str, dict[str, float | None]] | None = None) -> list[Claim]:
    """`capacity` for every method of the paper's Table 1 and both accuracies, from `book_runs.capacity`'s runs
    ((title, teacher, capacity) -> result; the clean or co-trained teacher's run of each method). `spread`: per
    student ("small", "large"), accuracy -> the pooled seed spread's upper bound (`noise.pooled_spread`)."""
    spread = spread or {}
    by_method = {(m, k): res for (m, t, k), res in runs.items() if t in ("none", "clean", "clean (co-trained)")}
    robust = attack.replace("pgd", "PGD-")
    return [capacity(chapter, m, metric, label, by_method, paper, _combined(spread, metric))
            for m in paper["resnet18"] if m != "PGDAT"
            for metric, label in (("natural", "natural"), (attack, robust))]


def capacity_signs(chapter: str, runs: dict, paper: dict[str, dict[str, list[float]]], attack: str,
                   spread: dict[str, dict[str, float | None]] | None = None) -> list[Claim]:
    """Table 1's signs as Sec. 4.2 of the paper states them: with a clean teacher each method against PGD-AT on the
    same student, per accuracy, below on the small student ("a dual decrease" on ResNet-18) and above on the large one
    ("a dual increase" on WRN-34-10): the text's direction (`STATED`) for every method, the paper's own number beside
    it (where its Table 1 departs from its text, the scorecard's audit says so). Ours: McNemar on the same test images
    with that student's pooled seed spread (`spread`: student -> accuracy -> upper bound) as the run-to-run margin."""
    from .noise import compare_evaluations

    spread = spread or {}
    by_method = {(m, k): res for (m, t, k), res in runs.items() if t in ("none", "clean", "clean (co-trained)")}
    robust = attack.replace("pgd", "PGD-")
    out = []
    for k, net in PAPER_NETWORK.items():
        for m in paper[net]:
            if m == "PGDAT" or (m, k) not in by_method:
                continue
            for i, (metric, label) in enumerate((("natural", "natural"), (attack, robust))):
                effect = paper[net][m][i] - paper[net]["PGDAT"][i]
                ours = compare_evaluations(by_method[m, k]["student"]["last"], by_method["PGDAT", k]["student"]["last"],
                                           metric, spread.get(k, {}).get(metric))
                out.append(judged(chapter, "Table 1 (signs)", f"On the {k} student, {m}'s {label} accuracy (clean "
                                  f"teacher) {WORDS[STATED[k]]} PGD-AT's", f"{m} - PGD-AT, {label}, {k} student (points)",
                                  effect, ours, STATED[k], rests_on=(f"cktat.table1_capacity.{net}.{m}",
                                                                     f"cktat.table1_capacity.{net}.PGDAT"), stated=True))
    return out


# ---- the contradicted signs' readings, tested by runs
DISTILLERS = ("ARD", "IAD", "RSLAD", "LTD")  # the methods the chapter also trains with the robust teacher
_STUDENT_OF = {net: k for k, net in PAPER_NETWORK.items()}


def _signs(found: list[Claim]) -> dict[tuple[str, str, bool], Claim]:
    """The claims of `capacity_signs` by (student, method, whether it is natural accuracy), read off the paper row
    each rests on (`cktat.table1_capacity.<network>.<method>`) and its measure."""
    out = {}
    for c in found:
        if c.section == "Table 1 (signs)" and c.ours is not None:
            _, _, net, method = c.rests_on[0].split(".")
            out[_STUDENT_OF[net], method, c.measure.split(", ")[1] == "natural"] = c
    return out


def _contradicted_signs(found: list[Claim]) -> list[tuple[Claim, str, str, bool]]:
    """The contradicted claims of `capacity_signs` as (claim, student, method, whether it is natural accuracy)."""
    return [(c, *key) for key, c in _signs(found).items() if c.verdict == CONTRADICTED]


def _against(c: Comparison, whose: str) -> str:
    return {ABOVE: f"above {whose} beyond noise", BELOW: f"below {whose} beyond noise",
            WITHIN: f"within noise of {whose}"}[c.word] + f" ({c.difference:+.1f})"


def teacher_reading_text(teacher: dict[str, float], attack: str, label: str, apart: bool = False,
                         natural: bool = False) -> str:
    """The reading of a distiller on its clean teacher's side of PGD-AT; `teacher`: that student's clean teacher's
    test accuracies ("natural", `attack`); `apart`: whether the chapter's two students differ in both accuracies
    (`separated`), so that its capacity claims test what the reading leaves open; `natural`: whether the claim read
    is about natural accuracy (the prediction is then on natural accuracy: down, no longer above PGD-AT)."""
    expect = ("fall in natural accuracy beyond the noise and no longer lie above PGD-AT in it" if natural else
              f"rise in {label} beyond the noise and no longer lie below PGD-AT in it")
    return (f"We read a distiller that lies on its clean teacher's side of PGD-AT (more natural accuracy, less "
            f"{label}) as its teacher's doing, not its method's: a distilled student leans towards its teacher's place "
            f"on the trade-off, and this student's clean teacher has {teacher['natural']:.1f}% natural and "
            f"{teacher[attack]:.1f}% {label} accuracy. With the robust teacher (PGD-AT of the student's own size) in "
            f"its place, the same method on the same student should {expect}. The test can say whether the shift "
            f"along the trade-off is the teacher's on our students; not whether "
            f"a student of the paper's capacity turns a clean teacher's predictions into robust accuracy, as the paper "
            f"reads its Table 1: "
            + ("the change of each gap from our small to our large student, tested above, is what our pair can say of "
               "it." if apart else "that needs a pair of students that differ in both accuracies (priced below)."))


def teacher_swap(robust: dict, clean: dict, pgdat: dict, metric: str, other: str,
                 spread: dict[str, float | None]) -> tuple[str, Comparison, Comparison, Comparison]:
    """The test of `teacher_reading_text` on the claim's own accuracy `metric`: the robust teacher's student
    (`robust`, a run) against the clean teacher's (`clean`) and against PGD-AT of the same student (`pgdat`), image by
    image with `spread` (accuracy -> the student's pooled seed spread's upper bound) as the run-to-run margin. The
    reading predicts the swap moves `metric` away from the clean teacher's side: up for a robust accuracy, down for
    natural accuracy. Supported when the swap moves `metric` that way beyond the noise and leaves the student not on
    the clean teacher's side of PGD-AT beyond it; not supported when the swap moves `metric` the other way beyond the
    noise or the student still lies on that side beyond it (the method, not its teacher, puts it there); within noise
    otherwise. Returns (verdict, the swap in `metric`, against PGD-AT in `metric`, the swap in the `other` accuracy,
    which the reading expects to move the other way, shown beside it)."""
    ev = lambda r: r["student"]["last"]
    move = compare_evaluations(ev(robust), ev(clean), metric, spread.get(metric))
    level = compare_evaluations(ev(robust), ev(pgdat), metric, spread.get(metric))
    side = compare_evaluations(ev(robust), ev(clean), other, spread.get(other))
    toward, away = (BELOW, ABOVE) if metric == "natural" else (ABOVE, BELOW)
    verdict = (budget.NOT_SUPPORTED if away in (move.word, level.word) else
               budget.SUPPORTED if move.word == toward else budget.WITHIN_NOISE)
    return verdict, move, level, side


def teacher_readings(found: list[Claim], runs: dict, teachers: dict[str, dict[str, float]], attack: str, label: str,
                     spread: dict[str, dict[str, float | None]], apart: bool = False) -> list[budget.Reading]:
    """Chapter 06's reading of each contradicted sign of a distiller (ARD, IAD, RSLAD, LTD) that lies on its clean
    teacher's side of PGD-AT in both accuracies (natural above it, `attack` below it; Sec. 4.2 states one side for
    both), tested on the claim's own accuracy by the same method with the robust teacher on the same student
    (`teacher_swap`). `runs`: the runs of `book_runs.capacity`; `teachers`: student -> its clean teacher's accuracies;
    `spread`: student -> accuracy -> the pooled seed spread's upper bound; `apart`: whether the two students differ
    (`teacher_reading_text`). A supported reading names the teacher as what puts our students on the trade-off's
    natural side; why the paper's students lose (the small one) or gain (the large one) in both accuracies with the
    same clean teacher it does not say, so it explains the contradiction in part (`resolves` False)."""
    signs, out = _signs(found), []
    for c, k, m, natural in _contradicted_signs(found):
        pair = (signs.get((k, m, True)), signs.get((k, m, False)))
        if m not in DISTILLERS or (m, "robust", k) not in runs or None in pair or not (pair[0].ours > 0 > pair[1].ours):
            continue
        swap = runs[m, "robust", k]
        (metric, lab), (other, other_lab) = (("natural", "natural accuracy"), (attack, label))[::1 if natural else -1]
        verdict, move, level, side = teacher_swap(swap, runs[m, "clean", k], runs["PGDAT", "none", k], metric, other,
                                                  spread.get(k, {}))
        shows = (f"With the robust teacher, {m} moves {move.difference:+.1f} points in {lab} and "
                 f"{side.difference:+.1f} in {other_lab} from the clean teacher's student, and lies "
                 f"{_against(level, 'PGD-AT')} in {lab}.")
        out.append(budget.Reading("06_capacity", c.claim, teacher_reading_text(teachers[k], attack, label, apart,
                                                                                natural),
                                  f"{m} with the robust teacher on the {k} student (`runs/{swap['name']}`)", verdict,
                                  f"against the clean teacher's student: {move.evidence()}; against PGD-AT: "
                                  f"{level.evidence()}", shows, budget=False,
                                  resolves=False if verdict == budget.SUPPORTED else None))
    return out


SCHEDULED = "LBGAT"  # the method whose student learns the labels only through a model trained beside it


def schedule_reading_text(label: str, epochs: int, longer: int, up: bool) -> str:
    """The reading of LBGAT's contradicted sign in `label` accuracy: the short schedule's."""
    return (f"We read LBGAT's {label} accuracy on the wrong side of PGD-AT's as the short schedule's: LBGAT's student "
            f"has no label term of its own and learns the labels only through a natural model trained beside it from "
            f"scratch, which {epochs} epochs leave short of a trained one. At {longer} epochs, LBGAT - PGD-AT in "
            f"{label} accuracy should move {'up' if up else 'down'}, to the side Sec. 4.2 states.")


def schedule_readings(found: list[Claim], schedule: dict, attack: str, label: str,
                      spread: dict[str, float | None]) -> list[budget.Reading]:
    """Chapter 06's reading of each contradicted sign of LBGAT on the student whose longer runs the build's
    `readings` stage trains, tested by LBGAT and PGD-AT at a longer rung of the ladder: `budget.ladder_reading`,
    predicting the difference moves to the side Sec. 4.2 states (`STATED`). `schedule`: `book_runs.capacity_schedule`
    ("student", "rung", "epochs" and "longer" of the two schedules, "name" of LBGAT's longer run, and "ladder":
    {"1x": {"pgdat": its seeds, "lbgat": its run}, rung: those landed}, or None where no stage trains them, with
    their "cost": the reading is then not tested); `spread`: that student's accuracy -> the pooled seed spread's
    upper bound."""
    out = []
    for c, k, m, natural in _contradicted_signs(found):
        if m != SCHEDULED or k != schedule["student"]:
            continue
        metric, lab = ("natural", "natural") if natural else (attack, label)
        text = schedule_reading_text(lab, schedule["epochs"], schedule["longer"], STATED[k] == ABOVE)
        runs = f"LBGAT and PGD-AT at {schedule['rung']} on the {k} student"
        if schedule["ladder"] is None:
            out.append(budget.untested("06_capacity", c.claim, text, runs, schedule["cost"]))
            continue
        run = f"{runs} (`runs/{schedule['name']}`, the `readings` stage)"
        stage = "readings" if "pgdat" in schedule["ladder"].get(schedule["rung"], {}) else "ladder"  # PGD-AT's first
        out.append(budget.ladder_reading("06_capacity", c.claim, text, schedule["ladder"], "lbgat", "pgdat", metric,
                                         schedule["rung"], STATED[k], spread.get(metric), lab, stage=stage, run=run,
                                         names={**budget.NAMES, "lbgat": SCHEDULED}))
    return out


def wider_pair_sentence(price: dict | None) -> str:
    """What a pair of students that may differ in both accuracies would cost (`book_runs.wider_pair`), or "" where
    there is none to price."""
    if price is None:
        return ""
    small, large = price["widths"]
    return (f"**A pair that may test the question, priced.** small_cnn at width {large} as the large student, against "
            f"width {small} as the small one (its runs are on this page). Each run at width {large} is priced at its "
            f"width-{small} run's seconds times {price['ratio']:.1f}, the ratio of the two networks' training FLOPs "
            f"per image, and so is each distillation of the wider PGD-AT into width {small} (from above: only the "
            f"teacher grows). Its PGD-AT run alone, which says on validation whether the two differ in both accuracies, "
            f"would take about {duration(price['check'])}; the chapter's runs at width {large} would take "
            f"{price['budget']}.")
