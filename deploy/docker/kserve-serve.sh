#!/bin/sh
# The KServe runtime's command (deploy/kserve/): serve what KServe's storage initializer put in /mnt/models as
# the driftline model MODEL_NAME (the InferenceService's name), with the API keys of the mounted Secret.
#
# driftline serves a repository (<repo>/<model>/<version>/model.onnx), and /mnt/models holds whatever storageUri
# pointed at, so this links it into one under $RUN_DIR (nothing is copied; /mnt/models stays read-only):
#   model.onnx | model.pt | model.pt2 at the top  -> version 1 of MODEL_NAME (config.toml, reference.parquet beside
#                                                    it are the model's)
#   numbered version folders (a driftline model) -> MODEL_NAME itself
#   <model>/<version>/model.* (a driftline repository) -> served as it is, its folders naming the models
#   anything else (another file name, a .mar archive) -> refused with a message, exit 2
# Usage: kserve-serve.sh MODEL_NAME [driftline serve flags ...]
set -eu
name=${1:?usage: kserve-serve.sh MODEL_NAME [driftline serve flags ...]}
shift
models=${MODEL_DIR:-/mnt/models}
run=${RUN_DIR:-/run/driftline}
repo=$run/repository
rm -rf "$repo"
mkdir -p "$repo"
if [ -f "$models/model.onnx" ] || [ -f "$models/model.pt" ] || [ -f "$models/model.pt2" ]; then
    mkdir -p "$repo/$name/1"
    for file in model.onnx model.pt model.pt2; do
        if [ -f "$models/$file" ]; then ln -s "$models/$file" "$repo/$name/1/$file"; fi
    done
    for file in config.toml reference.parquet; do
        if [ -f "$models/$file" ]; then ln -s "$models/$file" "$repo/$name/$file"; fi
    done
elif [ -n "$(find "$models" -mindepth 1 -maxdepth 1 -type d -name '[0-9]*' -print -quit)" ]; then
    ln -s "$models" "$repo/$name"
elif [ -n "$(find "$models" -mindepth 3 -maxdepth 3 -path '*/[0-9]*/model.*' -print -quit)" ]; then
    repo=$models
else
    # Served as it is, this would be a server with no model, never ready: say why instead.
    echo "kserve-serve.sh: nothing to serve in $models: expected model.onnx, model.pt or model.pt2 at the top," \
        "numbered version folders, or a driftline repository (<model>/<version>/model.onnx)" >&2
    exit 2
fi
python "${RENDER_CONFIG:-/opt/driftline/render_config.py}" --keys "${KEYS_DIR:-/etc/driftline/keys}" \
    ${BASE_CONFIG:+--base "$BASE_CONFIG"} "$run/config.toml"
DRIFTLINE_CONFIG=$run/config.toml
export DRIFTLINE_CONFIG
exec driftline serve "$repo" "$@"
