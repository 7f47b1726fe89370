#!/usr/bin/env bash
# A worked example of `cktat eval` on real data: a standard (not robust) CIFAR ResNet-18, trained with plain
# cross-entropy on the real-image chapters' CIFAR-10 images (the first 4,000 of each training batch), then attacked. Clean accuracy is that of a small,
# short run; robust accuracy under PGD-20 at eps 8/255 should be near zero.
#
#   bash examples/standard_resnet18/run.sh     # about 30 minutes on two CPU cores, 7 of them AutoAttack
#
# Environment: DATA_DIR (default data: the folder holding cifar-10-batches-py), RUN_DIR (default runs/example_standard_resnet18),
# EPOCHS (default 12), PY (default .venv/bin/python), RUN_PREFIX (a command put before every Python
# call, e.g. "flock /tmp/lock" to keep one torch process at a time). Training resumes where it stopped.
# Writes examples/standard_resnet18/results/ (JSON from `cktat eval`) and
# examples/standard_resnet18/RESULTS.md (generated from that JSON by examples/standard_resnet18/report.py).
set -euo pipefail
cd "$(dirname "$0")/../.."
DATA_DIR=${DATA_DIR:-data}
RUN_DIR=${RUN_DIR:-runs/example_standard_resnet18}
EPOCHS=${EPOCHS:-12}
PY=${PY:-.venv/bin/python}
RUN_PREFIX=${RUN_PREFIX:-}
OUT=examples/standard_resnet18/results

# 1. Train: the library's `clean` method (cross-entropy), paper profile (SGD 0.1, momentum 0.9, wd 5e-4,
#    batch 128, crop+flip, lr x0.1 at 100/110 and 105/110 of the epochs), 500 training images held out.
$RUN_PREFIX $PY -m cktat_core train --method clean --profile paper --out "$RUN_DIR" \
    --set dataset=cifar10 data_dir="$DATA_DIR" train_per_file=4000 test_limit=5000 epochs="$EPOCHS" val_size=500 \
    eval_steps=1 progress=false

# 2. Export the last epoch as a plain state_dict, the form checkpoints from other codes come in.
$RUN_PREFIX $PY -c "import sys, torch; from cktat_core.checkpoint import load; \
torch.save(load(sys.argv[1])['model'], sys.argv[2])" "$RUN_DIR/student/last.pt" "$RUN_DIR/resnet18_plain.pt"

# 3. Evaluate the plain state_dict: the whole test subset with natural, FGSM and PGD-20 ...
$RUN_PREFIX $PY -m cktat_core eval --checkpoint "$RUN_DIR/resnet18_plain.pt" --model resnet18 \
    --dataset cifar10 --data-dir "$DATA_DIR" --limit 5000 --attacks natural,fgsm,pgd20 --out "$OUT/test_all" --no-progress

# 4. ... and the first 100 test images with the whole Table 4 row and an eps sweep.
$RUN_PREFIX $PY -m cktat_core eval --checkpoint "$RUN_DIR/resnet18_plain.pt" --model resnet18 \
    --dataset cifar10 --data-dir "$DATA_DIR" --attacks all --limit 100 \
    --eps-sweep 0.5/255,1/255,2/255,8/255 --out "$OUT/first_100" --no-progress

# 5. The book page, generated from the JSON above (no figure is typed by hand).
$PY examples/standard_resnet18/report.py --run-dir "$RUN_DIR" --results "$OUT" --out examples/standard_resnet18/RESULTS.md
