#!/usr/bin/env bash
# Create or update the two venvs the deployment checks (tests/deploy) need, from
# requirements-deploy.txt:
#   .venv-checkov  checkov (it pins bc-python-hcl2, which clashes with python-hcl2)
#   .venv-hcl      python-hcl2, PyYAML, pytest — runs the suite, which calls
#                  .venv-checkov/bin/checkov as a separate program
#
# Idempotent and fast, like scripts/python-env.sh: a stamp file inside each venv
# holds the sha256 of that venv's requirement lines (plus the interpreter
# version); when it matches, nothing is installed.
#
# Env:
#   PYTHON            interpreter used to create the venvs (default: python3.11,
#                     falling back to python3)
#   DEPLOY_VENV_ROOT  where the venvs live (default: the repo root)
set -euo pipefail

_dce_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_dce_req="${_dce_root}/requirements-deploy.txt"
_dce_venv_root="${DEPLOY_VENV_ROOT:-${_dce_root}}"

if [[ -z "${PYTHON:-}" ]]; then
  if command -v python3.11 >/dev/null 2>&1; then PYTHON=python3.11; else PYTHON=python3; fi
fi

# _dce_sync NAME: install the lines marked `venv=NAME` into .venv-NAME.
_dce_sync() {
  local name="$1" venv="${_dce_venv_root}/.venv-$1"
  local stamp="${venv}/.requirements-deploy.sha256"
  local lines
  lines="$(grep -E "#[[:space:]]*venv=${name}([[:space:]]|$)" "${_dce_req}" | sed 's/[[:space:]]*#.*$//')"
  if [[ -z "${lines}" ]]; then
    echo "deploy-checks-env: no requirement lines marked venv=${name} in ${_dce_req}" >&2
    return 1
  fi
  if [[ ! -x "${venv}/bin/python" ]]; then
    echo "deploy-checks-env: creating ${venv} with $(command -v "${PYTHON}") ($("${PYTHON}" --version 2>&1))"
    "${PYTHON}" -m venv "${venv}"
  fi
  local want
  want="$({ printf '%s\n' "${lines}"; "${venv}/bin/python" -c 'import sys; print(sys.version)'; } | sha256sum | cut -d' ' -f1)"
  if [[ -f "${stamp}" && "$(cat "${stamp}")" == "${want}" ]]; then
    echo "deploy-checks-env: ${venv} is up to date"
    return 0
  fi
  echo "deploy-checks-env: installing $(printf '%s' "${lines}" | tr '\n' ' ')into ${venv}"
  local tmp
  tmp="$(mktemp)"
  printf '%s\n' "${lines}" > "${tmp}"
  "${venv}/bin/python" -m pip install --disable-pip-version-check --quiet --upgrade pip
  "${venv}/bin/python" -m pip install --disable-pip-version-check --quiet -r "${tmp}"
  rm -f "${tmp}"
  printf '%s\n' "${want}" > "${stamp}"
}

_dce_sync checkov
_dce_sync hcl
echo "deploy-checks-env: done ($("${_dce_venv_root}/.venv-checkov/bin/checkov" --version 2>/dev/null | sed 's/^/checkov /'))"
