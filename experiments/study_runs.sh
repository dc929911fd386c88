#!/usr/bin/env bash
# The issue-12 study runs (experiments/STUDY.md), started 2026-11-29: the mobilenet-l1 recipe on the
# out-of-source split (baseline), then the same recipe with the EfficientNet-Lite2 encoder.
# Needs data/photos from `pix2color data prepare data/raw data/photos --split-by source
# --folds 3`. Resumable: run it again and each run continues from its last.pt.
# With the photo sources added later, prepare with `--keep-split experiments/study_split.json`
# (same val and test photos, more training photos), e.g. into data/photos-more.
set -u
cd "$(dirname "$0")/.."
P=.venv/bin/pix2color
common=(train.val_lpips=true 'train.early_stop_metric="lpips"' -q)
for spec in "study-mnv2-l1|" "study-lite2-l1|model.encoder=\"efficientnet_lite2\""; do
  name=${spec%%|*}; extra=${spec#*|}
  resume=(); [ -f runs/$name/last.pt ] && resume=(--resume)
  date; echo "== $name"
  $P train configs/mobilenet-l1.toml --run-dir runs/$name ${extra:+"$extra"} "${common[@]}" "${resume[@]}"
  date
done
