#!/usr/bin/env bash
# The main command: set up .venv if needed, re-execute the chapters that are stale and build the site into _build/html.
# Without a profile: the book as committed, chapter 01 on the multi-view data (smoke), the table chapters on real
# CIFAR-10 images (cpu). A chapter whose executed copy is current is reused; runs resume where they stopped.
#   bash scripts/reproduce.sh [cpu|smoke|paper] [--chapters 01,05] [--force] [--results DIR]
#   cpu: the real-image chapters only (needs cifar-10-batches-py in data/; hours on two cores, resumable)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then
  profile=$1
  shift
  exec .venv/bin/cktat reproduce --profile "$profile" "$@"
fi
exec .venv/bin/cktat reproduce "$@"
