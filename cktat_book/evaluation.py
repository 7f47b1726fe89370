"""Chapter 04 (the evaluation protocol): what its attack suites and the gradient-masked teacher show. Torch-free.
"""

from __future__ import annotations

from .report import listed


def evaluation_findings(standard: dict[str, dict], compat: dict[str, dict], plain: dict, masked: dict,
                        masked_standard: dict, compat_steps: str) -> str:
    """Chapter 04's opening, from its evaluations: which attack is strongest per model, how far the compat protocol
    moves PGD-20 (`compat_steps`: its attacks' steps, `evaluate.PROTOCOLS`), and what the gradient-masked model does to PGD and to AutoAttack's gradient-free attack."""
    strongest = {n: min((k for k in r["attacks"] if k != "natural"), key=lambda k: r["attacks"][k]["accuracy"])
                 for n, r in standard.items()}
    aa_first = [n for n, k in strongest.items() if k == "aa"]
    gaps = [compat[n]["attacks"]["pgd20"]["accuracy"] - standard[n]["attacks"]["pgd20"]["accuracy"] for n in standard]
    fooled = masked["attacks"]["pgd20"]["accuracy"]
    broken = masked_standard["attacks"]["aa"]["accuracy"]
    flagged = sorted({f["check"] for f in masked["flags"]})
    n = next(iter(standard.values()))["n"]
    text = (f"On {n:,} test images, AutoAttack is the strongest attack for {len(aa_first)} of the {len(standard)} "
            f"models" + (f" (for {listed([f'{m}: {k}' for m, k in strongest.items() if k != 'aa'])} another attack "
                         f"goes lower)" if len(aa_first) < len(standard) else "") + ". "
            f"The compat-generalist protocol ({compat_steps}, last iterate, adversarial input alone counted) reads "
            f"PGD-20 {min(gaps):+.1f} to {max(gaps):+.1f} points away from the standard protocol. "
            f"A clean model behind an 8-bit input rounding keeps {fooled:.1f}% under PGD-20 (without the rounding: "
            f"{plain['attacks']['pgd20']['accuracy']:.1f}%); the checks flag it ({listed(flagged) if flagged else 'no check'}), "
            f"and AutoAttack's standard version, whose Square attack needs no gradient, brings it to {broken:.1f}% "
            f"(on the first {masked_standard['n']:,} images). ")
    fall = lambda to: {m: r["attacks"]["pgd20"]["accuracy"] - r["attacks"][to]["accuracy"] for m, r in standard.items()
                       if "pgd20" in r["attacks"] and to in r["attacks"]}
    falls, cw = fall("aa"), fall("cw")
    if falls:
        text += (f"From PGD-20 to AutoAttack the models' accuracy falls {listed([f'{m} {d:.1f}' for m, d in falls.items()])} "
                 f"points" + (f", and to CW-inf, whose margin loss is not PGD-20's cross-entropy, "
                              f"{listed([f'{m} {d:.1f}' for m, d in cw.items()])}" if cw else "")
                 + ": no check flags a model whose PGD-20 says more than the stronger attacks do, so the comparison is "
                 f"the reader's (chapter 02 weighs CKTAT's fall to AutoAttack against PGD-AT's over the seeds).")
    return text.strip()
