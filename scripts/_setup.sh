# Sourced by scripts/serve and scripts/test: find Python >= 3.12, make .venv, install.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
export PIP_DISABLE_PIP_VERSION_CHECK=1
find_python() {
  local c
  for c in "${PYTHON:-}" python3.12 python3.13 python3 \
           "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.12*/bin/python3 \
           "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.12*/bin/python3 /usr/bin/python3.12 /usr/bin/python3.13; do
    [ -n "$c" ] || continue
    command -v "$c" >/dev/null 2>&1 || [ -x "$c" ] || continue
    "$c" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null && { echo "$c"; return 0; }
  done
  return 1
}
VENV=${VENV:-$ROOT/.venv}
if ! "$VENV/bin/python" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then
  PY=$(find_python) || { echo "FATAL: Anteroom needs Python >= 3.12 (Django 6); none found" >&2; exit 1; }
  echo "== creating $VENV with $("$PY" -V)"
  rm -rf "$VENV"; "$PY" -m venv "$VENV"
fi
EXTRA=${ANTEROOM_EXTRA:-}
echo "== installing Anteroom${EXTRA:+ [$EXTRA]} into $VENV"
if ! "$VENV/bin/python" -m pip install -q -e ".${EXTRA:+[$EXTRA]}" >"$ROOT/.pip-install.log" 2>&1; then
  cat "$ROOT/.pip-install.log"; exit 1
fi
PATH="$VENV/bin:$PATH"
