"""Every chapter notebook executes (on a tiny configuration) and the book builds with warnings as errors."""

import os
import shutil

import pytest

from cktat_core import book

TINY = {"train_limit": 256, "val_size": 128, "test_limit": 128, "teacher_epochs": 1, "epochs": 1,
        "batch_size": 64, "attack_steps": 2, "val_attack_steps": 2, "eval_steps": 2}
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow
def test_chapters_execute_and_the_book_builds(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    for name in ["_config.yml", "_toc.yml"]:
        shutil.copy(os.path.join(ROOT, name), site / name)
    shutil.copytree(os.path.join(ROOT, "book"), site / "book", ignore=shutil.ignore_patterns("chapters"))
    shutil.copytree(os.path.join(ROOT, "benchmarks", "results"), site / "benchmarks" / "results")  # included pages
    executed = book.execute_chapters("smoke", TINY, results=str(tmp_path / "results"),
                                     out_dir=str(site / "book" / "chapters"), root=ROOT)
    assert [os.path.basename(p) for p in executed] == [os.path.basename(p) for p in book.chapter_notebooks(ROOT)]
    assert len(executed) >= 2
    index = book.build(root=str(site))
    assert os.path.exists(index)
    for nb in executed:
        html = site / "_build" / "html" / "book" / "chapters" / os.path.basename(nb).replace(".ipynb", ".html")
        assert "Traceback" not in html.read_text()
    # every run a chapter asked for left its result behind
    assert (tmp_path / "results" / "runs" / "cktat" / "result.json").exists()


def test_unknown_chapter_is_a_clear_error():
    from cktat_core.errors import CktatError

    with pytest.raises(CktatError):
        book.execute_chapters("smoke", TINY, only=["99"], out_dir="/tmp/unused", root=ROOT)
