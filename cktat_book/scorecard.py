"""The scorecard page: every chapter's claims in one table, and an audit of the paper's own numbers.

Before its rows are taken as claims, a reader should know where the paper's numbers disagree with themselves or with
its text. `audit` checks `paper_numbers.yaml` with the rules the claims use (`claims`: two binomial standard errors of
a difference on the paper's 10,000 test images, the same three-way reading), and returns each finding with the rows
it concerns:

- `attack_drops`: PGD-100 runs the attack of the "PGD" column (PGD-20 in the book's reading) five times longer, so it
  removes a few points from a model or none; within one table, rows whose drop lies within the noise of a drop sit
  beside rows whose drop lies beyond it, which suggests the rows were not evaluated the same way.
- `same_setting`: a setting reported twice (Table 1's ResNet-18 rows and Table 4, Table 3's rows and Table 4's) with
  numbers that differ beyond their noise.
- `text_against_table`: each statement of the text (`STATEMENTS`) read against the paper's own numbers: contradicted
  where a number lies the other way beyond the noise, not shown where the numbers lie within it.

`marked` says which claims rest on a row a finding concerns (for `attack_drops`, claims that compare rows of both
groups). Torch-free.
"""

from __future__ import annotations

from dataclasses import dataclass

from .claims import PAPER_IMAGES, Claim, paper_margin
from .noise import ABOVE, BELOW, compare
from .report import TABLE_NAMES, listed, paper_numbers, row_name


@dataclass(frozen=True)
class Finding:
    """One inconsistency of the paper's numbers: `check` (the rule that found it), `rows` (the keys of
    `paper_numbers.yaml` it concerns; for `attack_drops` the two groups), `text` (what it is, in numbers) and
    `kind` ("inconsistent": beyond the paper's noise; "not shown": a statement its numbers show only within it) and
    `columns` (the columns it concerns: a claim about another column does not rest on it)."""

    check: str
    rows: tuple[str, ...]
    text: str
    kind: str = "inconsistent"
    groups: tuple[tuple[str, ...], ...] = ()
    columns: tuple[str, ...] = ()  # the columns it concerns (`COLUMN_NAMES`' names); empty: every column


def row(key: str, paper: dict | None = None):
    """The value of a dotted key of `paper_numbers.yaml` ("cktat.table3b_tau.5": [83.45, 56.81])."""
    node = paper or paper_numbers()
    for part in key.split("."):
        node = node[int(part)] if isinstance(node, dict) and part.isdigit() and int(part) in node else node[part]
    return node


# ---- PGD to PGD-100
TABLE4_PGD, TABLE4_PGD100 = 1, 2  # columns of table4_columns: natural, pgd, pgd100, mim, cw, aa


def attack_drops(paper: dict | None = None) -> list[Finding]:
    """Per Table 4 (CIFAR-10, CIFAR-100): each row's drop from the "PGD" column to PGD-100; the noise of a drop is the
    binomial margin of its two accuracies on the paper's test images (`paper_margin`; unpaired, so generous). Rows
    whose drop exceeds that noise beside rows whose drop lies within it form one finding per table."""
    paper = paper or paper_numbers()
    out = []
    for table in ("table4_cifar10", "table4_cifar100"):
        rows = paper["cktat"][table]
        drops = {m: (v[TABLE4_PGD] - v[TABLE4_PGD100], paper_margin(v[TABLE4_PGD], v[TABLE4_PGD100]))
                 for m, v in rows.items()}
        large = [m for m, (d, noise) in drops.items() if d > noise]
        small = [m for m, (d, noise) in drops.items() if d <= noise]
        if not large or not small:
            continue
        keys = lambda ms: tuple(f"cktat.{table}.{m}" for m in ms)
        span = lambda ms: f"{min(drops[m][0] for m in ms):.2f} to {max(drops[m][0] for m in ms):.2f}"
        noise = max(n for _, n in drops.values())
        text = (f"{TABLE_NAMES[table]}: from PGD to PGD-100 the accuracy falls by {span(large)} points for "
                f"{listed(large)}, beyond the noise of a drop (at most {noise:.2f} points), and by {span(small)} "
                f"for {listed(small)}, within it. A longer run of the same attack takes several points from one group "
                f"and almost none from the other, which suggests the rows were not evaluated the same way; a "
                f"comparison across the two groups in the PGD columns rests on it.")
        out.append(Finding("attack_drops", keys(large) + keys(small), text, groups=(keys(large), keys(small)),
                           columns=("PGD", "PGD-100")))
    return out


# ---- one setting, two tables
# Rows that by our reading report the same setting in two places (CIFAR-10, ResNet-18, the same method and settings;
# the paper does not say so): Table 1's ResNet-18 rows are Table 4's baselines (its PGDAT rows are equal); Table 3's
# full CKTAT (tau 5, beta 6) and beta-0 rows are Table 4's CKTAT rows; removing the consistency term (Table 3a) is
# beta = 0. Columns compared: natural and PGD.
SAME_SETTING = (
    ("cktat.table1_capacity.resnet18.PGDAT", "cktat.table4_cifar10.PGDAT"),
    ("cktat.table1_capacity.resnet18.LBGAT", "cktat.table4_cifar10.LBGAT"),
    ("cktat.table3b_tau.5", "cktat.table4_cifar10.CKTAT_beta6"),
    ("cktat.table3c_beta.6", "cktat.table4_cifar10.CKTAT_beta6"),
    ("cktat.table3c_beta.0", "cktat.table4_cifar10.CKTAT_beta0"),
    ("cktat.table3a_remove.kl_consistency", "cktat.table3c_beta.0"),
)


def same_setting(paper: dict | None = None) -> list[Finding]:
    """Each pair of `SAME_SETTING` whose natural or PGD accuracies differ beyond the paper's noise."""
    paper = paper or paper_numbers()
    out = []
    for a, b in SAME_SETTING:
        va, vb = row(a, paper), row(b, paper)
        off = [(label, va[i], vb[i]) for i, label in enumerate(("natural", "PGD"))
               if abs(va[i] - vb[i]) > paper_margin(va[i], vb[i])]
        if off:
            text = (f"{row_name(a)} and {row_name(b)} appear to report the same setting (our reading; the paper does "
                    f"not say so): "
                    + "; ".join(f"{label} {x:.2f} against {y:.2f} ({x - y:+.2f} points, beyond the paper's noise of "
                                f"{paper_margin(x, y):.2f})" for label, x, y in off) + ".")
            out.append(Finding("same_setting", (a, b), text, columns=tuple(label for label, *_ in off)))
    return out


# ---- the text against the tables
@dataclass(frozen=True)
class Statement:
    """A direction the paper's text states: `first` lies `direction` (ABOVE or BELOW) `second` in column `column`
    (an index of the row lists), quoted from `where`."""

    where: str
    quote: str
    first: str
    second: str
    column: int
    direction: str


def _versus_all(where: str, quote: str, first: str, table: str, columns: tuple[int, ...], direction: str,
                skip: tuple[str, ...], paper: dict) -> list[Statement]:
    """`first` against every other row of `table` but `skip`, in each of `columns`."""
    rows = paper["cktat"][table]
    return [Statement(where, quote, f"cktat.{table}.{first.split('.')[-1]}", f"cktat.{table}.{m}", c, direction)
            for m in rows if m != first.split(".")[-1] and m not in skip for c in columns]


def statements(paper: dict | None = None) -> list[Statement]:
    """The directions the CKTAT paper's text states about its own tables (Sec. 4.2, 5.1, 5.2)."""
    paper = paper or paper_numbers()
    out = []
    t1 = paper["cktat"]["table1_capacity"]
    for net, direction, quote in (("resnet18", BELOW, "a dual decrease in both the clean accuracy and the robust "
                                                      "accuracy"),
                                  ("wrn34_10", ABOVE, "a dual increase in these two metrics")):
        out += [Statement("Sec. 4.2", quote, f"cktat.table1_capacity.{net}.{m}", f"cktat.table1_capacity.{net}.PGDAT",
                          c, direction) for m in t1[net] if m != "PGDAT" for c in (0, 1)]
    full = "cktat.table4_cifar10.CKTAT_beta6"
    out += [Statement("Sec. 5.1", "removing the Clean training model initialization and KL(T(x), S(x')) terms both "
                      "resulted in a decrease in the natural accuracy and robust accuracy", f"cktat.table3a_remove.{r}",
                      full, c, BELOW) for r in ("clean_model_init", "kl_teacher_adv") for c in (0, 1)]
    out += [Statement("Sec. 5.1", "when the KL(S(x'), S(x)) term was removed, the model's natural accuracy increased, "
                      "but its robust accuracy rapidly decreased", "cktat.table3a_remove.kl_consistency", full, c, d)
            for c, d in ((0, ABOVE), (1, BELOW))]
    out += [Statement("Sec. 5.1", "if only robustness is considered, then beta = 6 is the best choice",
                      "cktat.table3c_beta.6", f"cktat.table3c_beta.{b}", 1, ABOVE)
            for b in paper["cktat"]["table3c_beta"] if b != 6]
    out += [Statement("Sec. 5.1", "the model achieves the best performance when tau reaches 5",
                      "cktat.table3b_tau.5", f"cktat.table3b_tau.{t}", c, ABOVE)
            for t in paper["cktat"]["table3b_tau"] if t != 5 for c in (0, 1)]
    for table in ("table4_cifar10", "table4_cifar100"):
        out += _versus_all("Sec. 5.2", "when beta = 6, CKTAT's robust generalization is higher than all selected "
                           "baseline methods", "CKTAT_beta6", table, (1, 2, 3, 4, 5), ABOVE, ("CKTAT_beta0",), paper)
        out += _versus_all("Sec. 5.2", "[at beta = 6] its natural generalization is only weaker than Generalist and "
                           "PGDAT", "CKTAT_beta6", table, (0,), ABOVE, ("CKTAT_beta0", "Generalist", "PGDAT"), paper)
        out += [Statement("Sec. 5.2", "[at beta = 6] its natural generalization is only weaker than Generalist and "
                          "PGDAT", f"cktat.{table}.CKTAT_beta6", f"cktat.{table}.{m}", 0, BELOW)
                for m in ("Generalist", "PGDAT")]
        out += _versus_all("Sec. 5.2", "when beta = 0, CKTAT's robust generalization is only weaker than LTD and HAT",
                           "CKTAT_beta0", table, (1, 2, 3, 4, 5), ABOVE, ("CKTAT_beta6", "LTD", "HAT"), paper)
        out += _versus_all("Sec. 5.2", "[at beta = 0] its natural generalization is only weaker than Generalist",
                           "CKTAT_beta0", table, (0,), ABOVE, ("CKTAT_beta6", "Generalist"), paper)
    return out


COLUMN_NAMES = {"table1_capacity": ("natural", "PGD"), "table3a_remove": ("natural", "PGD"),
                "table3b_tau": ("natural", "PGD"), "table3c_beta": ("natural", "PGD"),
                "table4_cifar10": ("natural", "PGD", "PGD-100", "MIM", "CW", "AA"),
                "table4_cifar100": ("natural", "PGD", "PGD-100", "MIM", "CW", "AA")}


def text_against_table(paper: dict | None = None) -> list[Finding]:
    """Each statement of `statements` read against the paper's numbers with `noise.compare` on its test images:
    grouped by statement, the comparisons whose numbers lie the other way beyond the noise ("inconsistent") and,
    separately, those that show the stated direction only within it ("not shown")."""
    paper = paper or paper_numbers()
    grouped: dict[tuple[str, str], dict[str, list]] = {}
    for st in statements(paper):
        a, b = row(st.first, paper)[st.column], row(st.second, paper)[st.column]
        word = compare(a, b, n=PAPER_IMAGES).word
        col = COLUMN_NAMES[st.first.split(".")[1]][st.column]
        entry = grouped.setdefault((st.where, st.quote), {"inconsistent": [], "not shown": []})
        if word != st.direction:
            kind = "not shown" if word not in (ABOVE, BELOW) else "inconsistent"
            entry[kind].append((st, col, a, b))
    out = []
    for (where, quote), kinds in grouped.items():
        for kind, items in kinds.items():
            if not items:
                continue
            said = {ABOVE: "above", BELOW: "below"}
            parts = [f"{row_name(st.first)} {a:.2f} against {row_name(st.second)} {b:.2f} in {col} ({a - b:+.2f}; stated "
                     f"{said[st.direction]})" for st, col, a, b in items]
            verb = ("lie the other way beyond the paper's noise" if kind == "inconsistent" else
                    "show it only within the paper's noise")
            text = f"{where}: \"{quote}\". Its numbers {verb}: " + "; ".join(parts) + "."
            rows = tuple(dict.fromkeys(k for st, *_ in items for k in (st.first, st.second)))
            cols = tuple(dict.fromkeys(col for _, col, *_ in items))
            out.append(Finding("text_against_table", rows, text, kind, columns=cols))
    return out


def audit(paper: dict | None = None) -> list[Finding]:
    """Every finding of the three checks, the inconsistencies first."""
    found = attack_drops(paper) + same_setting(paper) + text_against_table(paper)
    return sorted(found, key=lambda f: f.kind != "inconsistent")


# The paper's column a claim is about, from the words of the claim: the first pattern found, in this order (a method's
# name, PGDAT or PGD-AT, names no column).
CLAIM_COLUMNS = ((r"PGD-100\b", "PGD-100"), (r"\bMIM\b", "MIM"), (r"\bCW", "CW"), (r"AutoAttack|\bAA \(", "AA"),
                 (r"\bnatural\b", "natural"), (r"PGD-\d+\b", "PGD"), (r"\brobust\b", "PGD"))


def claim_column(claim: Claim) -> str | None:
    """The column of the paper's tables (`COLUMN_NAMES`' names) a claim is about, or None where its words name none:
    our PGD-20 is the paper's "PGD" column."""
    import re

    return next((col for pattern, col in CLAIM_COLUMNS if re.search(pattern, claim.claim)), None)


def marked(claim: Claim, findings: list[Finding]) -> list[Finding]:
    """The inconsistencies a claim rests on: a finding whose rows it names, or for `attack_drops` one whose two groups
    it spans (a comparison across them), in a column the finding concerns (`claim_column`; a claim whose column is not
    known is marked by every finding on its rows)."""
    rows = set(claim.rests_on)
    column = claim_column(claim)
    out = []
    for f in findings:
        if f.kind != "inconsistent" or (f.columns and column is not None and column not in f.columns):
            continue
        if f.groups:
            if all(rows & set(g) for g in f.groups):
                out.append(f)
        elif rows & set(f.rows):
            out.append(f)
    return out


def audit_sentence(findings: list[Finding], claims: list[Claim]) -> str:
    """The audit's opening: how many inconsistencies and statements not shown, and how many claims rest on the first."""
    bad = [f for f in findings if f.kind == "inconsistent"]
    weak = [f for f in findings if f.kind == "not shown"]
    resting = [c for c in claims if marked(c, findings)]
    return (f"The paper's own numbers: {len(bad)} inconsistenc{'y' if len(bad) == 1 else 'ies'} beyond their noise "
            f"and {len(weak)} statement{'s' * (len(weak) != 1)} of the text that its numbers show only within their "
            f"noise; {len(resting)} of the {len(claims)} claims this book tests rest on a row an inconsistency "
            f"concerns (marked † in the tables below).")


CHECK_NAMES = {"attack_drops": "PGD to PGD-100", "same_setting": "one setting, two tables",
               "text_against_table": "the text against its tables"}


def table_rows(found: list[Claim], findings: list[Finding], link=lambda chapter: chapter,
               readings: list[dict] | None = None) -> list[dict]:
    """The scorecard's rows (`claims.scorecard_rows`) with where each claim's direction comes from (the paper's text
    or its numbers), a † on a claim that rests on a row an inconsistency of the audit concerns (`marked`), and, for a
    claim with a reading (`readings`, `claims.load_readings`), that reading's verdict and the run that decided it."""
    from .claims import scorecard_rows

    out = []
    for c in found:  # points to two decimals, so the difference reads off the two numbers; a correlation too
        line = scorecard_rows([c], link, digits=2)[0]
        mark = " †" if marked(c, findings) else ""
        r = reading_of(c, readings or [])
        out.append({**line, "verdict": line["verdict"] + mark, "direction from": c.source,
                    "reading": "-" if r is None else f"{r['verdict']}: {r['run']}"})
    return out


def reading_of(claim: Claim, readings: list[dict]) -> dict | None:
    """The reading a chapter saved for `claim` (same chapter, same claim), or None."""
    return next((r for r in readings if r["chapter"] == claim.chapter and r["claim"] == claim.claim), None)


def budget_sentence(found: list[Claim], readings: list[dict], zeros: bool = True) -> str:
    """How many contradicted claims the small budget explains (a reading that blames the budget, supported by the
    larger budget's run), how many another cause explains (a supported reading that blames something else; in part
    where the run shows the contradiction would remain without it, `Reading.resolves` False), how many
    stand at the budget that tested them (the run does not support the reading), how many that run leaves undecided
    (it decides the reading within noise: too little power, not a contradiction that stands), and how many have a
    reading no run within the budget tests, a reading whose run the build has not trained yet, or none. Without
    `zeros` (a chapter's few claims), only the counts that are not 0 are said, beside the small budget's."""
    from .budget import NOT_SUPPORTED, NOT_TESTED, NOT_TRAINED_YET, SUPPORTED, WITHIN_NOISE

    bad = [c for c in found if c.verdict == "contradicted"]
    if not bad:
        return ""
    readings_of = [reading_of(c, readings) or {} for c in bad]
    count = lambda test: sum(1 for r in readings_of if test(r))
    budget = count(lambda r: r.get("verdict") == SUPPORTED and r.get("budget", True) and r.get("resolves") is not False)
    narrowed = count(lambda r: r.get("verdict") == SUPPORTED and r.get("budget", True) and r.get("resolves") is False)
    other = count(lambda r: r.get("verdict") == SUPPORTED and not r.get("budget", True) and r.get("resolves") is not False)
    part = count(lambda r: r.get("verdict") == SUPPORTED and not r.get("budget", True) and r.get("resolves") is False)
    stand = count(lambda r: r.get("verdict") == NOT_SUPPORTED)
    undecided = count(lambda r: r.get("verdict") == WITHIN_NOISE)
    untested = count(lambda r: r.get("verdict") == NOT_TESTED)
    waiting = count(lambda r: r.get("verdict") == NOT_TRAINED_YET)
    none = count(lambda r: not r)
    verb = lambda n, one, many: f"{n} {one if n == 1 else many}"
    # (count, said where it is 0 in the scorecard's sentence, words): narrowed and in part only where they happen
    parts = [(budget, True, f"{verb(budget, 'is', 'are')} explained by the small budget (a reading that blames it, "
                            f"supported by a larger budget's run, where the contradiction is gone)"),
             (narrowed, False, f"{verb(narrowed, 'is', 'are')} narrowed by the larger budget but still contradicted "
                               f"there"),
             (other, True, f"{other} by another cause a run supports"),
             (part, False, f"{part} in part by another cause a run supports (the rest of the contradiction remains)"),
             (stand, True, f"{verb(stand, 'stands', 'stand')} (the run that tested {'its' if stand == 1 else 'their'} "
                           f"reading, a larger budget's or another, does not support it)"),
             (undecided, True, f"{verb(undecided, 'is', 'are')} left undecided by "
                               f"{'its' if undecided == 1 else 'their'} run (a change within noise: the run cannot tell)"),
             (untested, True, f"{verb(untested, 'has', 'have')} a reading no run within the budget tests"),
             (waiting, True, f"{verb(waiting, 'has', 'have')} a reading whose run the build has not trained yet"),
             (none, True, f"{verb(none, 'has', 'have')} no reading")]
    said = [text for i, (n, zero, text) in enumerate(parts) if n or i == 0 or (zeros and zero)]
    return (f"Of the {len(bad)} contradicted claims, " + ", ".join(said[:-1]) + (", and " if len(said) > 1 else "")
            + said[-1] + ".")


ATTACK_WORDS = r"PGD-\d+|AutoAttack|AA \([^)]*\)"  # how a claim names its attack: the runs' own PGD, AutoAttack


def attack_disagreements(found: list[Claim]) -> list[tuple[Claim, Claim]]:
    """Pairs of claims that say the same of the same methods under two attacks (their words differ only in the
    attack's name, `ATTACK_WORDS`) and get opposite verdicts: reproduced under the runs' own PGD, contradicted under
    AutoAttack. A robustness
    claim reproduced under the runs' own PGD and contradicted under AutoAttack is the PGD's overstatement, not the
    method's robustness."""
    import re

    from .claims import CONTRADICTED, REPRODUCED

    groups: dict[tuple[str, str], list[Claim]] = {}
    for c in found:
        if re.search(ATTACK_WORDS, c.claim):
            groups.setdefault((c.chapter, re.sub(ATTACK_WORDS, "{attack}", c.claim)), []).append(c)
    pgd, auto = (lambda c: re.search(r"PGD-\d+", c.claim)), (lambda c: re.search(r"AutoAttack|AA \(", c.claim))
    return [(a, b) for cs in groups.values() for a in cs for b in cs
            if a.verdict == REPRODUCED and pgd(a) and b.verdict == CONTRADICTED and auto(b)]


def attack_sentence(found: list[Claim]) -> str:
    """The scorecard's word on `attack_disagreements`: which claims reproduced under PGD AutoAttack contradicts."""
    pairs = attack_disagreements(found)
    if not pairs:
        return ""
    said = "; ".join(f"\u201c{a.claim}\u201d is reproduced while \u201c{b.claim}\u201d is contradicted "
                     f"({a.chapter})" for a, b in pairs)
    n = len(pairs)
    return (f"{n} claim{'s' * (n != 1)} reproduced under the runs' own PGD {'is' if n == 1 else 'are'} contradicted "
            f"under AutoAttack on the same models: {said}. The chapter sets the two attacks side by side on the images "
            f"AutoAttack ran on and weighs how far each method falls from one to the other over the seeds.")


def autoattack_sentence(found: list[Claim], version: str, title: str, images: int) -> str:
    """What "AutoAttack" means in the claims that name it, where the profile runs a version other than the standard
    one (`baselines.aa_version`; `title`: what the tables call it, `report.aa_title`) on the first `images` test
    images: the paper's AutoAttack set against ours. "" where no claim names AutoAttack or the version is the
    standard one."""
    import re

    n = sum(1 for c in found if re.search(r"AutoAttack|AA \(", c.claim))
    if not n or version == "standard":
        return ""
    text = (f"{n} claim{'s' * (n != 1)} {'is' if n == 1 else 'are'} about AutoAttack: ours is {title}, the version "
            f"this profile runs on the first {images:,} test images, set against the paper's (its tables name no "
            f"version).")
    if version == "apgd":
        text += (" Without FAB-T and Square it can only leave a model's accuracy as high as the standard version's "
                 "or higher, never lower.")
    return text


def finding_rows(findings: list[Finding], kind: str) -> list[dict]:
    """The audit's findings of one `kind` as table rows: the check and what it found."""
    return [{"check": CHECK_NAMES[f.check], "finding": f.text} for f in findings if f.kind == kind]
