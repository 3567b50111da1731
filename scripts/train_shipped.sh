#!/usr/bin/env bash
# Train the shipped weights of the learned methods on one machine within a time budget.
#
#   scripts/train_shipped.sh RUN_DIR MINUTES [NUM_TRAIN]
#
# Environment:
#   METHODS  which learned methods to train (default "varnet lpd fbp-unet lgd"; also lpg, fbp-dncnn, varnet-tv)
#   INIT=1   continue from the shipped weights in odl_learned/weights (a fresh optimiser
#            and learning-rate schedule; the exported info file keeps the earlier budget)
#   EXTRA    more options for every `odl-learned train` call, e.g. "--lr 5e-4"
#   CT_EXTRA, MRI_EXTRA  more options for the CT or MRI trainings only, e.g. MRI_EXTRA="--augment 8"
#
# The CT training pairs (dival ellipses, NUM_TRAIN images, default 8000) are generated
# once into RUN_DIR/cache and memory-mapped by the CT trainings, which share the
# machine with the MRI training. Each run fits its learning-rate schedule into the budget
# (odl-learned train --max-minutes) and can be continued with --resume. The weights
# end up in RUN_DIR/<task>_<method>/<task>_<method>.{pt,json}; copy them to
# odl_learned/weights/ to ship them.
set -u
RUN_DIR=${1:-runs/shipped}
MINUTES=${2:-30}
NUM_TRAIN=${3:-8000}
METHODS=${METHODS:-varnet lpd fbp-unet lgd}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-4}
mkdir -p "$RUN_DIR"
start=$(date +%s)
train() {  # train METHOD TASK MINUTES EXTRA...
  local method=$1 task=$2 minutes=$3; shift 3
  local key="${task}_${method//-/_}"
  local init=()
  # INIT=1 continues from shipped weights where they exist; other methods start afresh
  if [ "${INIT:-0}" = 1 ] && [ -f "odl_learned/weights/${key}.pt" ]; then init=(--init "odl_learned/weights/${key}.pt"); fi
  python -m odl_learned.cli.main train "$method" --task "$task" --steps 100000 --out "$RUN_DIR/$key" \
    --max-minutes "$minutes" --resume --quiet "${init[@]}" ${EXTRA:-} "$@" > "$RUN_DIR/${task}_${method}.log" 2>&1
  echo "$method: exit $? $(tail -n 1 "$RUN_DIR/${task}_${method}.log")"
}
ct_methods=()
for method in $METHODS; do
  case $method in
    varnet|varnet-tv) train "$method" mri "$MINUTES" --num-workers 2 ${MRI_EXTRA:-} & ;;
    *) ct_methods+=("$method") ;;
  esac
done
if [ ${#ct_methods[@]} -gt 0 ]; then
  python -c "from odl_learned.data import pairs; pairs.ct_ellipse_pairs('train', $NUM_TRAIN, cache_dir='$RUN_DIR/cache')"
  elapsed=$(( $(date +%s) - start ))
  left=$(python -c "print(max(1.0, $MINUTES - $elapsed / 60))")
  echo "CT training data: $NUM_TRAIN pairs in ${elapsed} s; CT budget $left min"
  for method in "${ct_methods[@]}"; do
    train "$method" ct "$left" --num-train "$NUM_TRAIN" --cache-dir "$RUN_DIR/cache" --num-workers 3 ${CT_EXTRA:-} &
  done
fi
wait
