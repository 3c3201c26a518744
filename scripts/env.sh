# Sourced by ./run and ./test: a virtualenv in .venv with the project installed (pip's own cache
# keeps repeat installs fast on the same machine).
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
# shellcheck disable=SC1091
source .venv/bin/activate
stamp=".venv/.installed-$(sha1sum pyproject.toml | cut -c1-12)"
if [ ! -f "$stamp" ]; then
  python -m pip install -q --upgrade pip >/dev/null
  python -m pip install -q -e ".[dev,distributed]"
  touch "$stamp"
fi
