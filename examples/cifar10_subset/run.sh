#!/usr/bin/env bash
# The smoke profile on real data: a clean teacher, then a CKTAT student, and PGD-AT with the same budget, on
# the CIFAR-10 subset (5,085 training / 517 test images in the official format), with the 242k-parameter
# small CNN. Also CKTAT at the paper's temperature tau = 5 from the same teacher.
#
#   bash examples/cifar10_subset/run.sh          # about 25 minutes on two CPU cores; resumes if interrupted
#
# Environment: DATA_DIR (default ../shared/data, the folder holding cifar-10-batches-py), OUT (default
# examples/cifar10_subset/results), PY (default .venv/bin/python). Writes OUT/summary.json (cktat compare),
# OUT/cktat_tau5/result.json, and examples/cifar10_subset/RESULTS.md generated from them by report.py.
set -euo pipefail
cd "$(dirname "$0")/../.."
DATA_DIR=${DATA_DIR:-../shared/data}
OUT=${OUT:-examples/cifar10_subset/results}
PY=${PY:-.venv/bin/python}
SETTINGS="dataset=cifar10 data_dir=$DATA_DIR width=32 teacher_epochs=25 epochs=8 val_size=500 progress=false"

$PY -m cktat_core compare --methods pgdat,cktat --profile smoke --out "$OUT" --set $SETTINGS
$PY -m cktat_core train --method cktat --profile smoke --out "$OUT/cktat_tau5" \
    --teacher "$OUT/teacher_clean/teacher/last.pt" --set $SETTINGS tau=5
$PY examples/cifar10_subset/report.py --results "$OUT" --out examples/cifar10_subset/RESULTS.md
