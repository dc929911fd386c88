#!/usr/bin/env bash
# Issue 13: the guided-colour network's third recipe (configs/hint-net-nonlocal.toml, 10
# epochs), fine-tuned from the second (runs/hint-net-classical,
# experiments/study_hint_net_classical.sh), itself made from the out-of-source baseline of issue
# 12. Resumable: run it again.
set -u
cd "$(dirname "$0")/.."
run=runs/hint-net-nonlocal
resume=(); [ -f $run/last.pt ] && resume=(--resume)
date
.venv/bin/pix2color train configs/hint-net-nonlocal.toml --run-dir $run \
  'train.init_from="runs/hint-net-classical/best.pt"' -q "${resume[@]}"
date
