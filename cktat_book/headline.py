"""Chapter 02 (CKTAT against PGD-AT, the paper's headline): what survives the controls, AutoAttack seed by seed,
and our reading where a claim is not reproduced. Torch-free.

CKTAT differs from PGD-AT and TRADES in its loss (the teacher's labels, and what else Eq. 17 has that the baseline's
loss lacks: the consistency term against PGD-AT; against TRADES a cross-entropy attack where TRADES maximises the KL,
and no clean cross-entropy), in the student started from the clean teacher's weights, and in the teacher's clean
epochs of compute before the adversarial ones. The controls are PGD-AT and TRADES started from the same teacher
(`book_runs.controls`): what CKTAT still gains over them is its loss's doing, not its start's (`control_rows`,
`control_sentence`).
"""

from __future__ import annotations

from statistics import fmean

from . import budget
from .claims import CONTRADICTED, Claim, judged, untestable
from .noise import ABOVE, BELOW, WITHIN, compare, compare_evaluations, detectable_sentence, discordance, p_text
from .report import validation_mean, validation_robust_key



def headline_reading(found: list, teacher_natural: float, cktat: list[dict], pgdat: list[dict]) -> str:
    """Our reading of chapter 02's claims on its runs' own test attack where ours differ from the paper's, from the
    runs' numbers: where each method starts (its first epoch's validation accuracy) against where it ends, and the
    clean teacher it starts from. Empty when those claims are reproduced (or not testable)."""
    off = [c for c in found if c.verdict not in ("reproduced", "not testable in this profile")
           and "AutoAttack" not in c.claim]
    if not off:
        return ""
    first = lambda runs, key: validation_mean(runs, key, 0)
    last = lambda runs, key: validation_mean(runs, key)
    vr = validation_robust_key(cktat)
    n = len(cktat)
    text = (f"**Our reading.** CKTAT starts from a clean teacher that classifies {teacher_natural:.1f}% of the test "
            f"images. Means over the {n} seed{'s' * (n != 1)} of each method, on the validation images: after its "
            f"first epoch the student's accuracy is {first(cktat, 'val_natural'):.1f}% natural and "
            f"{first(cktat, vr):.1f}% {vr[4:].upper().replace('PGD', 'PGD-')}, PGD-AT's "
            f"{first(pgdat, 'val_natural'):.1f}% and {first(pgdat, vr):.1f}%; after the last, "
            f"{last(cktat, 'val_natural'):.1f}% and {last(cktat, vr):.1f}% against {last(pgdat, 'val_natural'):.1f}% "
            f"and {last(pgdat, vr):.1f}%. ")
    nat = next((c for c in off if "natural" in c.claim), None)
    rob = next((c for c in off if "natural" not in c.claim), None)  # the runs' own PGD (AutoAttack is left out)
    epoch1 = compare([r["student"]["history"][0]["val_natural"] for r in cktat],  # after the first epoch, seeds
                     [r["student"]["history"][0]["val_natural"] for r in pgdat]) if min(len(cktat), len(pgdat)) > 1 \
        else None
    ahead_at_1 = epoch1.word == ABOVE if epoch1 else first(cktat, "val_natural") > first(pgdat, "val_natural")
    ahead = ahead_at_1 and last(cktat, "val_natural") > last(pgdat, "val_natural")  # ahead at 1: beyond the seeds'
    level_at_1 = not ahead_at_1
    if nat is not None and nat.ours is not None and nat.ours > 0 and ahead:
        text += ("CKTAT is ahead in natural accuracy after its first epoch and still after its last; we think our "
                 "short schedule leaves the initialisation's head start in place, where a longer one, such as the "
                 "`paper` profile's, would not keep CKTAT above PGD-AT (the paper states no schedule). ")
    elif nat is not None and nat.ours is not None and nat.ours > 0 and level_at_1:
        words = {WITHIN: "within the seeds' noise of", BELOW: "below"}
        where = (f"{words[epoch1.word]} PGD-AT's {first(pgdat, 'val_natural'):.1f}% (Welch's t-test over the seeds, "
                 f"{p_text(epoch1.p)})" if epoch1 else f"against PGD-AT's {first(pgdat, 'val_natural'):.1f}%")
        teachers = [r["teacher"]["history"][-1]["val_natural"] for r in cktat if r.get("teacher", {}).get("history")]
        start = (f"its teachers' {sum(teachers) / len(teachers):.1f}%" if len(teachers) == len(cktat) else
                 f"its teacher's {teacher_natural:.1f}% (on the test images)")
        text += (f"On the validation images, the first adversarial epoch takes CKTAT from {start} to "
                 f"{first(cktat, 'val_natural'):.1f}% natural accuracy, {where}: "
                 f"the teacher's accuracy is not carried through as a lead, yet CKTAT ends {nat.ours:+.1f} points "
                 f"ahead on the test images. What the "
                 f"start leaves is in the weights, not in the first epoch's accuracy; the controls below (PGD-AT and "
                 f"TRADES started from the same teacher) say whether the start accounts for the lead. ")
    if rob is not None and rob.ours is not None and rob.paper is not None and rob.ours < rob.paper:
        text += (f"CKTAT's robust gain over PGD-AT is {rob.ours:+.1f} points here against the paper's "
                 f"{rob.paper:+.1f}: we think a network of this size, trained this briefly, leaves the teacher's "
                 f"labels less to add to what the attack already teaches.")
    return text.strip()


def _accuracies(runs: list[dict], attack: str) -> list[float]:
    return [r["student"]["last"]["test"]["attacks"][attack]["accuracy"] for r in runs]


def control_rows(cktat: list[dict], baselines: dict[str, list[dict]], controls: dict[str, dict],
                 attacks: dict[str, str], spread: dict[str, float | None], names: dict[str, str]) -> list[dict]:
    """Per baseline (`baselines`: method -> its seeds; `controls`: method -> its run started from the clean teacher)
    and accuracy (`attacks`: label -> attack): CKTAT against the baseline from scratch (Welch over the seeds), CKTAT
    against the same baseline from the teacher (CKTAT's first seed against the control, McNemar on the same images with
    the run-to-run margin from `spread`, attack -> the pooled seed spread's upper bound: `noise.run_margin`), and what the control says of
    the gain: "survives" (CKTAT still above beyond the noise), "gone" (within noise or below: the start and the compute
    account for it) or "no gain" (CKTAT not above the baseline to begin with)."""
    out = []
    for m, seeds in baselines.items():
        for label, attack in attacks.items():
            gain = compare(_accuracies(cktat, attack), _accuracies(seeds, attack))
            ctl = compare_evaluations(cktat[0]["student"]["last"], controls[m]["student"]["last"], attack,
                                      spread.get(attack))
            fate = "no gain" if gain.word != ABOVE else ("survives" if ctl.word == ABOVE else "gone")
            out.append({"against": names[m], "accuracy": label,
                        "from scratch": f"{gain.difference:+.1f} ({gain.word})",
                        "control": f"{_accuracies([controls[m]], attack)[0]:.1f}",
                        "CKTAT seed 0 - control": f"{ctl.difference:+.1f} ({ctl.word})", "the gain": fate})
    return out


def overstates(same: dict[str, dict], first: str, second: str) -> bool:
    """Whether the runs' own attack overstates `first`'s robustness more than `second`'s: `first` falls further from it
    to AutoAttack on the same images, beyond the seeds' noise (`on_suite_images`, `drop_sentence`)."""
    return compare(same[first]["fall"], same[second]["fall"]).word == ABOVE


def control_sentence(rows: list[dict], overstated: str | None = None) -> str:
    """Which of CKTAT's gains over the baselines survive the controls (`control_rows`), in one sentence; `overstated`:
    the runs' own attack where it overstates CKTAT's robustness (`overstates`), said of the robust gains kept."""
    gains = [r for r in rows if r["the gain"] != "no gain"]
    if not gains:
        return ("CKTAT is above none of the baselines beyond the seeds' noise, so the controls have no gain to "
                "explain.")
    say = lambda rs: ", ".join(f"{r['accuracy']} accuracy over {r['against']}" for r in rs)
    kept = [r for r in gains if r["the gain"] == "survives"]
    gone = [r for r in gains if r["the gain"] == "gone"]
    text = f"Of CKTAT's {len(gains)} gain{'s' * (len(gains) != 1)} beyond the seeds' noise"
    if kept:
        text += (f", {len(kept)} survive{'s' * (len(kept) == 1)} the control ({say(kept)}): CKTAT's loss adds "
                 f"{'it' if len(kept) == 1 else 'them'}, not its start from the teacher")
        robust = [r for r in kept if r["accuracy"] != "natural"]
        if overstated and robust:
            text += (f" (a gain under {overstated}, which overstates CKTAT's robustness more than PGD-AT's: the "
                     f"AutoAttack section)")
    if gone:
        text += (f"{';' if kept else ','} {len(gone)} {'does' if len(gone) == 1 else 'do'} not ({say(gone)}): the "
                 f"baseline started from the same teacher, with the same compute, is level with CKTAT or above it")
    return text + "."


def autoattack_rows(aa: dict[str, list[dict]], names: dict[str, str]) -> list[dict]:
    """Per method and seed (`aa`: method -> per seed an `evaluate` result with natural and `aa`), its natural and
    AutoAttack accuracy on the suite's images."""
    from .report import aa_title  # noqa: E402

    return [{"method": names[m], "seed": i, "images": e["n"], "natural": e["attacks"]["natural"]["accuracy"],
             aa_title(e["attacks"]["aa"].get("version", "standard")): e["attacks"]["aa"]["accuracy"]}
            for m, evs in aa.items() for i, e in enumerate(evs)]


def autoattack_claim(chapter: str, aa: dict[str, list[dict]], first: str, second: str, paper_first: list[float],
                     paper_second: list[float], names: dict[str, str], rests_on: tuple[str, ...]) -> Claim:
    """"`first`'s AutoAttack accuracy above `second`'s", as Sec. 5.2 states it (CKTAT's robust generalization "higher
    than all selected baseline methods"): Welch's test over the seeds' AutoAttack accuracies (`aa`); the paper's
    Table 4 AutoAttack column beside it."""
    acc = lambda m: [e["attacks"]["aa"]["accuracy"] for e in aa[m]]
    claim = f"{names[first]}'s AutoAttack accuracy above {names[second]}'s"
    if len(paper_first) < 6 or len(paper_second) < 6:
        return untestable(chapter, "Table 4", claim, f"{names[first]} - {names[second]}, AutoAttack (points)", None,
                          "the paper reports AutoAttack for CKTAT only in Table 4's beta 0 and beta 6 rows (tau 5 by "
                          "our reading: Table 4 states no tau)", rests_on)
    return judged(chapter, "Table 4", f"{names[first]}'s AutoAttack accuracy above {names[second]}'s",
                  f"{names[first]} - {names[second]}, AutoAttack (points)", paper_first[5] - paper_second[5],
                  compare(acc(first), acc(second)), ABOVE, rests_on=rests_on, stated=True)


def autoattack_detectable(aa: dict[str, list[dict]], first: str, second: str) -> str:
    """The smallest AutoAttack difference the suite's images resolve between `first` and `second` seed by seed
    (`noise.detectable_sentence`, from the share of images each pair of runs of the same seed disagrees on)."""
    pairs = [(a, b) for a, b in zip(aa[first], aa[second])
             if a["attacks"]["aa"].get("bits") and b["attacks"]["aa"].get("bits")]
    shares = [discordance(a["attacks"]["aa"]["bits"], b["attacks"]["aa"]["bits"]) for a, b in pairs]
    return detectable_sentence(aa[first][0]["n"], shares) if shares else ""


def on_suite_images(runs: dict[str, list[dict]], aa: dict[str, list[dict]], robust: str) -> dict[str, dict]:
    """method -> {"robust": per seed the run's own `robust` accuracy (PGD-20) on the suite's first n test images,
    where AutoAttack ran (`aa`: method -> per seed its AutoAttack evaluation), read from the run's per-image results;
    "aa": per seed its AutoAttack accuracy there; "fall": the first minus the second; "robust_all": the run's own
    attack on all its test images}. A cross-entropy PGD that
    overstates a model's robustness shows as a larger fall."""
    out = {}
    for m, evs in aa.items():
        pgd = [100 * b.count("1") / len(b) for b in
               (run["student"]["last"]["test"]["attacks"][robust]["bits"][:ev["n"]] for run, ev in zip(runs[m], evs))]
        auto = [ev["attacks"]["aa"]["accuracy"] for ev in evs]
        every = [run["student"]["last"]["test"]["attacks"][robust]["accuracy"] for run in runs[m][:len(evs)]]
        out[m] = {"robust": pgd, "aa": auto, "fall": [p - a for p, a in zip(pgd, auto)], "robust_all": every}
    return out


def drop_sentence(same: dict[str, dict], first: str, second: str, n: int, n_all: int, names: dict[str, str],
                  robust_title: str, paper_first: list[float] | None, paper_second: list[float]) -> str:
    """`first` against `second` on the `n` test images AutoAttack ran on (`on_suite_images`; the runs' own attack was
    scored on all `n_all`): under the runs' own attack there, and how far each falls from it to AutoAttack (Welch over
    the seeds), beside the paper's fall from PGD to AutoAttack (Table 4's PGD and AutoAttack columns). Where `first`
    falls further beyond the noise, the runs' own attack overstates its robustness more than `second`'s."""
    a, b = names[first], names[second]
    seeds = lambda v: ", ".join(f"{x:.1f}" for x in v)
    level = compare(same[first]["robust"], same[second]["robust"])
    fall = compare(same[first]["fall"], same[second]["fall"])
    text = (f"On the first {n:,} test images, where AutoAttack ran, {a}'s {robust_title} accuracy is "
            f"{fmean(same[first]['robust']):.1f}% (per seed {seeds(same[first]['robust'])}) and {b}'s "
            f"{fmean(same[second]['robust']):.1f}% ({seeds(same[second]['robust'])}): {level.word} "
            f"({level.evidence()}). From {robust_title} to AutoAttack {a} falls {fmean(same[first]['fall']):.1f} "
            f"points ({seeds(same[first]['fall'])}) and {b} {fmean(same[second]['fall']):.1f} "
            f"({seeds(same[second]['fall'])}); {a}'s fall minus {b}'s: {fall.evidence()}")
    if paper_first is not None and len(paper_first) >= 6 and len(paper_second) >= 6:
        text += (f". In the paper's Table 4 {a} falls {paper_first[1] - paper_first[5]:.1f} points from PGD to "
                 f"AutoAttack and {b} {paper_second[1] - paper_second[5]:.1f}")
    if fall.word == ABOVE:
        text += f". {robust_title} overstates {a}'s robustness more than {b}'s here"
    elif fall.word == BELOW:
        text += f". {robust_title} overstates {b}'s robustness more than {a}'s here"
    else:
        text += f". The two attacks rank the two methods alike, within the seeds' noise"
    everywhere = compare(same[first]["robust_all"], same[second]["robust_all"])
    if everywhere.word == ABOVE and level.word != ABOVE and n < n_all:
        text += (f". The {robust_title} gain of the claim above, on all {n_all:,} test images, does not show on these "
                 f"{n:,}: it rests on the images AutoAttack did not attack, where what AutoAttack would say is not "
                 f"measured")
    return text + "."


def part_gap_sentence(runs: dict[str, list[dict]], first: str, second: str, attack: str, official: int | None,
                      names: dict[str, str], title: str) -> str:
    """`first` - `second` in `attack` on each of the two parts of a copy of CIFAR-10 whose first `official` test
    images carry the official pixels and the rest were decoded from a JPEG re-encoding (`data.cifar_provenance`), over
    the seeds (`runs`: method -> its seeds' results, with per-image results), Welch's test on each part; then whether
    the difference itself differs between the parts: each seed's accuracy on the JPEG-decoded part minus its accuracy
    on the official-pixel part, `first`'s seeds against `second`'s (Welch). Only where that test finds the parts apart
    does the page say the difference depends on the part (a part's verdict alone may differ for want of images). ""
    for the official download (`official` None), where the parts are one distribution, or where a run stored no
    per-image results."""
    bits = lambda r: r["student"]["last"]["test"]["attacks"][attack].get("bits")
    if not official or not all(bits(r) for m in (first, second) for r in runs[m]):
        return ""
    acc = lambda part: 100.0 * part.count("1") / max(len(part), 1)
    n_all = len(bits(runs[first][0]))
    if official >= n_all:
        return ""
    cut = {"official-pixel": slice(0, official), "JPEG-decoded": slice(official, None)}
    gap = {k: compare([acc(bits(r)[s]) for r in runs[first]], [acc(bits(r)[s]) for r in runs[second]])
           for k, s in cut.items()}
    sizes = {"official-pixel": official, "JPEG-decoded": n_all - official}
    a, b = names[first], names[second]
    text = (f"{a} - {b} in {title} accuracy, over the seeds, on each part of this copy's test images: "
            + "; ".join(f"on the {sizes[k]:,} {k} images {c.word} ({c.evidence()})"
                        for k, c in gap.items()) + ".")
    shift = lambda m: [acc(bits(r)[official:]) - acc(bits(r)[:official]) for r in runs[m]]
    apart = compare(shift(first), shift(second))
    if apart.word == WITHIN:
        return text + (f" The difference does not differ between the two parts beyond the seeds' noise ("
                       f"{apart.evidence()}).")
    return text + (f" The difference itself differs between the two parts beyond the seeds' noise (JPEG-decoded "
                   f"minus official-pixel, {a}'s against {b}'s: {apart.evidence()}). With the official download "
                   f"every image carries the official pixels; which of the two parts' differences it would show, this "
                   f"copy cannot say.")


NATURAL_LEAD = ("We read CKTAT's natural lead over PGD-AT as its clean start's doing (the teacher's weights, whatever "
                "the first epoch's accuracy shows), which the profile's short schedule leaves in place: a longer "
                "schedule should shrink it.")


def readings(found: list[Claim], ladder: dict | None, spread: dict[str, float | None]) -> list[budget.Reading]:
    """Chapter 02's readings of its contradicted claims, each tested by the run it names (`budget.ladder_reading`):
    CKTAT's natural accuracy above PGD-AT's where the text places it below is the head start, which four times the
    epochs should shrink (the ladder's 4x rung)."""
    out = []
    nat = next((c for c in found if c.claim.startswith("CKTAT's natural accuracy") and c.verdict == CONTRADICTED
                and (c.ours or 0) > 0), None)
    if nat is not None:
        out.append(budget.ladder_reading("02_cktat", nat.claim, NATURAL_LEAD, ladder, "cktat", "pgdat", "natural",
                                         "4x epochs", budget.BELOW, spread.get("natural"), "natural accuracy"))
    return out


AUTOATTACK_READING = ("We read CKTAT's AutoAttack deficit as robustness that holds against the cross-entropy only: "
                      "attacks on the cross-entropy overstate CKTAT's robustness more than PGD-AT's, and AutoAttack's "
                      "attacks after its first (APGD-CE) find what those miss. If so, the later attacks break a larger "
                      "share of the examples that survive APGD-CE for CKTAT than for PGD-AT. The test cannot tell the "
                      "later attacks' loss (APGD-T's targeted margin) from their effort (nine target classes, nine "
                      "times the steps).")


def fall_test(aa: dict[str, list[dict]], first: str, second: str, names: dict[str, str]) -> dict | None:
    """Whether AutoAttack's attacks after its first (APGD-CE, on the cross-entropy) break a larger share of the
    examples that survive it for `first` than for `second`, seed by seed (`aa`: method -> per seed its evaluation,
    whose "per_attack" holds the robust accuracy left after each attack in AutoAttack's order), beyond the seeds' noise
    (Welch's t-test on the per-seed shares; a share, not the fall in points, so that a model with more survivors does
    not fall further for that alone). The Reading's fields "run", "verdict" (ABOVE predicted), "evidence" and
    "shows", and "level": the comparison of the two after APGD-CE alone. None where an evaluation lacks the
    per-attack record."""
    per = {m: [e["attacks"]["aa"].get("per_attack") or {} for e in aa[m]] for m in (first, second)}
    if not all(len(p) >= 2 and p[next(iter(p))] > 0 for ps in per.values() for p in ps):
        return None
    head = next(iter(per[first][0]))  # AutoAttack's first attack
    after = {m: [p[head] for p in ps] for m, ps in per.items()}
    fall = {m: [p[head] - list(p.values())[-1] for p in ps] for m, ps in per.items()}
    share = {m: [100 * f / a for f, a in zip(fall[m], after[m])] for m in fall}
    c = compare(share[first], share[second])
    level = compare(after[first], after[second])
    a, b, title = names[first], names[second], head.upper()
    seeds = lambda v: ", ".join(f"{x:.1f}" for x in v)
    shows = (f"After {title} alone, {a} - {b}: {level.word} ({level.evidence()}). The later attacks break "
             f"{fmean(share[first]):.1f}% of {a}'s survivors per seed on average ({seeds(share[first])}; "
             f"{fmean(fall[first]):.1f} points of accuracy) and {fmean(share[second]):.1f}% of {b}'s "
             f"({seeds(share[second])}; {fmean(fall[second]):.1f} points).")
    verdict = budget.test_reading(c, ABOVE)
    if verdict == budget.NOT_SUPPORTED:
        shows += f" They break more of {b}'s: the deficit is not the cross-entropy's overstatement of {a}'s robustness."
    run = (f"AutoAttack's own attacks on the {len(aa[first])} and {len(aa[second])} seeds of {a} and {b} ({title}, "
           f"then {', '.join(x.upper() for x in list(per[first][0])[1:])} on what it left)")
    return {"run": run, "verdict": verdict, "evidence": f"{a}'s share minus {b}'s {c.evidence()}", "shows": shows,
            "level": level}


def autoattack_reading(found: list[Claim], aa: dict[str, list[dict]], first: str, second: str,
                       names: dict[str, str]) -> list[budget.Reading]:
    """The reading of "`first`'s AutoAttack accuracy above `second`'s" where ours is below (`AUTOATTACK_READING`),
    tested by AutoAttack's own attacks seed by seed (`fall_test`). Not a budget reading (`Reading.budget` False): a
    larger budget does not test it, the attacks do. A supported reading explains our reversal from the
    cross-entropy attacks to AutoAttack, not the paper's own AutoAttack gap (the page says so): it explains the
    contradiction in part (`resolves` False), whatever APGD-CE alone shows. Empty where the
    claim is not contradicted that way or an evaluation lacks the per-attack record."""
    claim = next((c for c in found if c.claim == f"{names[first]}'s AutoAttack accuracy above {names[second]}'s"
                  and c.verdict == CONTRADICTED and (c.ours or 0) < 0), None)
    test = fall_test(aa, first, second, names)
    if claim is None or test is None:
        return []
    test.pop("level")
    if claim.paper is not None:
        side = "above" if claim.paper > 0 else "below"
        test["shows"] += (f" The paper's own AutoAttack puts {names[first]} {abs(claim.paper):.1f} points {side} "
                          f"{names[second]}: the reading explains why our ordering reverses from the cross-entropy "
                          f"attacks to AutoAttack, not that gap.")
    return [budget.Reading("02_cktat", claim.claim, AUTOATTACK_READING, budget=False,
                           resolves=False if test["verdict"] == budget.SUPPORTED else None, **test)]
