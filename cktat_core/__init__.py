"""cktat_core: the library behind the CKTAT book (ARCHITECTURE.md draws its layers).

Modules: `models` (networks), `data` (CIFAR and the multi-view dataset as tensors), `attacks` (PGD, FGSM, ...),
`losses` (every method's loss), `methods` (each method as a label design), `config`, `checkpoint`, `train` (the
two-phase trainer), `evaluate` (natural and robust accuracy, protocols), `checks` (sanity checks, torch-free),
`eval_checkpoint` (`cktat eval`), `compare` (methods under one budget), `chapter` (what a notebook calls),
`attribution` (Captum maps, knowledge points), `verdicts` and `report` (what a page says and shows), `reproduce` and `book` (the site), `runtime`, `device_data`,
`distributed` and `bench` (devices, precision, torchrun, throughput), `cli` (the `cktat` command).
torchvision is never imported here; it is only used to download CIFAR on request.
"""

__version__ = "0.1.0"
