"""cktat_core: the library behind the CKTAT book.

Modules: `models` (networks), `data` (CIFAR and the multi-view dataset as tensors), `attacks` (PGD, FGSM, ...),
`losses` (every method's loss), `methods` (each method as a label design), `train` (the two-phase trainer),
`evaluate` (natural and robust accuracy), `checkpoint`, `config`, `cli` (the `cktat` command).
torchvision is never imported here; it is only used to download CIFAR on request.
"""

__version__ = "0.1.0"
