#!/bin/sh
# Build driftline's wheel (the Rust extension with maturin, release profile) into $1. The Dockerfile's build stage
# runs this, and so does tests/deploy/test_dockerfile.py, so the image and the test build the same way.
# Expects python, pip and cargo on PATH and the build inputs (pyproject.toml, Cargo.*, rust/, python/) in the
# working directory. CARGO_TARGET_DIR, when set, keeps the compiled crates between builds.
set -eu
out=${1:?usage: build-wheel.sh OUT_DIR}
python -m pip install --no-cache-dir --disable-pip-version-check "maturin>=1.7,<2"
# --locked: the image builds the dependency versions Cargo.lock names, never newer ones.
python -m maturin build --release --locked --out "$out"
