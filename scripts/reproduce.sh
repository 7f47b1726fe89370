#!/usr/bin/env bash
# The main command: set up .venv if needed, re-execute the chapters that are stale in a profile (default:
# smoke, minutes on a CPU, on the embedded multi-view dataset) and build the site into _build/html.
# A chapter whose executed copy is current is reused; runs resume where they stopped.
#   bash scripts/reproduce.sh [smoke|paper] [--chapters 01,05] [--force] [--results DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/cktat reproduce --profile "${1:-smoke}" "${@:2}"
