# Sourced by the scripts: make ./.venv (once) and install afterwork with the given extras.
# Usage: . scripts/_venv.sh "test,postgres"
set -euo pipefail
extras="${1:-test}"
python="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    echo "afterwork: creating .venv with $($python --version)" >&2
    "$python" -m venv .venv
    .venv/bin/python -m pip install --quiet --upgrade pip
fi
stamp=".venv/.installed-$(echo "$extras" | tr ',' '-')"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    echo "afterwork: installing afterwork[$extras] into .venv" >&2
    .venv/bin/python -m pip install --quiet -e ".[$extras]"
    touch "$stamp"
fi
