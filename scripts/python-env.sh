#!/usr/bin/env bash
# Create or update the repo-root .venv from requirements-dev.txt.
#
# Idempotent and fast: a stamp file inside .venv holds the sha256 of
# requirements-dev.txt (plus the interpreter version); when it matches,
# nothing is installed. Safe to call from other scripts (`bash
# scripts/python-env.sh`) or to source (`source scripts/python-env.sh`,
# which also puts .venv/bin first on PATH and, like any sourced script,
# leaves `set -euo pipefail` on in the calling shell).
#
# Env:
#   PYTHON        interpreter used to create the venv (default: python3.11,
#                 falling back to python3)
#   VENV_DIR      venv location (default: <repo>/.venv)
set -euo pipefail

_pyenv_repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_pyenv_req="${REQUIREMENTS:-${_pyenv_repo_root}/requirements-dev.txt}"
_pyenv_venv="${VENV_DIR:-${_pyenv_repo_root}/.venv}"
_pyenv_stamp="${_pyenv_venv}/.requirements-dev.sha256"

if [[ -z "${PYTHON:-}" ]]; then
  if command -v python3.11 >/dev/null 2>&1; then PYTHON=python3.11; else PYTHON=python3; fi
fi

_pyenv_hash() {
  { sha256sum "${_pyenv_req}" | cut -d' ' -f1
    "${_pyenv_venv}/bin/python" -c 'import sys; print(sys.version)' 2>/dev/null || true
  } | sha256sum | cut -d' ' -f1
}

if [[ ! -x "${_pyenv_venv}/bin/python" ]]; then
  echo "python-env: creating ${_pyenv_venv} with $(command -v "${PYTHON}") ($("${PYTHON}" --version 2>&1))"
  "${PYTHON}" -m venv "${_pyenv_venv}"
fi

_pyenv_want="$(_pyenv_hash)"
if [[ -f "${_pyenv_stamp}" && "$(cat "${_pyenv_stamp}")" == "${_pyenv_want}" ]]; then
  echo "python-env: ${_pyenv_venv} is up to date with requirements-dev.txt"
else
  echo "python-env: installing $(basename "${_pyenv_req}") into ${_pyenv_venv}"
  "${_pyenv_venv}/bin/python" -m pip install --disable-pip-version-check --quiet --upgrade pip
  "${_pyenv_venv}/bin/python" -m pip install --disable-pip-version-check --quiet -r "${_pyenv_req}"
  _pyenv_hash > "${_pyenv_stamp}"
  echo "python-env: done ($("${_pyenv_venv}/bin/dbt" --version 2>/dev/null | sed -n 's/.*installed: *//p' | head -1 | sed 's/^/dbt-core /'))"
fi

# When sourced, expose the venv to the caller.
if [[ "${BASH_SOURCE[0]}" != "${0}" ]]; then
  export PATH="${_pyenv_venv}/bin:${PATH}"
  export VIRTUAL_ENV="${_pyenv_venv}"
fi
