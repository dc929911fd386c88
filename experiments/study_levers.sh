#!/usr/bin/env bash
# The issue-12 levers as fine-tunes of the baseline (experiments/STUDY.md, rule of 2026-11-29
# 15:00): 6 epochs from runs/study-mnv2-l1/best.pt at default's step-2 rates, early stopping on
# validation LPIPS; one run per lever. Resumable: run it again and each run continues from its
# last.pt (a finished run only re-does its end-of-run calibration). study-ft-control is the
# same fine-tune with no lever (its first epoch at the raised rate costs every lever about as
# much: each lever's epoch 1 was 0.005-0.009 above the baseline's best). study-ft-late trains
# only the encoder's last blocks (train.train_encoder="late"). study-ft-more needs
# data/photos-more: `pix2color data fetch data/raw` then `pix2color data prepare data/raw
# data/photos-more --keep-split experiments/study_split.json` (the same val and test as data/photos,
# plus the 91 photos of the 15 packages added to `data fetch`). Then the Lite2 run continues.
set -u
cd "$(dirname "$0")/.."
P=.venv/bin/pix2color
common=(
  'train.init_from="runs/study-mnv2-l1/best.pt"' train.epochs=6 train.lr_g=1e-4
  train.lr_encoder=2.5e-5 train.val_lpips=true 'train.early_stop_metric="lpips"' -q
)
for spec in \
  "study-ft-more|data.root=\"data/photos-more\"" \
  "study-ft-control|train.seed=0" \
  "study-ft-frozen|train.train_encoder=\"none\"" \
  "study-ft-late|train.train_encoder=\"late\"" \
  "study-ft-degrade|data.degrade=0.5" \
  "study-ft-feat|train.lambda_feat=100" \
  "study-ft-gan|train.d_start_epoch=1 train.gan_mode=\"lsgan\" train.lr_d=1e-4 train.label_smoothing=0.1"; do
  name=${spec%%|*}; read -r -a extra <<< "${spec#*|}"
  resume=(); [ -f runs/$name/last.pt ] && resume=(--resume)
  date; echo "== $name"
  $P train configs/mobilenet-l1.toml --run-dir runs/$name "${extra[@]}" "${common[@]}" "${resume[@]}"
  date
done
bash experiments/study_runs.sh
