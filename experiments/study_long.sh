#!/usr/bin/env bash
# Issue 12, the long-run lever: the baseline recipe (configs/mobilenet-l1.toml) from the start
# for 80 epochs (about 6 CPU hours on 2 cores) on data/photos-more (the out-of-source split's
# training packages plus the more varied photos; the same val and test photos, prepared with
# `--keep-split experiments/study_split.json`), the cosine schedule sized to all 80 epochs, no early
# stop (best.pt keeps the best val LPIPS). It outlives any session: run it again and it
# continues from last.pt with the same schedule. Extra arguments are more overrides, e.g.
# train.num_threads=1 to share the two cores with another run.
set -u
cd "$(dirname "$0")/.."
run=runs/study-long
resume=(); [ -f $run/last.pt ] && resume=(--resume)
date
.venv/bin/pix2color train configs/mobilenet-l1.toml --run-dir $run \
  'data.root="data/photos-more"' train.epochs=80 train.val_lpips=true \
  'train.early_stop_metric="lpips"' -q "${resume[@]}" "$@"
date
