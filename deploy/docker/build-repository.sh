#!/bin/sh
# One-shot job of the compose stack: simulate a rig, train, export a model repository into
# $MODELS_DIR/$MODEL_NAME. Skips the work when a repository is already there (the volume
# outlives the container), and exports into a temporary folder first so the server never
# sees a half-written repository.
set -eu

MODELS_DIR="${MODELS_DIR:-/models}"
MODEL_NAME="${MODEL_NAME:-rig}"
WORK_DIR="${WORK_DIR:-/work}"
# A small rig (4 subjects x 27 actions, the demo's 120x160 depth) that trains in minutes on
# a laptop; set SIM_ARGS to simulate more. Empty values fall back to these defaults.
SIM_ARGS="${SIM_ARGS:---subjects S01-S04 --frames 30 --depth-size 120x160 --modalities depth,lidar,mmwave,wifi}"
TRAIN_ARGS="${TRAIN_ARGS:---no-progress}"
EXPORT_ARGS="${EXPORT_ARGS:---triton --no-progress}"

target="$MODELS_DIR/$MODEL_NAME"
if [ -f "$target/manifest.json" ]; then
  echo "model repository $target exists; nothing to build (remove the volume to rebuild)"
  exit 0
fi

echo "simulating a rig into $WORK_DIR/data ($SIM_ARGS)"
# shellcheck disable=SC2086  # SIM_ARGS, TRAIN_ARGS, EXPORT_ARGS are word lists on purpose
rigserve -v simulate --out "$WORK_DIR/data" $SIM_ARGS

echo "training into $WORK_DIR/run"
# shellcheck disable=SC2086
rigserve -v train --data "$WORK_DIR/data" --out "$WORK_DIR/run" $TRAIN_ARGS

staging="$MODELS_DIR/.$MODEL_NAME.partial"
rm -rf "$staging"
echo "exporting engines into $target"
# shellcheck disable=SC2086
rigserve -v export "$WORK_DIR/run" --out "$staging" $EXPORT_ARGS
mv "$staging" "$target"
echo "model repository ready: $target"
