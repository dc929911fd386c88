#!/usr/bin/env bash
# Issue 12, folds: the baseline recipe (configs/mobilenet-l1.toml) on each of three disjoint
# groups of held-out sources, so that the out-of-source test figures get a mean and a spread.
# Fold 0 is data/photos and runs/study-mnv2-l1 (the study's baseline, already trained); folds
# 1 and 2 are prepared from the 24 source packages data/photos was made from (data/raw-orig,
# hard links), so their test groups are the ones data/photos' prepare_report.json lists
# (fold_tests), and fold 0 prepared the same way reproduces data/photos file for file.
# Each fold's test split is scored with the model at its calibrated gain (model/) and at gain 1
# (best.pt), every image saved, then `python experiments/study_folds_table.py` tabulates the
# folds and scores all test photos pooled. Resumable: run it again and it continues where it
# stopped. THREADS=1 lets it share the two cores with another run.
set -u
cd "$(dirname "$0")/.."
threads=${THREADS:-2}
if [ ! -d data/raw-orig ]; then
  mkdir -p data/raw-orig
  python3 -c "
import json, subprocess
for name in json.load(open('data/photos/prepare_report.json'))['kept_by_source']:
    subprocess.run(['cp', '-al', 'data/raw/' + name, 'data/raw-orig/' + name], check=True)"
fi
for fold in ${FOLDS:-1 2 0}; do
  if [ "$fold" = 0 ]; then
    data=data/photos run=runs/study-mnv2-l1
  else
    data=data/photos-fold$fold run=runs/study-fold$fold
    [ -f $data/prepare_report.json ] || .venv/bin/pix2color data prepare data/raw-orig $data \
      --split-by source --folds 3 --fold $fold
    resume=(); [ -f $run/last.pt ] && resume=(--resume)
    if [ ! -f $run/finished ]; then
      date
      OMP_NUM_THREADS=$threads .venv/bin/pix2color train configs/mobilenet-l1.toml \
        --run-dir $run "data.root=\"$data\"" train.val_lpips=true \
        'train.early_stop_metric="lpips"' train.num_threads=$threads -q "${resume[@]}" || exit 1
      date > $run/finished
    fi
  fi
  [ -d out/study-fold$fold/images ] || OMP_NUM_THREADS=$threads .venv/bin/pix2color evaluate \
    --data $data --split test --models $run/model $run/best.pt --threads $threads \
    --save-images -q -o out/study-fold$fold || exit 1
  date
done
