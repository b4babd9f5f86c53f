#!/usr/bin/env bash
# Set up a development environment from a clean clone: .venv with h5vc and its test tools,
# Debian's hdf5-tools (h5dump, HDF5 1.10) for the readability tests, and git.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
log=$(mktemp)
pip_install() {  # quiet unless it fails
  .venv/bin/python -m pip install --quiet "$@" >>"$log" 2>&1 \
    || { cat "$log" >&2; echo "setup: pip install $* failed" >&2; exit 1; }
}
.venv/bin/python -m pip install --quiet --upgrade pip >/dev/null 2>&1 || true
# the core, then the built-in importers: separate packages, registered through entry points
# exactly as a third-party plugin would be
pip_install -e ".[test]"
for plugin in plugins/*/; do
  pip_install -e "$plugin"
done
rm -f "$log"
.venv/bin/python -c "import h5vc, h5py, typer, xxhash, git, hypothesis, pluggy, pre_commit, s3fs, h5vc_npy, h5vc_images, h5vc_csv" \
  || { echo "setup: installing Python packages failed" >&2; exit 1; }

# Debian packages: hdf5-tools (h5dump) for the readability tests, git for the git integration,
# strace for the tests that kill an operation at each of its writes (tests/fault/test_sweep.py)
missing=""
command -v strace >/dev/null 2>&1 || missing="$missing strace"
command -v h5dump >/dev/null 2>&1 || missing="$missing hdf5-tools"
command -v git >/dev/null 2>&1 || missing="$missing git"
if [ -n "$missing" ]; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && SUDO="sudo"
  if command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing Debian's$missing" >&2
    $SUDO apt-get update -qq >/dev/null || true
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
  else
    echo "setup: install your system's$missing package(s)" >&2
  fi
fi
