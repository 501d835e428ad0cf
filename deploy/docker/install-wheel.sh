#!/bin/sh
# Install the one driftline wheel in $1 with the extras $2 (default: postgresql) into the python on PATH. The
# Dockerfile's run stage runs this, and so does tests/deploy/test_dockerfile.py.
set -eu
dir=${1:?usage: install-wheel.sh WHEEL_DIR [EXTRAS]}
extras=${2:-postgresql}
set -- "$dir"/driftline-*.whl
if [ "$#" -ne 1 ] || [ ! -f "$1" ]; then
    echo "install-wheel.sh: expected exactly one driftline wheel in $dir, found: $*" >&2
    exit 1
fi
python -m pip install --no-cache-dir --disable-pip-version-check "driftline[$extras] @ file://$(realpath "$1")"
