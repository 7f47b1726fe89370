"""The book: chapters re-execute only when stale, every chapter executes (tiny configuration) and the site
builds with warnings as errors, badges open existing notebooks, the publishing workflow is well formed."""

import glob
import io
import json
import os
import re
import shutil
import subprocess

import nbformat
import pytest
import yaml

from cktat_book import baselines, book_runs, budget, report, reproduce, site
from cktat_book.chapter import Chapter
from cktat_core.config import from_profile
from cktat_core.errors import CktatError

TINY = {"train_limit": 256, "val_size": 128, "test_limit": 64, "teacher_epochs": 1, "epochs": 1,
        "batch_size": 64, "attack_steps": 2, "val_attack_steps": 2, "eval_steps": 2}
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PARAMS = 'profile = "smoke"\noverrides = {}\nresults = None\nprogress = True'


# --- staleness, on tiny notebooks that need no torch ---------------------------------------------------

def _notebook(path, body):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_markdown_cell("# A chapter"),
                nbformat.v4.new_code_cell(PARAMS, metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell(body)]
    nbformat.write(nb, str(path))


READER = ('import json, os\n'
          'weights = open(os.path.join(results, "model.pt"), "rb").read()\n'
          'value = json.load(open(os.path.join(results, "input.json")))["x"]\n'
          'json.dump({"y": 2 * value}, open(os.path.join(results, "output.json"), "w"))\n'
          'print("y =", 2 * value)')


@pytest.fixture
def tiny_book(tmp_path, monkeypatch):
    """A repository with two chapters (01 reads results/input.json, writes output.json; 02 prints), its own
    copy of a library, and a results folder."""
    root = tmp_path / "repo"
    (root / "notebooks").mkdir(parents=True)
    _notebook(root / "notebooks" / "01_reads.ipynb", READER)
    _notebook(root / "notebooks" / "02_plain.ipynb", 'print("hello")')
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "module.py").write_text("A = 1\n")
    (lib / "paper_numbers.yaml").write_text("table: 1\n")
    monkeypatch.setattr(reproduce, "LIBRARY", str(lib))
    monkeypatch.setattr(reproduce, "PACKAGES", (str(lib),))  # the code a chapter runs: this copy alone
    monkeypatch.setattr(reproduce, "BOOK_DEFAULT", "smoke")  # these chapters' book profile
    results = tmp_path / "results"
    results.mkdir()
    (results / "input.json").write_text('{"x": 21}')
    (results / "model.pt").write_bytes(b"weights")
    lines = []

    def run(**kw):
        out = io.StringIO()
        try:
            done = reproduce.reproduce("smoke", kw.pop("overrides", {}), results=str(results), root=str(root),
                                       echo=lambda *a, **k: print(*a, **k, file=out), **kw)
        finally:
            lines[:] = out.getvalue().splitlines()
        return {c.name: how for c, how in done}

    return root, lib, results, run, lines


def test_only_stale_chapters_execute(tiny_book, monkeypatch):
    root, lib, results, run, lines = tiny_book
    assert run() == {"01_reads": "executed", "02_plain": "executed"}
    assert re.search(r"01_reads\s+executing \(not executed yet\)", lines[0])
    assert re.search(r"01_reads\s+executed in \d+ s$", lines[1])
    assert lines[-1].startswith("total: 2 chapters, 2 executed, 0 reused")
    executed = root / "book" / "chapters" / "01_reads.ipynb"
    meta = json.loads(executed.read_text())["metadata"]["cktat"]["fingerprint"]
    # the file it read is recorded with its hash; the file it wrote is its own output, not an input
    assert meta["results"] == {"input.json": reproduce.file_hash(str(results / "input.json")),
                               "model.pt": reproduce.file_hash(str(results / "model.pt"))}
    assert meta["parameters"]["profile"] == "smoke" and meta["library"] == reproduce.library_hash()
    assert "y = 42" in executed.read_text()
    tags = {tuple(c["metadata"].get("tags", [])) for c in json.loads(executed.read_text())["cells"]}
    assert ("parameters", "remove-cell") in tags and ("injected-parameters", "hide-input") in tags

    # nothing changed: every chapter reused, without a kernel
    def no_kernel(*a, **k):
        raise AssertionError("a chapter was executed although nothing was stale")
    with monkeypatch.context() as m:
        m.setattr(reproduce, "execute", no_kernel)
        assert run() == {"01_reads": "reused", "02_plain": "reused"}
    assert [line.split()[-1] for line in lines[:2]] == ["reused", "reused"]

    # a new file in the results folder (another chapter's run) changes nothing
    (results / "other.json").write_text("{}")
    assert set(run().values()) == {"reused"}

    # editing one chapter's notebook re-executes that chapter alone
    nb = nbformat.read(str(root / "notebooks" / "02_plain.ipynb"), as_version=4)
    nb.cells[2].source = 'print("hello again")'
    nbformat.write(nb, str(root / "notebooks" / "02_plain.ipynb"))
    assert run() == {"01_reads": "reused", "02_plain": "executed"}
    assert "notebook changed" in lines[1]

    # a result file a chapter read changed: that chapter alone
    (results / "input.json").write_text('{"x": 5}')
    assert run() == {"01_reads": "executed", "02_plain": "reused"}
    assert "input.json changed" in lines[0] and "y = 10" in executed.read_text()

    # a checkpoint it read: gone (not committed) changes nothing, changed re-executes
    (results / "model.pt").unlink()
    assert set(run().values()) == {"reused"}
    (results / "model.pt").write_bytes(b"other weights")
    assert run() == {"01_reads": "executed", "02_plain": "reused"} and "model.pt changed" in lines[0]

    # the library, or the paper's numbers, changed: every chapter
    (lib / "module.py").write_text("A = 2\n")
    assert run() == {"01_reads": "executed", "02_plain": "executed"}
    (lib / "paper_numbers.yaml").write_text("table: 2\n")
    assert set(run().values()) == {"executed"} and "paper numbers changed" in lines[0]

    # other parameters, or --force
    assert run(overrides={"epochs": 3}) == {"01_reads": "executed", "02_plain": "executed"}
    assert run(force=True) == {"01_reads": "executed", "02_plain": "executed"}
    assert run(only=["02"]) == {"02_plain": "reused"}


def test_a_chapter_reading_what_an_earlier_one_wrote_executes_in_the_same_call(tiny_book):
    """The scorecard reads the claims the chapters before it save: when one of them executes and rewrites its
    file, the chapter that reads it is stale in the same call, not only in the next."""
    root, lib, results, run, lines = tiny_book
    _notebook(root / "notebooks" / "03_sums.ipynb",
              'import json, os\nprint("total", json.load(open(os.path.join(results, "output.json")))["y"] + 1)')
    assert set(run().values()) == {"executed"}
    (results / "input.json").write_text('{"x": 5}')
    assert run() == {"01_reads": "executed", "02_plain": "reused", "03_sums": "executed"}
    assert "output.json changed" in next(line for line in lines if "03_sums" in line and "executing" in line)
    assert "total 11" in (root / "book" / "chapters" / "03_sums.ipynb").read_text()
    assert run() == {"01_reads": "reused", "02_plain": "reused", "03_sums": "reused"}


def _saves_claims(name):
    return ('from cktat_book import claims\n'
            f'claims.save(results, "{name}", [claims.untestable("{name}", "s", "a claim", "m", None, "why")])')


def test_a_new_chapter_saving_claims_makes_the_scorecard_stale_and_no_other_chapter(tiny_book):
    """Saving claims rewrites `claims/index.json` and the chapter's own file; neither is an input of the chapters
    that save, only of the scorecard that reads them all."""
    root, lib, results, run, lines = tiny_book
    _notebook(root / "notebooks" / "04_first.ipynb", _saves_claims("04_first"))
    _notebook(root / "notebooks" / "06_card.ipynb",
              'from cktat_book import claims\nprint("counted", len(claims.load_all(results)))')
    assert set(run().values()) == {"executed"}
    assert set(run(force=True).values()) == {"executed"}  # now with its claims and the index already there
    card = root / "book" / "chapters" / "06_card.ipynb"
    assert "counted 1" in card.read_text()
    meta = json.loads((root / "book" / "chapters" / "04_first.ipynb").read_text())["metadata"]["cktat"]
    assert meta["fingerprint"]["results"] == {}, "a chapter's own claims are its output, not its input"
    _notebook(root / "notebooks" / "05_second.ipynb", _saves_claims("05_second"))
    assert run() == {"01_reads": "reused", "02_plain": "reused", "04_first": "reused", "05_second": "executed",
                     "06_card": "executed"}
    assert "counted 2" in card.read_text()
    assert set(run().values()) == {"reused"}


def test_a_failing_chapter_is_one_line_and_keeps_the_chapters_before_it(tiny_book):
    root, lib, results, run, lines = tiny_book
    _notebook(root / "notebooks" / "03_fails.ipynb", 'raise ValueError("no such run")')
    with pytest.raises(CktatError) as err:
        run()
    message = str(err.value)
    assert "\n" not in message
    assert "03_fails.ipynb" in message and "cell 3" in message and "ValueError: no such run" in message
    fingerprint = reproduce.recorded(str(root / "book" / "chapters" / "01_reads.ipynb"))
    assert fingerprint is not None and reproduce.recorded(str(root / "book" / "chapters" / "02_plain.ipynb"))
    assert not (root / "book" / "chapters" / "03_fails.ipynb").exists()
    assert (root / "book" / "chapters" / "03_fails.failed.ipynb").exists()
    # the chapters before it stay current
    _notebook(root / "notebooks" / "03_fails.ipynb", "x = 1")
    assert run() == {"01_reads": "reused", "02_plain": "reused", "03_fails": "executed"}


def test_a_dying_kernel_is_one_line(tiny_book):
    root, lib, results, run, lines = tiny_book
    _notebook(root / "notebooks" / "03_dies.ipynb", 'import os\nos._exit(1)')
    with pytest.raises(CktatError) as err:
        run(only=["03"])
    assert "\n" not in str(err.value) and str(err.value).startswith("03_dies.ipynb: ")


def test_the_table_of_contents_lists_every_chapter_once():
    with open(os.path.join(ROOT, "_toc.yml")) as fh:
        toc = yaml.safe_load(fh)
    files = [c["file"] for part in toc["parts"] for c in part["chapters"]]
    listed = sorted(f for f in files if f.startswith("book/chapters/"))
    expected = sorted("book/chapters/" + os.path.basename(nb)[:-len(".ipynb")] for nb in site.chapter_notebooks(ROOT))
    assert listed == expected


def test_unknown_chapter_is_a_clear_error():
    with pytest.raises(CktatError):
        reproduce.chapters(["98"], root=ROOT)


# --- Colab --------------------------------------------------------------------------------------------

def test_every_chapter_starts_with_a_colab_badge_to_its_own_notebook():
    url, branch = site.repository(ROOT)
    tracked = subprocess.run(["git", "ls-files", "notebooks"], cwd=ROOT, capture_output=True, text=True).stdout.split()
    notebooks = site.chapter_notebooks(ROOT)
    assert len(notebooks) >= 4
    for path in notebooks:
        rel = os.path.relpath(path, ROOT).replace(os.sep, "/")
        nb = nbformat.read(path, as_version=4)
        first_md = next(c for c in nb.cells if c.cell_type == "markdown")
        assert first_md.source.split("\n")[0] == site.colab_badge(rel, ROOT), rel
        targets = site.badges(path)
        assert targets, rel
        prefix = f"https://colab.research.google.com/github/{url.split('github.com/')[1]}/blob/{branch}/"
        for target in targets:
            assert target.startswith(prefix), target  # built from _config.yml's repository
            assert target[len(prefix):] == rel and os.path.isfile(os.path.join(ROOT, rel))
            assert not tracked or rel in tracked, f"{rel} is not in the repository"
        first_code = next(c for c in nb.cells if c.cell_type == "code")
        assert first_code.source == site.colab_cell_source(ROOT), rel
        assert "remove-cell" in first_code.metadata.get("tags", [])
    assert site.sync_colab_cells(ROOT) == []  # nothing left to rewrite


def test_the_colab_cell_does_nothing_outside_colab(monkeypatch):
    cwd, path, env = os.getcwd(), list(__import__("sys").path), dict(os.environ)
    namespace = {}
    exec(site.colab_cell_source(ROOT), namespace)
    assert os.getcwd() == cwd and __import__("sys").path == path and dict(os.environ) == env
    assert "REPO" not in namespace


def test_the_repository_address_is_checked(tmp_path):
    (tmp_path / "_config.yml").write_text("repository:\n  url: not-a-url\n")
    with pytest.raises(CktatError):
        site.repository(str(tmp_path))


# --- publishing ---------------------------------------------------------------------------------------

def _main_command():
    readme = open(os.path.join(ROOT, "README.md")).read()
    block = readme.split("## The main command", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    return block.strip().splitlines()[0].split("#")[0].strip()


def test_the_workflow_runs_the_main_command_and_publishes_the_site():
    assert _main_command() == "bash scripts/reproduce.sh"
    with open(os.path.join(ROOT, ".github", "workflows", "book.yml")) as fh:
        wf = yaml.safe_load(fh)
    triggers = wf[True] if True in wf else wf["on"]  # YAML 1.1 reads the key `on` as True
    assert triggers["push"]["branches"] == ["main"]
    assert wf["permissions"]["pages"] == "write" and wf["permissions"]["id-token"] == "write"
    steps = wf["jobs"]["build"]["steps"]
    assert any(s.get("run", "").strip() == _main_command() for s in steps)
    upload = [s for s in steps if s.get("uses", "").startswith("actions/upload-pages-artifact@")]
    assert upload and upload[0]["with"]["path"] == "_build/html"
    assert [s.get("uses", "").split("@")[0] for s in steps][:2] == ["actions/checkout", "actions/setup-python"]
    deploy = wf["jobs"]["deploy"]
    assert deploy["needs"] == "build"
    assert any(s.get("uses", "").startswith("actions/deploy-pages@") for s in deploy["steps"])


def test_mathjax_is_served_from_the_site():
    """The site's math renders offline: MathJax comes from a package copied into the site (the slow build
    test checks that the built pages load it from there and not from a CDN)."""
    import importlib

    with open(os.path.join(ROOT, "_config.yml")) as fh:
        cfg = yaml.safe_load(fh)
    assert "sphinx-mathjax-offline" in cfg["sphinx"]["extra_extensions"]
    ext = importlib.import_module("sphinx-mathjax-offline")
    assert os.path.isfile(os.path.join(os.path.dirname(ext.__file__), "static", "mathjax", "tex-chtml.js"))
    assert "mathjax_path" not in cfg["sphinx"]["config"]


# --- the whole book, executed on a tiny configuration ---------------------------------------------------

def _site(tmp_path):
    folder = tmp_path / "site"
    folder.mkdir()
    for name in ["_config.yml", "_toc.yml"]:
        shutil.copy(os.path.join(ROOT, name), folder / name)
    shutil.copytree(os.path.join(ROOT, "book"), folder / "book", ignore=shutil.ignore_patterns("chapters"))
    shutil.copytree(os.path.join(ROOT, "_static"), folder / "_static")  # the pages' stylesheet
    shutil.copytree(os.path.join(ROOT, "benchmarks", "results"), folder / "benchmarks" / "results")  # included pages
    for example in ("standard_resnet18",):  # the example's generated page
        (folder / "examples" / example).mkdir(parents=True)
        shutil.copy(os.path.join(ROOT, "examples", example, "RESULTS.md"), folder / "examples" / example / "RESULTS.md")
    return folder


@pytest.mark.slow
def test_chapters_execute_and_the_book_builds(tmp_path):
    folder = _site(tmp_path)
    executed = reproduce.execute_chapters("smoke", TINY, results=str(tmp_path / "results"),
                                          out_dir=str(folder / "book" / "chapters"), root=ROOT)
    assert [os.path.basename(p) for p in executed] == [os.path.basename(p) for p in site.chapter_notebooks(ROOT)]
    assert len(executed) >= 2
    index = site.build(root=str(folder))
    assert os.path.exists(index)
    for nb in executed:
        name = os.path.basename(nb)
        html = (folder / "_build" / "html" / "book" / "chapters" / name.replace(".ipynb", ".html")).read_text()
        assert "Traceback" not in html
        assert site.colab_url(f"notebooks/{name}", ROOT) in html  # the badge, on the rendered page
    # every run a chapter asked for left its result behind
    assert (tmp_path / "results" / "runs" / "cktat" / "result.json").exists()
    _assert_local_mathjax(folder / "_build" / "html")
    _assert_scorecard_matches_the_chapters(executed, tmp_path / "results")


def _fake_cifar10(folder, per_batch: int = 40, test: int = 60) -> None:
    """A CIFAR-10 folder in the official python format holding random images (no download, no real data)."""
    import pickle

    import numpy as np

    rng = np.random.default_rng(0)
    root = folder / "cifar-10-batches-py"
    root.mkdir(parents=True)
    for name, n in [*((f"data_batch_{i}", per_batch) for i in range(1, 6)), ("test_batch", test)]:
        batch = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                 b"labels": [int(v) for v in rng.integers(0, 10, n)]}
        with open(root / name, "wb") as fh:
            pickle.dump(batch, fh)


def _on_fake_cifar(profile, tmp_path, only=None, **over):
    """The chapters (`only`, all by default) executed in `profile` on random images in CIFAR-10's format (no
    download, no real data), with the tiny overrides and `over`."""
    _fake_cifar10(tmp_path / "data")
    over = {**TINY, "data_dir": str(tmp_path / "data"), "model": "small_cnn", "train_limit": 96, "val_size": 64,
            "train_per_file": 40, "test_limit": 48, "batch_size": 32, "eval_batch_size": 48, **over}
    return reproduce.execute_chapters(profile, over, only=only, results=str(tmp_path / "results"),
                                      out_dir=str(tmp_path / "chapters"), root=ROOT)


def _glued(path, key="findings"):
    """The markdown a notebook glued under `key` (myst-nb stores it in the cell's display data)."""
    nb = nbformat.read(str(path), as_version=4)
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            if o.get("metadata", {}).get("scrapbook", {}).get("name") == key:  # display=False prefixes the type
                return next(v for k, v in o["data"].items() if k.endswith("text/markdown"))
    raise AssertionError(f"{path}: nothing glued under {key!r}")


def _assert_scorecard_matches_the_chapters(executed, results):
    """The scorecard shows every saved claim with the verdict its chapter stated in its own findings."""
    from cktat_book import claims

    found = claims.load_all(str(results))
    assert found, "the chapters saved their claims"
    by_chapter = {os.path.basename(p)[:-len(".ipynb")]: p for p in executed}
    for c in found:  # its sentence, its name on the line of its verdict, or its table's count (`claims.opening`)
        text = _glued(by_chapter[c.chapter])
        listed = any(line.startswith(claims.group_label(c.verdict)) and claims.in_list(c.claim) in line
                     for line in text.split("\n\n"))
        mine = [x for x in found if x.chapter == c.chapter and x.section == c.section]
        counted = f"**{c.section}**, {len(mine)} claims: " in text and \
            f"{claims.tally(mine)[c.verdict]} {c.verdict}" in text.split(f"**{c.section}**, ")[1].split(";")[0]
        assert listed or counted or any(claims.sentence(c, d) in text for d in (1, 2)), (c, text)
    card = nbformat.read(by_chapter["99_scorecard"], as_version=4)
    shown = "".join(o.get("data", {}).get("text/markdown", "") for cell in card.cells for o in cell.get("outputs", []))
    rows = [line for line in shown.splitlines() if line.startswith("| [")]
    assert len(rows) == len(found)
    in_sections = [c for section in claims.by_section(found).values() for c in section]  # the page's order
    from cktat_book import scorecard

    findings = scorecard.audit()
    for c, line in zip(in_sections, rows):  # the verdict, with its mark where it rests on an inconsistent row
        mark = " †" if scorecard.marked(c, findings) else ""
        assert f"[{c.claim}](" in line and f"| {c.verdict}{mark} |" in line
    assert str(len(found)) in _glued(by_chapter["99_scorecard"])


# The chapters the cpu test leaves out: the attack-suite chapters whose page code takes the same path in smoke and cpu
# under the tests' overrides (the suite's images and AutoAttack version are the same in both: the next test checks
# it; the networks and image shapes are the same, small_cnn on 3x32x32 images of 10 classes), executed by the smoke
# test. The data differ (multi-view in smoke, CIFAR-10 in cpu), so a chapter whose code branches on its dataset
# must execute on CIFAR-10 somewhere: chapter 08's branches do in the paper test (`PAPER_PATHS`, CIFAR-10 beside
# CIFAR-100); chapter 04 has none. Every other chapter has a cpu path of its own and executes in the cpu test.
SAME_AS_SMOKE = ["04", "08"]
DATASET_BRANCH = re.compile(r"dataset\s*(==|!=|in\b)|==\s*\"cifar|cifar10\s*(if|else)\b")


def test_the_chapters_the_cpu_test_leaves_out_take_smokes_path_or_execute_on_cifar_in_the_paper_test():
    assert baselines.aa_version("cpu") == baselines.aa_version("smoke")
    assert baselines.evaluation_limit("cpu", TINY) == baselines.evaluation_limit("smoke", TINY) == TINY["test_limit"]
    assert from_profile("cpu").model == from_profile("smoke").model
    for name in SAME_AS_SMOKE:
        [path] = [p for p in site.chapter_notebooks(ROOT) if os.path.basename(p).startswith(name)]
        code = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells
                         if c.cell_type == "code" and "parameters" not in c.metadata.get("tags", []))
        assert '"cpu"' not in code and '"smoke"' not in code, f"chapter {name} names a profile: execute it in the cpu test"
        assert name in PAPER_PATHS or not DATASET_BRANCH.search(code), \
            f"chapter {name} branches on its dataset: execute it on CIFAR-10 in the cpu or the paper test"
    nine = open(os.path.join(ROOT, "notebooks", "09_raat_ducat.ipynb")).read()
    assert DATASET_BRANCH.search(nine)  # the pattern finds a branch where there is one (chapter 09's stays in)


@pytest.mark.slow
def test_chapters_execute_in_the_cpu_profile(tmp_path):
    """The committed book's profile, from the same notebooks, on random images in CIFAR-10's format (small_cnn at
    width 8, a seventh of the profile's attack cost): every chapter but `SAME_AS_SMOKE` executes, saves its claims and
    opens with them, and the scorecard shows exactly those claims."""
    chapters = [os.path.basename(p)[:2] for p in site.chapter_notebooks(ROOT)]
    only = [c for c in chapters if c not in SAME_AS_SMOKE]
    executed = _on_fake_cifar("cpu", tmp_path, only=only, width=8)
    assert [os.path.basename(p)[:2] for p in executed] == only
    _assert_scorecard_matches_the_chapters(executed, tmp_path / "results")


# The chapters whose pages take a path of their own in the paper profile; the cpu profile's test executes every
# chapter on the same kind of data (CIFAR-10's format) with the same tiny overrides, which leaves the paper profile
# only these paths to show: 01 (CIFAR-10 has no probe images: a sentence, not a KeyError), 07 (validation's pick
# beside the paper's own tau, `ablations.pick_sentence`) and 08 (CIFAR-100 beside CIFAR-10). Chapter 10's own
# path (no attack rung) is the profile's, which tiny overrides of the attack undo: checked on the configs.
PAPER_PATHS = ["01", "07", "08"]


@pytest.mark.slow
def test_the_chapters_with_a_path_of_their_own_execute_in_the_paper_profile(tmp_path):
    """The paper profile runs from the same notebooks, on random images in CIFAR-10's format (`PAPER_PATHS`)."""
    executed = _on_fake_cifar("paper", tmp_path, only=PAPER_PATHS)
    assert [os.path.basename(p)[:2] for p in executed] == PAPER_PATHS
    text = open(executed[0]).read()
    assert "no probe images" in text and "cifar10" in text
    assert "The paper profile uses tau = 5" in open(executed[1]).read()
    assert "CIFAR-100" in open(executed[2]).read()


def test_the_ladder_has_a_paper_attack_rung_only_where_the_profile_trains_with_another_attack():
    assert list(book_runs.ladder_rungs(Chapter("cpu"))) == ["2x epochs", "4x epochs", budget.ATTACK_RUNG]
    assert list(book_runs.ladder_rungs(Chapter("paper"))) == ["2x epochs", "4x epochs"]


def _assert_local_mathjax(html_dir):
    page = (html_dir / "book" / "intro.html").read_text() if (html_dir / "book" / "intro.html").exists() \
        else (html_dir / "index.html").read_text()
    scripts = re.findall(r'<script[^>]*src="([^"]*mathjax[^"]*)"', page, flags=re.I)
    assert scripts and all(not s.startswith(("http:", "https:", "//")) for s in scripts), scripts
    assert all((html_dir / "book" / s).resolve().is_file() or (html_dir / s).is_file() for s in scripts), scripts


def _numbers(path):
    """Every number in the text and markdown outputs of an executed notebook, cell by cell, except durations."""
    nb = nbformat.read(str(path), as_version=4)
    out = []
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            text = o.get("text", "") + o.get("data", {}).get("text/markdown", "") + o.get("data", {}).get("text/plain", "")
            text = re.sub(r"[-+]?\d+(\.\d+)?\s*(s|seconds|min|minutes)\b", "", text)
            out += [float(x) for x in re.findall(r"[-+]?\d+\.\d+|[-+]?\d+", text)]
    return out


def _restore(backup, folder):
    """Make `folder` hold exactly the files of `backup` again, copying only what differs."""
    kept = set()
    for dirpath, _, files in os.walk(backup):
        for f in files:
            src = os.path.join(dirpath, f)
            dst = os.path.join(folder, os.path.relpath(src, backup))
            kept.add(os.path.realpath(dst))
            if not os.path.isfile(dst) or reproduce.file_hash(src) != reproduce.file_hash(dst):
                os.makedirs(os.path.dirname(dst), exist_ok=True)
                shutil.copy2(src, dst)
    for dirpath, _, files in os.walk(folder):
        for f in files:
            if os.path.realpath(os.path.join(dirpath, f)) not in kept:
                os.remove(os.path.join(dirpath, f))


@pytest.mark.slow
def test_the_committed_chapter_is_what_the_command_produces(tmp_path):
    """Re-execute the quickest committed chapter whose recorded inputs are all here (one that reads runs' results
    where any does), on its results folder, restored afterwards: it prints the committed numbers (its runs are
    re-read, not retrained, so they match to rounding).
    Where the recorded inputs include checkpoints, which are not committed, a clean clone cannot re-read them
    and re-executing would retrain; where a file it read has changed since, other numbers are expected. Those
    chapters are left out, and the test says so when none is left."""
    executed = [os.path.join(ROOT, "book", "chapters", os.path.basename(nb)) for nb in site.chapter_notebooks(ROOT)]
    committed = [p for p in executed if reproduce.recorded(p) and "pending" not in reproduce.recorded(p)]
    if not committed:  # a page waiting for a run shows no number to compare
        pytest.skip("no executed chapter in book/chapters/: `cktat reproduce` writes them")
    meta = {p: json.load(open(p))["metadata"]["cktat"] for p in committed}

    def folder(p):
        params = meta[p]["fingerprint"]["parameters"]
        return params.get("results") or os.path.join(ROOT, "results", params["profile"])

    source = {p: os.path.join(ROOT, "notebooks", os.path.basename(p)) for p in committed}
    current = [p for p in committed if meta[p]["fingerprint"]["notebook"] == reproduce.notebook_hash(source[p])]
    def has_data(p):  # the real-image chapters need CIFAR-10, which a clone does not hold
        params = meta[p]["fingerprint"]["parameters"]
        try:
            reproduce.check_data(params["profile"], params["overrides"], [os.path.basename(p)])
        except CktatError:
            return False
        return True

    def same_inputs(p):  # every file it read is here, as it was, and none it looked for has appeared (a rebuilt
        def same(f, digest):  # results folder is another input)
            if digest is reproduce.ABSENT:
                return not os.path.exists(f)
            return os.path.isfile(f) and reproduce.file_hash(f) == digest
        return all(same(os.path.join(folder(p), rel), digest) for rel, digest in meta[p]["fingerprint"]["results"].items())

    usable = [p for p in current if has_data(p) and same_inputs(p)]
    if not usable:
        pytest.skip(f"of the {len(current)} executed chapters whose notebook is unchanged, none read only committed "
                    "files that are here unchanged (checkpoints are not committed) with its data here")
    reading_runs = [p for p in usable if any(rel.startswith("runs" + os.sep) or rel.startswith("runs/")
                                             for rel in meta[p]["fingerprint"]["results"])]
    quickest = min(reading_runs or usable, key=lambda p: meta[p].get("seconds", 0))  # one that reads runs, if any
    params = meta[quickest]["fingerprint"]["parameters"]
    results = folder(quickest)  # in place: runs record absolute paths, so a copy elsewhere is another run
    backup = tmp_path / "backup"
    shutil.copytree(results, backup)
    try:
        [again] = reproduce.execute_chapters(params["profile"], params["overrides"], results=params.get("results"),
                                             only=[os.path.basename(quickest)[:2]], out_dir=str(tmp_path / "chapters"),
                                             root=ROOT)
    finally:  # leave the results folder as it was (re-executing rewrites wall times)
        _restore(backup, results)
    numbers = _numbers(quickest)
    assert len(numbers) > 10
    assert _numbers(again) == pytest.approx(numbers, rel=1e-6, abs=1e-9)


# --- how the pages read ---------------------------------------------------------------------------------

# What a visible code cell may do: show the code that teaches (a loss, a declaration, a training or evaluation
# call) or draw a figure. Every other code cell only loads, reshapes or formats, and is folded (`hide-input`).
TEACHING = ("report.source(", "report.declaration(", "ch.seeds(", "ch.variant(", "ch.run(", "ch.compare(",
            "book_runs.", "baselines.trained(", "baselines.masked_teacher(", "evaluate_checkpoint(", "evaluate(",
            "fig = figures.", "figures.",
            "sweep_explorer(", "register(Method(", "fit(", "evaluate_suite(")


def _code_cells(path):
    nb = nbformat.read(path, as_version=4)
    return [c for c in nb.cells if c.cell_type == "code"]


@pytest.mark.parametrize("path", site.chapter_notebooks(ROOT), ids=os.path.basename)
def test_plumbing_is_folded_and_a_finding_opens_every_chapter(path):
    nb = nbformat.read(path, as_version=4)
    title = nb.cells[0].source
    assert "```{glue:md} findings\n:format: myst\n```" in title, \
        "the title cell opens with the chapter's findings, pasted as blocks (its paragraphs kept apart)"
    glued = [c for c in nb.cells if c.cell_type == "code" and 'glue("findings"' in c.source]
    assert len(glued) == 1, "exactly one cell computes the findings"
    for cell in _code_cells(path):
        tags = cell.metadata.get("tags", [])
        if {"hide-input", "remove-cell", "remove-input", "parameters"} & set(tags):
            continue
        assert any(t in cell.source for t in TEACHING), f"visible code cell that only plumbs:\n{cell.source[:300]}"
    first = next(c for c in _code_cells(path) if not {"parameters", "remove-cell"} & set(c.metadata.get("tags", [])))
    assert "hide-input" in first.metadata.get("tags", []), "the setup cell after the parameters is folded"


def test_a_line_per_run_with_the_runs_and_time_left(tiny_book):
    """A chapter whose last execution read two runs, one of them missing now: the command estimates one run left
    from the median time of the finished runs, and prints a line for each run the kernel reports training."""
    root, lib, results, run, lines = tiny_book
    (results / "runs" / "done").mkdir(parents=True)
    (results / "runs" / "done" / "result.json").write_text('{"wall_seconds": 600}')
    body = ('import json, os, time\n'
            'log = os.environ["CKTAT_RUN_LOG"]\n'
            'run_dir = os.path.join(results, "runs", "missing")\n'
            'for event in ({"event": "start", "run": run_dir, "kind": "cktat", "epochs": 3},\n'
            '              {"event": "end", "run": run_dir, "seconds": 420.0}):\n'
            '    open(log, "a").write(json.dumps(event) + "\\n")\n'
            'time.sleep(1.5)\n'
            'print("trained")')
    _notebook(root / "notebooks" / "03_trains.ipynb", body)
    executed = root / "book" / "chapters" / "03_trains.ipynb"
    executed.parent.mkdir(parents=True, exist_ok=True)
    nb = nbformat.v4.new_notebook()
    nb.metadata["cktat"] = {"fingerprint": {"results": {"runs/done/result.json": "x", "runs/missing/result.json": "y"}}}
    nbformat.write(nb, str(executed))
    assert run(only=["03"]) == {"03_trains": "executed"}
    text = "\n".join(lines)
    assert "about 1 run left, about 10.0 min" in text  # the median of the finished runs: 600 s
    assert "runs/missing: training (cktat, 3 epochs)" in text
    assert "runs/missing: trained in 7.0 min; no more runs expected" in text


def test_cpu_chapters_without_the_data_stop_with_one_line_saying_where_to_put_it(tmp_path, monkeypatch):
    monkeypatch.setenv("CKTAT_DATA", str(tmp_path / "nothing"))
    with pytest.raises(CktatError) as err:
        reproduce.check_data("cpu", {}, ["02_cktat"])
    message = str(err.value)
    assert "\n" not in message and "02_cktat needs cifar10" in message and "cifar-10-batches-py" in message
    # a truncated file is named, never read as a smaller data set
    _fake_cifar10(tmp_path / "data", per_batch=40, test=60)
    monkeypatch.setenv("CKTAT_DATA", str(tmp_path / "data"))
    with pytest.raises(CktatError) as err:
        reproduce.check_data("cpu", {}, ["02_cktat"])
    assert "data_batch_1 holds 40 images" in str(err.value) and "first 4000" in str(err.value)
    reproduce.check_data("cpu", {"train_per_file": 40, "test_limit": 60, "val_size": 50}, ["02_cktat"])


def test_the_book_executes_chapter_01_on_the_multiview_data_and_the_tables_on_real_images():
    chapters = reproduce.chapters(None, ROOT)
    profiles = {c.name: reproduce.book_profile(c) for c in chapters}
    assert profiles.pop("01_multiview") == "smoke"
    assert set(profiles.values()) == {"cpu"}
    built = 0
    for c in chapters:  # a committed chapter is in its book profile once that profile's runs are all here
        fp = reproduce.recorded(c.executed)
        if fp is None:
            continue
        profile = fp["parameters"]["profile"]
        if profile == reproduce.book_profile(c):
            built += 1
            continue
        book_results = os.path.join(ROOT, "results", reproduce.book_profile(c))
        assert reproduce.runs_needed(c, book_results), \
            f"{c.name} is executed in {profile}, yet every run it reads is finished in {reproduce.book_profile(c)}"
    assert built >= 2, "chapter 01 and at least one table chapter are executed in their book profiles"


PENDING = ('import os\n'
           'class RunPending(Exception):  # the name `cktat_book.chapter.RunPending` carries\n'
           '    pass\n'
           'if not os.path.isfile(os.path.join(results, "runs", "late", "result.json")):\n'
           '    if os.environ.get("CKTAT_TRAIN") == "0":  # as `Chapter.train` reads it\n'
           '        raise RunPending("runs/late is not trained in this results folder")\n'
           '    print("late run trained")\n'
           'else:\n'
           '    print("late run read")')


def test_without_training_a_chapter_waiting_for_a_run_says_so_until_the_run_lands(tiny_book):
    """`cktat reproduce --no-train`: a chapter that asks for a run the results do not hold becomes a page naming
    that run (its title kept, no output, its saved claims withdrawn), current while the run is missing, stale
    as soon as it lands or whenever training is allowed; the next chapter still executes."""
    root, lib, results, run, lines = tiny_book
    nb = nbformat.read(root / "notebooks" / "02_plain.ipynb", as_version=4)
    nb.cells[0].source = "# A late chapter\n\n```{glue:md} findings\n:format: myst\n```"
    nb.cells[-1].source = PENDING
    nbformat.write(nb, root / "notebooks" / "02_plain.ipynb")
    (results / "claims").mkdir()
    (results / "claims" / "02_plain.json").write_text('{"chapter": "02_plain", "claims": []}')
    assert run(train=False) == {"01_reads": "executed", "02_plain": "pending"}
    assert any(re.search(r"02_plain\s+waits for runs/late: its page says so", x) for x in lines), lines
    assert "1 waiting for runs" in lines[-1]
    page = nbformat.read(root / "book" / "chapters" / "02_plain.ipynb", as_version=4)
    assert [c.cell_type for c in page.cells] == ["markdown", "markdown"]
    assert page.cells[0].source == "# A late chapter" and "`runs/late`" in page.cells[1].source
    assert not (root / "book" / "chapters" / "02_plain.failed.ipynb").exists()
    assert not (results / "claims" / "02_plain.json").exists()
    assert json.loads((results / "claims" / "index.json").read_text()) == {"chapters": []}
    assert run(train=False) == {"01_reads": "reused", "02_plain": "reused"}
    assert run(train=True)["02_plain"] == "executed"  # training allowed: it trains what it waits for
    # back to waiting, then the run lands: stale without training too, and it executes
    assert run(train=False, force=True)["02_plain"] == "pending"
    (results / "runs" / "late").mkdir(parents=True)
    (results / "runs" / "late" / "result.json").write_text("{}")
    assert run(train=False) == {"01_reads": "reused", "02_plain": "executed"}
    page = nbformat.read(root / "book" / "chapters" / "02_plain.ipynb", as_version=4)
    assert "late run read" in json.dumps(page.cells[-1].outputs)


LOOKS = ('import os\n'
         'try:\n'
         '    print("late run read:", open(os.path.join(results, "runs", "late", "result.json")).read())\n'
         'except FileNotFoundError:  # as `train.read_finished` looks for a run\n'
         '    print("late run not trained yet")')


def test_a_page_showing_the_runs_landed_so_far_is_rebuilt_when_the_one_it_looked_for_lands(tiny_book):
    """A page that shows a stage's runs as they land (chapter 10's ladder while the build runs) looks for the others
    by opening them: the fingerprint records each file it did not find as absent, and the page is current until one
    of them appears, then stale, with or without training."""
    root, lib, results, run, lines = tiny_book
    nb = nbformat.read(root / "notebooks" / "02_plain.ipynb", as_version=4)
    nb.cells[-1].source = LOOKS
    nbformat.write(nb, root / "notebooks" / "02_plain.ipynb")
    executed = root / "book" / "chapters" / "02_plain.ipynb"
    assert run(train=False) == {"01_reads": "executed", "02_plain": "executed"}
    assert reproduce.recorded(str(executed))["results"] == {os.path.join("runs", "late", "result.json"): None}
    assert "not trained yet" in json.dumps(nbformat.read(executed, as_version=4).cells[-1].outputs)
    assert run(train=False) == {"01_reads": "reused", "02_plain": "reused"}
    (results / "runs" / "late").mkdir(parents=True)
    (results / "runs" / "late" / "result.json").write_text('{"accuracy": 61.6}')
    [chapter] = [c for c in reproduce.chapters(root=str(root)) if c.name == "02_plain"]
    params = reproduce.parameters("smoke", None, str(results))
    assert reproduce.stale_reasons(chapter, params, str(results), train=False) == [
        f"{os.path.join('runs', 'late', 'result.json')} appeared"]
    assert run(train=False) == {"01_reads": "reused", "02_plain": "executed"}
    assert "61.6" in json.dumps(nbformat.read(executed, as_version=4).cells[-1].outputs)
    assert run(train=False)["02_plain"] == "reused"


LANDED = ('import json, os\n'
          'path = os.path.join(results, "runs", "late", "result.json")\n'
          'if os.path.isfile(path):\n'
          '    print("late run read")\n'
          'elif os.environ.get("CKTAT_TRAIN") == "0":  # as `Chapter.landed` leaves a run out\n'
          '    with open(os.environ["CKTAT_WOULD_TRAIN"], "a") as fh:\n'
          '        fh.write("runs/late\\n")\n'
          '    print("late run not trained yet")\n'
          'else:\n'
          '    os.makedirs(os.path.dirname(path), exist_ok=True)\n'
          '    json.dump({"trained": True}, open(path, "w"))\n'
          '    print("late run trained")')


def test_with_training_a_page_built_without_it_is_stale_while_a_run_it_left_out_is_not_trained(tiny_book):
    """A page that shows a stage's runs as they land leaves out, without training, the runs it would train
    (`Chapter.landed`): the fingerprint keeps them (`would_train`), and with training allowed the page is stale
    until they are trained; a page that only looks for a run (`LOOKS`) or a checkpoint is not stale for it."""
    root, lib, results, run, lines = tiny_book
    nb = nbformat.read(root / "notebooks" / "02_plain.ipynb", as_version=4)
    nb.cells[-1].source = LANDED
    nbformat.write(nb, root / "notebooks" / "02_plain.ipynb")
    executed = root / "book" / "chapters" / "02_plain.ipynb"
    assert run(train=False)["02_plain"] == "executed"
    assert reproduce.recorded(str(executed))["would_train"] == {"runs/late": None}
    assert run(train=False)["02_plain"] == "reused"
    assert run(train=True)["02_plain"] == "executed"  # it trains what it left out
    assert "late run trained" in json.dumps(nbformat.read(executed, as_version=4).cells[-1].outputs)
    assert run(train=True)["02_plain"] == "reused" and run(train=False)["02_plain"] == "reused"
    nb.cells[-1].source = LOOKS + ('\ntry:\n    open(os.path.join(results, "runs", "gone", "student", "last.pt"))\n'
                                   'except FileNotFoundError:\n    pass')
    nbformat.write(nb, root / "notebooks" / "02_plain.ipynb")
    assert run(train=False)["02_plain"] == "executed"
    assert run(train=True)["02_plain"] == "reused"  # it only looked: executing it with training trains nothing
    (results / "runs" / "gone" / "student").mkdir(parents=True)
    (results / "runs" / "gone" / "student" / "last.pt").write_bytes(b"weights")
    assert run(train=False)["02_plain"] == "reused"  # a checkpoint that appears changes no result


LANDS = ('import os, subprocess\n'
         'path = os.path.join(results, "runs", "late", "result.json")\n'
         'try:\n'
         '    print("late run read:", open(path).read())\n'
         'except FileNotFoundError:\n'
         '    print("late run not trained yet")\n'
         '    os.makedirs(os.path.dirname(path), exist_ok=True)\n'
         '    subprocess.run(["sh", "-c", f"echo {{{{}}}} > {path}"], check=True)  # the build lands it meanwhile')


def test_a_run_that_lands_while_the_page_executes_still_makes_it_stale(tiny_book):
    """The page showed the run missing: the fingerprint says so (`ABSENT`) though the file is there when the
    execution ends, so the next call executes the page again."""
    root, lib, results, run, lines = tiny_book
    nb = nbformat.read(root / "notebooks" / "02_plain.ipynb", as_version=4)
    nb.cells[-1].source = LANDS
    nbformat.write(nb, root / "notebooks" / "02_plain.ipynb")
    executed = root / "book" / "chapters" / "02_plain.ipynb"
    assert run(train=False)["02_plain"] == "executed"
    assert reproduce.recorded(str(executed))["results"] == {os.path.join("runs", "late", "result.json"): None}
    assert run(train=False)["02_plain"] == "executed"
    assert "late run read" in json.dumps(nbformat.read(executed, as_version=4).cells[-1].outputs)
    assert run(train=False)["02_plain"] == "reused"


REWRITTEN = ('import os, subprocess, time\n'
             'path = os.path.join(results, "input.json")\n'
             'text = open(path).read()\n'
             'print("x =", text)\n'
             'if "21" in text:  # the build rewrites it once, meanwhile\n'
             '    time.sleep(0.01)\n'
             '    subprocess.run(["sh", "-c", f"echo \'{{\\"x\\": 22}}\' > {path}"], check=True)')


def test_a_file_rewritten_after_the_page_read_it_makes_it_stale(tiny_book):
    """The page showed the file as it was when read; the fingerprint records that it changed meanwhile (`CHANGED`),
    not the new content's hash, so the next call executes the page again, and then it is current."""
    root, lib, results, run, lines = tiny_book
    nb = nbformat.read(root / "notebooks" / "02_plain.ipynb", as_version=4)
    nb.cells[-1].source = REWRITTEN
    nbformat.write(nb, root / "notebooks" / "02_plain.ipynb")
    executed = root / "book" / "chapters" / "02_plain.ipynb"
    assert run(train=False, only=["02"])["02_plain"] == "executed"
    assert reproduce.recorded(str(executed))["results"] == {"input.json": reproduce.CHANGED}
    assert run(train=False, only=["02"])["02_plain"] == "executed"
    assert "22" in json.dumps(nbformat.read(executed, as_version=4).cells[-1].outputs)
    assert run(train=False, only=["02"])["02_plain"] == "reused"


def test_the_book_without_a_profiles_data_keeps_its_committed_pages(tiny_book, monkeypatch, tmp_path):
    """The README's first command on a clone without CIFAR-10: the stale real-image chapters keep their committed
    pages (one line each says why) and the rest executes; asking for that profile stops with the data error."""
    root, lib, results, run, lines = tiny_book
    monkeypatch.setattr(reproduce, "BOOK_PROFILES", {"01_reads": "smoke"})
    monkeypatch.setattr(reproduce, "BOOK_DEFAULT", "cpu")
    monkeypatch.setenv("CKTAT_DATA", str(tmp_path / "nothing"))
    monkeypatch.chdir(tmp_path)
    out = []
    done = reproduce.reproduce(None, {}, results=str(results), root=str(root), echo=lambda *a, **k: out.append(a[0]))
    assert {c.name: how for c, how in done} == {"01_reads": "executed", "02_plain": "kept"}
    assert any(re.search(r"02_plain\s+\[cpu\]\s+stale \(not executed yet\), not executed: its data is not here$", x)
               for x in out), out
    assert "1 stale but kept" in out[-2] and "cifar-10-batches-py" in out[-1]
    assert not (root / "book" / "chapters" / "02_plain.ipynb").exists()
    with pytest.raises(CktatError, match="02_plain needs cifar10"):
        reproduce.reproduce("cpu", {}, only=["02"], results=str(results), root=str(root), echo=lambda *a, **k: None)


def test_a_clean_clone_finds_every_committed_chapter_current():
    """The README's first command builds the site from the committed chapters without executing one: every
    chapter's executed copy in book/chapters/ records the notebook, library, paper numbers and parameters of
    this commit, and every result file it read is committed unchanged (checkpoints aside, `stale_reasons`); a
    page waiting for a run (`cktat reproduce --no-train`) waits for one that is still not committed.
    A change to the library or a result after the last `cktat reproduce` fails here until the chapters are
    re-executed."""
    stale = {}
    for chapter in reproduce.chapters(root=ROOT):
        profile = reproduce.book_profile(chapter)
        params = reproduce.parameters(profile, None, None)
        why = reproduce.stale_reasons(chapter, params, os.path.join(ROOT, "results", profile), train=False)
        if why:
            stale[chapter.name] = why[:3]
    assert not stale, f"stale committed chapters (run `cktat reproduce`): {stale}"


def test_every_checkpoint_a_committed_run_learns_from_may_be_committed():
    """A run that learns from another's weights (a teacher, an initialisation) needs them in a clone that trains it,
    and a clone that lacks them trains that run again (`train.restore_checkpoint`): a different teacher, and the
    shared numbers drift. `.gitignore` admits every checkpoint that a committed result reads, and those of the
    teachers chapter 06's pair and the shared runs read (clean and robust) are committed. (Older runs' teachers, on
    the width-8 and width-16 students, are not here: their readers are finished, so no clone needs them.)"""
    tracked = set(subprocess.run(["git", "ls-files", "results"], cwd=ROOT, capture_output=True,
                                 text=True).stdout.split())
    read = set()
    for path in sorted(p for p in tracked if p.endswith("/result.json")):
        with open(os.path.join(ROOT, path)) as fh:
            settings = json.load(fh).get("settings", {})
        for key in ("teacher_checkpoint", "init_checkpoint"):
            if settings.get(key):
                read.add(os.path.normpath(os.path.join(os.path.dirname(path), settings[key])).replace(os.sep, "/"))
    assert {"results/cpu/runs/teacher_clean/teacher/last.pt", "results/cpu/runs/pgdat/student/last.pt"} <= read
    ignored = subprocess.run(["git", "check-ignore", "--no-index", *sorted(read)], cwd=ROOT, capture_output=True,
                             text=True).stdout.split()
    assert not ignored, f"checkpoints a committed run reads that .gitignore keeps out: {ignored}"
    for path in ("results/cpu/runs/teacher_clean/teacher/last.pt", "results/cpu/runs/pgdat/student/last.pt",
                 "results/cpu/runs/pgdat_width4/student/last.pt"):
        assert path in tracked, path


def test_no_committed_chapter_echoes_a_bare_value():
    """A cell whose last line returns a value (a path, a number) prints it as `Out[...]` on the page, plumbing a
    reader has no use for: every execute_result of a committed chapter carries a rich view (a widget, a figure).
    An empty Markdown shows as its repr, `<IPython.core.display.Markdown object>`: none is displayed."""
    echoed = []
    for path in site.chapter_notebooks(ROOT):
        executed = os.path.join(ROOT, "book", "chapters", os.path.basename(path))
        if not os.path.isfile(executed):
            continue
        for i, cell in enumerate(json.load(open(executed))["cells"]):
            echoed += [f"{os.path.basename(executed)} cell {i}: {''.join(o['data']['text/plain'])[:60]}"
                       for o in cell.get("outputs", []) if o.get("output_type") == "execute_result"
                       and set(o.get("data", {})) == {"text/plain"}]
            echoed += [f"{os.path.basename(executed)} cell {i}: an empty Markdown" for o in cell.get("outputs", [])
                       if "text/markdown" in o.get("data", {}) and not "".join(o["data"]["text/markdown"]).strip()]
    assert not echoed, echoed


def test_a_waiting_page_names_a_stage_that_exists_for_a_chapter_that_exists():
    chapters = {os.path.basename(p)[:-6] for p in glob.glob(os.path.join(ROOT, "notebooks", "*.ipynb"))}
    assert set(reproduce.CHAPTER_STAGES) <= chapters
    assert set(reproduce.CHAPTER_STAGES.values()) <= set(book_runs.STAGES)
