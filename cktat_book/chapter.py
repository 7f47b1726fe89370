"""What every chapter notebook does with its parameters cell: one `Chapter`, then calls into the library.

A chapter's parameters cell (papermill) holds `profile`, `overrides`, `results` and `progress`; its first code
cell builds `ch = Chapter(profile, overrides, results, progress)` and from then on asks it for configs and runs::

    ch.config("cktat", tau=2)                 # the profile's config with the chapter's overrides and these fields
    ch.compare(["pgdat", "trades", "cktat"])  # one budget, one teacher; runs shared with every other chapter
    ch.run("pgdat_from_clean", "pgdat", init_checkpoint=...)   # one named run under the shared runs folder
    ch.variant("cktat", tau=3)                # runs/cktat_tau3, its teacher the shared runs/teacher_clean
    ch.seeds("cktat")                         # runs/cktat, runs/cktat_seed1 (taught by runs/teacher_clean_seed1), ...

Runs live in `<results>/runs/<name>` (default results: `<repo>/results/<profile>`), shared by every chapter:
a run trained by one chapter is re-read by the next (`train.run` returns a finished run's saved result).
`variant` names a run after what it changes (`variant_name`), so two chapters that ask for the same change get the
same run, and a change that is no change (tau=5 when the profile's tau is 5) is the chapter's `compare` run.

With `train` False (`CKTAT_TRAIN=0` in the environment: `cktat reproduce --no-train` sets it for the kernel) a
chapter trains nothing: asked for a run, a teacher or a checkpoint that is not finished here, it stops with
`RunPending` naming it, and `cktat reproduce` turns the page into one that says which run it waits for. A page that
shows a stage's runs as they land asks `landed` instead: without training, a run not finished is left out, and
noted as one the page would train (`WOULD_TRAIN_ENV`), so that `cktat reproduce` with training executes it again.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable

from .site import results_dir
from cktat_core.compare import compare
from cktat_core.config import Config, from_profile, resolve
from cktat_core.data import dataset_defaults
from cktat_core.errors import CktatError
from cktat_core.methods import METHODS, frozen_teacher
from cktat_core.train import (EVAL_KEYS, TEACHER_KEYS, THREAT_KEYS, missing_weights, read_finished,
                              restore_checkpoint, run, run_settings, teacher_checkpoint_path, teacher_run,
                              teacher_settings)

PATH_FIELDS = ("teacher_checkpoint", "init_checkpoint")
SEEDS = (0, 1, 2)  # the seeds of the runs whose spread the book measures (PGD-AT, TRADES, CKTAT)
TRAIN_ENV = "CKTAT_TRAIN"  # "0": chapters train nothing (`Chapter.train`)
WOULD_TRAIN_ENV = "CKTAT_WOULD_TRAIN"  # a file `landed` appends the runs it would train to, one per line (`reproduce`)


class RunPending(CktatError):
    """A chapter that may not train (`Chapter.train` False) asked for something that is not finished here: `path`,
    a run folder (or a checkpoint a finished run wrote that is not kept here), relative to the results folder.
    The message starts with that path (`cktat reproduce` reads it back from the kernel's error)."""

    def __init__(self, path: str, what: str = "is not trained in this results folder"):
        self.path = path
        super().__init__(f"{path} {what}")


def _training_allowed() -> bool:
    return os.environ.get(TRAIN_ENV, "1") != "0"


def _short(value) -> str:
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def variant_name(prefix: str, base: Config, cfg: Config, keys=None) -> str:
    """`prefix` followed by `_<field><value>` for every field (of `keys`, default all) where `cfg` differs from
    `base`, sorted by name; checkpoint paths never enter a name (say what they are with another field,
    e.g. teacher_kind). variant_name("cktat", base, base.replace(tau=3.0, beta=0.0)) == "cktat_beta0_tau3"."""
    a, b = base.to_dict(), cfg.to_dict()
    keys = set(keys or a)
    changed = sorted((k for k in a if k in keys and k not in PATH_FIELDS + ("progress",) and a[k] != b[k]))
    return prefix + "".join(f"_{k}{_short(b[k])}" for k in changed)


@dataclass
class Chapter:
    """A chapter's parameters and the folder its runs share with the other chapters."""

    profile: str = "smoke"
    overrides: dict = field(default_factory=dict)
    results: str | None = None
    progress: bool = True
    train: bool = field(default_factory=_training_allowed)

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

    def _require(self, out: str, settings: Callable[[], dict]) -> None:
        """Nothing, unless the chapter may not train and the run in `out` is not finished with `settings()` (called
        only then: a chapter that trains does not compute them twice)."""
        if not self.train and read_finished(out, settings()) is None:
            raise RunPending(os.path.relpath(out, self.out))

    def compare(self, methods: list[str], **fields) -> dict:
        """`compare.compare` over the shared runs folder; its summary goes to `out/summaries/<m1>_<m2>....json`."""
        for m in methods if not self.train else ():
            cfg, _ = self._planned(m, fields)  # its teacher checked first
            out = os.path.join(self.runs, m)
            self._require(out, lambda: run_settings(resolve(cfg), out))
        path = os.path.join(self.out, "summaries", "_".join(methods) + ".json")
        return compare(methods, self.profile, self.runs, {**self.overrides, "progress": self.progress, **fields},
                       summary_path=path)

    def run(self, name: str, method: str, **fields) -> dict:
        """Train (or re-read) one run, `runs/<name>`, of `method` with `fields` on top of the chapter's config."""
        cfg, out = self.config(method, **fields), os.path.join(self.runs, name)
        self._require(out, lambda: run_settings(resolve(cfg), out))
        return run(cfg, out)

    def _teacher_config(self, **fields) -> Config:
        """The chapter's config with those of `fields` a stand-alone teacher run depends on (`train.teacher_settings`);
        student-only fields (tau, teacher_kind, ...) are left out."""
        keys = set(TEACHER_KEYS + THREAT_KEYS + EVAL_KEYS + ("teacher_select",)) - {"teacher_kind", "teacher_checkpoint"}
        return self.config("pgdat", **{k: v for k, v in fields.items() if k in keys})

    def teacher_dir(self, kind: str = "clean", **fields) -> str:
        """The folder of the shared frozen teacher of `kind` for the chapter's config with `fields`:
        `runs/teacher_<kind>` plus the teacher fields that differ (`runs/teacher_clean_width4`)."""
        base, cfg = self.config("pgdat"), self._teacher_config(**fields)
        return os.path.join(self.runs, variant_name(f"teacher_{kind}", base, cfg, TEACHER_KEYS + ("teacher_select",)))

    def teacher(self, kind: str = "clean", **fields) -> dict:
        """Train (or re-read) that teacher (`train.teacher_run`); its checkpoint, history and test evaluation."""
        cfg, out = self._teacher_config(**fields), self.teacher_dir(kind, **fields)
        self._require(out, lambda: teacher_settings(resolve(cfg), kind))
        return teacher_run(cfg, kind, out)

    def weights(self, path: str) -> str:
        """`path`, a checkpoint written by a run, once it is here: a clone holds the committed results, never the
        checkpoints, so a missing one is trained again first from its run's result.json
        (`train.restore_checkpoint`, with this chapter's device and data folder)."""
        if not self.train and missing_weights(path):
            raise RunPending(os.path.relpath(path, self.out), "is not here: its run's result is, its weights are not")
        restore_checkpoint(path, self.resolved("pgdat"))
        return path

    def _run_of(self, path: str) -> str:
        """The run folder under `runs` that holds checkpoint `path` (its file name when it lies elsewhere)."""
        rel = os.path.relpath(os.path.abspath(path), os.path.abspath(self.runs))
        return os.path.basename(path) if rel.startswith("..") else rel.split(os.sep)[0]

    def _planned(self, method: str, fields: dict, train_teacher: bool = True) -> tuple[Config, str]:
        """The config and run name `variant` uses (the shared teacher's checkpoint filled in, trained when
        `train_teacher`, else only named)."""
        base, cfg = self.config(method), self.config(method, **fields)
        name = variant_name(method, base, cfg)
        kind = frozen_teacher(METHODS[method], cfg)
        if kind is not None:
            shared = self.teacher_dir(kind, **fields)
            if not cfg.teacher_checkpoint:
                path = (self.teacher(kind, **fields)["checkpoint"] if train_teacher else
                        teacher_checkpoint_path(shared, resolve(self._teacher_config(**fields))))
                cfg = cfg.replace(teacher_checkpoint=path)
            elif self._run_of(cfg.teacher_checkpoint) != os.path.basename(shared):
                name += f"_teacher-{self._run_of(cfg.teacher_checkpoint)}"
        if cfg.init_checkpoint:
            name += f"_init-{self._run_of(cfg.init_checkpoint)}"
        return cfg, name

    def variant(self, method: str, **fields) -> dict:
        """Train (or re-read) `method` with `fields` changed from the chapter's config, in `runs/<variant_name>`.

        A method with a frozen teacher gets the shared one (`teacher`) unless `fields` name a teacher_checkpoint.
        A checkpoint given in `fields` enters the name as the run folder it comes from: `init_checkpoint` of
        runs/teacher_clean/... adds "_init-teacher_clean", a teacher_checkpoint other than the shared teacher's
        "_teacher-<folder>". Returns the run's result (`train.run`) with "run_dir" and "name" added."""
        cfg, name = self._planned(method, fields)
        out = os.path.join(self.runs, name)
        self._require(out, lambda: run_settings(resolve(cfg), out))
        res = run(cfg, out)
        return {**res, "name": name, "run_dir": os.path.join(self.runs, name)}

    def name(self, method: str, **fields) -> str:
        """The run folder's name `variant(method, **fields)` uses, under `runs` (nothing is trained or read)."""
        return self._planned(method, fields, train_teacher=False)[1]

    def finished(self, method: str, **fields) -> dict | None:
        """The run `variant(method, **fields)` would train, if it is finished in this results folder (nothing is
        trained or loaded): its result with "name" and "run_dir", else None. A page that shows a run only when the
        build trained it asks this."""
        cfg, name = self._planned(method, fields, train_teacher=False)
        out = os.path.join(self.runs, name)
        done = read_finished(out, run_settings(resolve(cfg), out))
        return None if done is None else {**done, "name": name, "run_dir": out}

    def landed(self, method: str, **fields) -> dict | None:
        """`variant(method, **fields)` where the chapter may train; else the run if it is finished here (`finished`),
        and None when it is not: the run is then appended, as `runs/<name>`, to the file `WOULD_TRAIN_ENV` names
        (`cktat reproduce` sets it, and keeps the page stale under training until the run is trained)."""
        if self.train:
            return self.variant(method, **fields)
        done = self.finished(method, **fields)
        note = os.environ.get(WOULD_TRAIN_ENV)
        if done is None and note:
            with open(note, "a") as fh:
                fh.write(os.path.join("runs", self.name(method, **fields)) + "\n")
        return done

    def seeds(self, method: str, seeds=SEEDS, **fields) -> list[dict]:
        """`variant(method, seed=s, **fields)` for every seed of `seeds` (the first is the profile's own run). A
        method with a frozen teacher gets the teacher of its own seed (`runs/teacher_clean_seed1`), so the seeds are
        independent replicates of the whole recipe: their spread includes training the teacher again."""
        base = self.config(method, **fields)
        return [self.variant(method, **fields, **({} if s == base.seed else {"seed": s})) for s in seeds]

    def sibling(self, profile: str) -> "Chapter":
        """The same chapter in another profile, with that profile's default results folder (to read what it saved)."""
        return Chapter(profile, {}, None, self.progress, self.train)
