"""Every number of `paper_numbers.yaml` is printed in the paper its section names: the transcription the book's
"paper" columns and verdicts rest on is checked against the papers' text (../shared/papers, beside the clone)."""

import os
import re

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NUMBERS = os.path.join(ROOT, "cktat_book", "paper_numbers.yaml")
PAPERS = os.path.join(ROOT, os.pardir, "shared", "papers")


def _sources() -> dict[str, str]:
    """Each top-level section of the YAML and the paper file its comment names (`cktat:   # 002_....txt`)."""
    with open(NUMBERS) as fh:
        return dict(re.findall(r"^(\w+):\s+#\s+(\d{3}_[0-9a-f]+\.txt)", fh.read(), flags=re.M))


def _numbers(obj, path=()):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _numbers(v, path + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _numbers(v, path + (i,))
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
        yield path, obj


def _printed(value: float, text: str) -> bool:
    """Whether `value` appears in `text` as a number of its own, written with 0 to 2 decimals."""
    forms = {f"{value:.2f}", f"{value:.1f}", f"{value:g}"}
    return any(re.search(r"(?<![\d.])" + re.escape(f) + r"(?!\d)", text) for f in forms)


def test_every_transcribed_number_is_printed_in_its_paper():
    if not os.path.isdir(PAPERS):
        pytest.skip(f"the papers are not here ({os.path.normpath(PAPERS)})")
    with open(NUMBERS) as fh:
        numbers = yaml.safe_load(fh)
    sources = _sources()
    assert set(sources) == set(numbers)  # every section names its paper
    checked, missing = 0, []
    for section, name in sources.items():
        with open(os.path.join(PAPERS, name)) as fh:
            text = re.sub(r"\\cellcolor[a-z]+!10", " ", fh.read())  # the shade of a table row, glued to its cells
        for path, value in _numbers(numbers[section]):
            checked += 1
            if not _printed(value, text):
                missing.append(f"{section}.{'.'.join(map(str, path))} = {value}")
    assert checked > 200 and not missing, missing


def test_a_number_counts_only_as_a_number_of_its_own():
    assert _printed(83.45, "CKTAT 83.45 56.80") and _printed(56.8, "CKTAT 83.45 56.80")
    assert not _printed(3.45, "CKTAT 83.45") and not _printed(83.4, "CKTAT 83.45") and not _printed(40, "140%")
