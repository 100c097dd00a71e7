#!/usr/bin/env bash
# Build benchmarks/.venv-skada: the separate environment in which benchmarks/skada_compare.py runs
# transferkit and SKADA 0.6 side by side. SKADA is never a dependency of transferkit itself.
#
#   bash benchmarks/setup_skada_env.sh          (from the repository root; PYTHON=python3.11 to choose)
#
# torch goes in first, pinned, and every later install runs under a constraint that holds it at
# that version, so neither SKADA nor skorch can make pip resolve another torch build.
set -euo pipefail

TORCH_VERSION=2.13.0
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/benchmarks/.venv-skada"
PY="${PYTHON:-python3}"

cd "$ROOT"
"$PY" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip)
CONSTRAINT="$(mktemp)"
trap 'rm -f "$CONSTRAINT"' EXIT
echo "torch==$TORCH_VERSION" >"$CONSTRAINT"

"${PIP[@]}" install --quiet "torch==$TORCH_VERSION"
"${PIP[@]}" install --quiet -c "$CONSTRAINT" -r benchmarks/requirements-skada.txt
# transferkit from this checkout, editable; its dependencies other than torch are already there
# or come under the same constraint.
"${PIP[@]}" install --quiet -c "$CONSTRAINT" -e .

got="$("$VENV/bin/python" -c 'import torch; print(torch.__version__)')"
case "$got" in
  "$TORCH_VERSION"|"$TORCH_VERSION"+*) ;;
  *) echo "error: benchmarks/.venv-skada has torch $got, expected $TORCH_VERSION" >&2; exit 1 ;;
esac
"$VENV/bin/python" -c 'import skada, skorch, transferkit; print("torch", __import__("torch").__version__, "| skada", skada.__version__, "| skorch", skorch.__version__, "| transferkit", transferkit.__version__)'
