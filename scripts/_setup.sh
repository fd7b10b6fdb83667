# Sourced by scripts/serve and scripts/test: find Python >= 3.12, make .venv, install.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
export PIP_DISABLE_PIP_VERSION_CHECK=1
find_python() {
  local c
  for c in "${PYTHON:-}" python3.12 python3.13 python3 \
           "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.12*/bin/python3 \
           "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.13*/bin/python3 /usr/bin/python3.12 /usr/bin/python3.13; do
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
[ -n "${ANTEROOM_SETUP_VENV_ONLY:-}" ] && return 0
# Install exactly what was tested: the lock for the extra (requirements.txt for the runtime,
# requirements-dev.txt for tests, requirements-bench.txt for manage.py loadtest), every file
# hash-checked, then Anteroom itself without resolving anything. scripts/lock re-pins on purpose.
EXTRA=${ANTEROOM_EXTRA:-}
LOCK="requirements${EXTRA:+-$EXTRA}.txt"
[ -f "$LOCK" ] || { echo "FATAL: no lock file $LOCK for ANTEROOM_EXTRA='$EXTRA' (use '', dev or bench)" >&2; exit 1; }
if [ "$(sed -n 's/^# pyproject-digest: //p' "$LOCK")" != "$("$VENV/bin/python" scripts/_lockdigest.py)" ]; then
  echo "FATAL: $LOCK is out of date with the dependencies in pyproject.toml." >&2
  echo "       Run scripts/lock, then scripts/test, and commit pyproject.toml with requirements*.txt." >&2
  exit 1
fi
echo "== installing Anteroom${EXTRA:+ [$EXTRA]} into $VENV from $LOCK"
if ! { "$VENV/bin/python" -m pip install -q --require-hashes -r "$LOCK" \
       && "$VENV/bin/python" -m pip install -q --no-deps -e . \
       && "$VENV/bin/python" -m pip check; } >"$ROOT/.pip-install.log" 2>&1; then
  cat "$ROOT/.pip-install.log"; echo "FATAL: installing from $LOCK failed (above)" >&2; exit 1
fi
PATH="$VENV/bin:$PATH"
