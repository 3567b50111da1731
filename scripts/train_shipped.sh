#!/usr/bin/env bash
# Train the shipped weights of every learned method on one machine within a time budget.
#
#   scripts/train_shipped.sh RUN_DIR MINUTES [NUM_TRAIN]
#
# The CT training pairs (dival ellipses, NUM_TRAIN images, default 8000) are generated
# once into RUN_DIR/cache and memory-mapped by the three CT trainings, which share the
# GPU with the MRI training. Each run fits its learning-rate schedule into the budget
# (odl-learned train --max-minutes) and can be continued with --resume. The weights
# end up in RUN_DIR/<task>_<method>/<task>_<method>.{pt,json}; copy them to
# odl_learned/weights/ to ship them.
set -u
RUN_DIR=${1:-runs/shipped}
MINUTES=${2:-30}
NUM_TRAIN=${3:-8000}
mkdir -p "$RUN_DIR"
start=$(date +%s)
train() {  # train METHOD TASK MINUTES EXTRA...
  local method=$1 task=$2 minutes=$3; shift 3
  python -m odl_learned.cli.main train "$method" --task "$task" --steps 100000 --out "$RUN_DIR/${task}_${method//-/_}" \
    --max-minutes "$minutes" --resume --quiet "$@" > "$RUN_DIR/${task}_${method}.log" 2>&1
  echo "$method: exit $? $(tail -n 1 "$RUN_DIR/${task}_${method}.log")"
}
train varnet mri "$MINUTES" --num-workers 2 &
python -c "from odl_learned.data import pairs; pairs.ct_ellipse_pairs('train', $NUM_TRAIN, cache_dir='$RUN_DIR/cache')"
elapsed=$(( $(date +%s) - start ))
left=$(python -c "print(max(1.0, $MINUTES - $elapsed / 60))")
echo "CT training data: $NUM_TRAIN pairs in ${elapsed} s; CT budget $left min"
for method in lpd fbp-unet lgd; do
  train "$method" ct "$left" --num-train "$NUM_TRAIN" --cache-dir "$RUN_DIR/cache" --num-workers 3 &
done
wait
