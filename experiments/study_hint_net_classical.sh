#!/usr/bin/env bash
# Issue 13: the guided-colour network's second recipe (configs/hint-net-classical.toml, 20
# epochs), made like experiments/study_hint_net.sh from the out-of-source baseline of issue 12
# (runs/study-mnv2-l1), so that its figures on the out-of-source split are honest.
# Resumable: run it again and it continues from last.pt.
set -u
cd "$(dirname "$0")/.."
P=.venv/bin/pix2color
run=runs/hint-net-classical
resume=(); [ -f $run/last.pt ] && resume=(--resume)
date
$P train configs/hint-net-classical.toml --run-dir $run \
  'train.init_from="runs/study-mnv2-l1/best.pt"' -q "${resume[@]}"
date
