"""Chapter 02 (CKTAT against PGD-AT, the paper's headline): our reading where a claim is not reproduced.
Torch-free.
"""

from __future__ import annotations



def headline_reading(found: list, teacher_natural: float, cktat: list[dict], pgdat: list[dict]) -> str:
    """Our reading of chapter 02's two claims where ours differ from the paper's, from the runs' numbers: where each
    method starts (its first epoch's validation accuracy) against where it ends, and the clean teacher it starts
    from. Empty when both claims are reproduced."""
    off = [c for c in found if c.verdict != "reproduced"]
    if not off:
        return ""
    first = lambda runs, key: sum(r["student"]["history"][0][key] for r in runs) / len(runs)
    last = lambda runs, key: sum(r["student"]["history"][-1][key] for r in runs) / len(runs)
    vr = next(k for k in cktat[0]["student"]["history"][0] if k.startswith("val_pgd"))
    n = len(cktat)
    text = (f"**Our reading.** CKTAT starts from a clean teacher that classifies {teacher_natural:.1f}% of the test "
            f"images. Means over the {n} seed{'s' * (n != 1)} of each method, on the validation images: after its "
            f"first epoch the student's accuracy is {first(cktat, 'val_natural'):.1f}% natural and "
            f"{first(cktat, vr):.1f}% {vr[4:].upper().replace('PGD', 'PGD-')}, PGD-AT's "
            f"{first(pgdat, 'val_natural'):.1f}% and {first(pgdat, vr):.1f}%; after the last, "
            f"{last(cktat, 'val_natural'):.1f}% and {last(cktat, vr):.1f}% against {last(pgdat, 'val_natural'):.1f}% "
            f"and {last(pgdat, vr):.1f}%. ")
    nat = next((c for c in off if "natural" in c.claim), None)
    rob = next((c for c in off if "natural" not in c.claim), None)
    ahead = first(cktat, "val_natural") > first(pgdat, "val_natural") and \
        last(cktat, "val_natural") > last(pgdat, "val_natural")
    if nat is not None and nat.ours is not None and nat.ours > 0 and "level with" in nat.claim and ahead:
        text += ("CKTAT is ahead in natural accuracy after its first epoch and still after its last; we think our "
                 "short schedule leaves the initialisation's head start in place, where the paper's longer training "
                 "ends with the two level. ")
    if rob is not None and rob.ours is not None and rob.paper is not None and rob.ours < rob.paper:
        text += (f"CKTAT's robust gain over PGD-AT is {rob.ours:+.1f} points here against the paper's "
                 f"{rob.paper:+.1f}: we think a network of this size, trained this briefly, leaves the teacher's "
                 f"labels less to add to what the attack already teaches.")
    return text.strip()
