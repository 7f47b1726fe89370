"""What every chapter notebook does with its parameters cell: one `Chapter`, then calls into the library.

A chapter's parameters cell (papermill) holds `profile`, `overrides`, `results` and `progress`; its first code
cell builds `ch = Chapter(profile, overrides, results, progress)` and from then on asks it for configs and runs::

    ch.config("cktat", tau=2)                 # the profile's config with the chapter's overrides and these fields
    ch.compare(["pgdat", "trades", "cktat"])  # one budget, one teacher; runs shared with every other chapter
    ch.run("pgdat_from_clean", "pgdat", init_checkpoint=...)   # one named run under the shared runs folder

Runs live in `<results>/runs/<name>` (default results: `<repo>/results/<profile>`), shared by every chapter:
a run trained by one chapter is re-read by the next (`train.run` returns a finished run's saved result).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from .book import results_dir
from .compare import compare
from .config import Config, from_profile, resolve
from .data import dataset_defaults
from .train import run


@dataclass
class Chapter:
    """A chapter's parameters and the folder its runs share with the other chapters."""

    profile: str = "smoke"
    overrides: dict = field(default_factory=dict)
    results: str | None = None
    progress: bool = True

    @property
    def out(self) -> str:
        """The chapter's results folder (summaries, evaluations) holding the shared `runs/`."""
        return results_dir(self.profile, self.results)

    @property
    def runs(self) -> str:
        return os.path.join(self.out, "runs")

    @property
    def num_classes(self) -> int:
        """The number of classes of the profile's dataset."""
        return dataset_defaults(self.config("pgdat").dataset)["num_classes"]

    def config(self, method: str, **fields) -> Config:
        """The profile's config for `method` with the chapter's overrides, then `fields`, validated."""
        return from_profile(self.profile, {**self.overrides, "method": method, "progress": self.progress, **fields})

    def resolved(self, method: str, **fields) -> Config:
        """`config` with the dataset's defaults filled in (eps, alpha, augmentation, teacher lr)."""
        return resolve(self.config(method, **fields))

    def compare(self, methods: list[str], **fields) -> dict:
        """`compare.compare` over the shared runs folder; its summary goes to `out/summaries/<m1>_<m2>....json`."""
        path = os.path.join(self.out, "summaries", "_".join(methods) + ".json")
        return compare(methods, self.profile, self.runs, {**self.overrides, "progress": self.progress, **fields},
                       summary_path=path)

    def run(self, name: str, method: str, **fields) -> dict:
        """Train (or re-read) one run, `runs/<name>`, of `method` with `fields` on top of the chapter's config."""
        return run(self.config(method, **fields), os.path.join(self.runs, name))
