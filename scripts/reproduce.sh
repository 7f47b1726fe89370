#!/usr/bin/env bash
# Set up .venv if needed, run every chapter of the book in a profile (default: smoke, minutes on a CPU,
# on the embedded multi-view dataset) and build the site into _build/html. Runs resume where they stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/cktat book --profile "${1:-smoke}" "${@:2}"
