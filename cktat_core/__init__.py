"""cktat_core: train and evaluate adversarially robust networks with CKTAT and the methods it unifies.

The library behind the CKTAT book (ARCHITECTURE.md draws its layers); the book's page machinery lives in
`cktat_book`, which this package never imports. Two calls cover most uses:

    from cktat_core import fit, evaluate_suite
    res = fit(MyNet(), (x_train, y_train), method="cktat", out="runs/mine")   # any method, your network
    table = evaluate_suite(res.model, (x_test, y_test))                        # the Table 4 attack suite

torchvision is never imported here; it is only used to download CIFAR on request.
"""

__version__ = "0.1.0"

# The public names: where each lives and what it is, one line each (`help(cktat_core)` lists them).
PUBLIC = {
    "fit": ("fitting", "train any method of the library on your network and data; resumable, checkpointed"),
    "evaluate_suite": ("fitting", "your network under the Table 4 attack suite, with the sanity checks"),
    "teacher_summary": ("fitting", "what a fit's clean teacher hands its student: accuracy, softened-label mass"),
    "FitResult": ("fitting", "what `fit` returns: the trained network, its teacher, history, test accuracy"),
    "METHODS": ("methods", "every method as a label design, by name (`cktat methods` prints Table 2)"),
    "Config": ("config", "every setting of a run; the paper's by default"),
    "from_profile": ("config", "a named profile's Config: paper, cpu or smoke"),
    "run": ("train", "one run of the two-phase trainer on a network and dataset of the library"),
    "evaluate_checkpoint": ("eval_checkpoint", "`cktat eval` as a call: a saved checkpoint under the suite"),
    "build_model": ("models", "a network of the papers by name: resnet18, wrn34_10, small_cnn, ..."),
    "pgd": ("attacks", "the PGD attack"),
}
__all__ = list(PUBLIC)
__doc__ += "\nPublic names:\n" + "\n".join(f"    {k:<20} {line}" for k, (_, line) in PUBLIC.items()) + "\n"


def __getattr__(name: str):
    """The public names, imported on first use: `import cktat_core` stays light (no torch) for the command line."""
    if name not in PUBLIC:
        raise AttributeError(f"module 'cktat_core' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f".{PUBLIC[name][0]}", __name__), name)
