"""cktat_core: train and evaluate adversarially robust networks with CKTAT and the methods it unifies.

The library behind the CKTAT book (ARCHITECTURE.md draws its layers); the book's page machinery lives in
`cktat_book`, which this package never imports. Two calls cover most uses:

    from cktat_core import fit, evaluate_suite
    res = fit(MyNet(), (x_train, y_train), method="cktat", out="runs/mine")   # any method, your network
    table = evaluate_suite(res.model, (x_test, y_test))                        # the Table 4 attack suite

torchvision is never imported here; it is only used to download CIFAR on request.
"""

__version__ = "0.1.0"

# The public names, each a one-line summary; the modules below hold the rest.
__all__ = [
    "fit",              # train any method on your network and data: resumable, checkpointed (`fitting.fit`)
    "evaluate_suite",   # your network under the Table 4 attack suite, with sanity checks (`fitting.evaluate_suite`)
    "FitResult",        # what `fit` returns: the trained network, its teacher, history and test accuracy
    "METHODS",          # every method as a label design, by name (`methods.METHODS`; `cktat methods` prints Table 2)
    "Config",           # every setting of a run, the paper's by default (`config.Config`)
    "from_profile",     # a named profile's Config: "paper", "cpu", "smoke" (`config.from_profile`)
    "run",              # one run of the book's two-phase trainer on a library network and dataset (`train.run`)
    "evaluate_checkpoint",  # `cktat eval` as a call: a saved checkpoint under the suite (`eval_checkpoint`)
    "build_model",      # a network of the papers by name: resnet18, wrn34_10, small_cnn, ... (`models.build_model`)
    "pgd",              # the PGD attack (`attacks.pgd`)
]


def __getattr__(name: str):
    """The public names, imported on first use: `import cktat_core` stays light (no torch) for the command line."""
    homes = {"fit": "fitting", "evaluate_suite": "fitting", "FitResult": "fitting", "METHODS": "methods", "Config": "config",
             "from_profile": "config", "run": "train", "evaluate_checkpoint": "eval_checkpoint",
             "build_model": "models", "pgd": "attacks"}
    if name not in homes:
        raise AttributeError(f"module 'cktat_core' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f".{homes[name]}", __name__), name)
