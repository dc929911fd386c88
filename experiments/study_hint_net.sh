#!/usr/bin/env bash
# Issue 13: the learned guided-colour network's long run (configs/hint-net.toml, 20 epochs),
# made from the out-of-source baseline of issue 12 (runs/study-mnv2-l1: the mobilenet-l1 recipe
# trained on the source split's training packages only) rather than the shipped `default`, which
# trained on the validation and test packages: so that its figures on the out-of-source split
# are honest. The automatic part stays exactly the baseline (train.freeze_automatic); only the
# refiner and the reference's MLP learn. Resumable: run it again and it continues from last.pt.
set -u
cd "$(dirname "$0")/.."
P=.venv/bin/pix2color
resume=(); [ -f runs/hint-net/last.pt ] && resume=(--resume)
date
$P train configs/hint-net.toml --run-dir runs/hint-net \
  'train.init_from="runs/study-mnv2-l1/best.pt"' -q "${resume[@]}"
date
