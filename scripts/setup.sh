#!/usr/bin/env bash
# Create .venv (once) and install the project into it with everything the book and the tests need.
# torch is installed only when missing: pip's torch==2.13.0 (a CPU build on machines that carry one,
# the CUDA build elsewhere). On Colab, skip this script: `pip install -e ".[book,test]"` keeps Colab's torch.
# The install is skipped when pyproject.toml has not changed since the last one (.venv/.cktat-installed).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  .venv/bin/pip install -q --disable-pip-version-check "torch==2.13.0"
fi
stamp=$(.venv/bin/python -c "import hashlib; print(hashlib.sha256(open('pyproject.toml', 'rb').read()).hexdigest())")
if [ "$(cat .venv/.cktat-installed 2>/dev/null)" != "$stamp" ]; then
  .venv/bin/pip install -q --disable-pip-version-check -e ".[book,test]"
  .venv/bin/python -m ipykernel install --sys-prefix --name python3 >/dev/null
  echo "$stamp" > .venv/.cktat-installed
fi
