"""Cuts ImageNet-sized JPEGs (shorter side 333..500, aspect 3:4..16:9, quality 90) from photos: the largest JPEG
of each wallpaper of Debian's plasma-workspace-wallpapers package (downloaded), or the JPEGs of --photos DIR.

usage: make_photo_tiles.py OUT_DIR COUNT [--photos DIR] [--classes K] [--jobs N]
--classes K: tiles go to OUT_DIR/class_KKK/ round-robin (an image-folder dataset of K classes).
"""
import argparse
import glob
import os
import subprocess
import tempfile
from multiprocessing import Pool

import numpy as np
from PIL import Image

_images = []


def _load(paths):
    global _images
    _images = [Image.open(p).convert("RGB") for p in paths]


def _tile(job):
    i, path = job
    rng = np.random.default_rng(i)  # one stream per tile: the same tiles for any --jobs
    img = _images[i % len(_images)]
    short = int(rng.integers(333, 501))
    aspect = float(rng.uniform(0.75, 1.78))
    w, h = (int(short * aspect), short) if rng.random() < 0.8 else (short, int(short * aspect))
    # A random window of the photo at a random zoom, resized to the tile size.
    zoom = float(rng.uniform(1.0, max(1.0, min(img.width / w, img.height / h))))
    cw, ch = min(img.width, int(w * zoom)), min(img.height, int(h * zoom))
    x, y = int(rng.integers(0, img.width - cw + 1)), int(rng.integers(0, img.height - ch + 1))
    img.crop((x, y, x + cw, y + ch)).resize((w, h), Image.BICUBIC).save(path, quality=90)


def photo_paths(photos_dir, tmp):
    if photos_dir:
        return sorted(glob.glob(os.path.join(photos_dir, "*.jpg")))
    subprocess.run(["apt-get", "download", "plasma-workspace-wallpapers"], cwd=tmp, check=True,
                   stdout=subprocess.DEVNULL)
    deb = glob.glob(os.path.join(tmp, "*.deb"))[0]
    subprocess.run(["dpkg", "-x", deb, os.path.join(tmp, "x")], check=True)
    photos = []
    for wallpaper in sorted(glob.glob(os.path.join(tmp, "x/usr/share/wallpapers/*"))):
        jpgs = glob.glob(os.path.join(wallpaper, "contents/images*/*.jpg"))
        if jpgs:
            photos.append(max(jpgs, key=os.path.getsize))
    return photos


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out_dir")
    ap.add_argument("count", type=int)
    ap.add_argument("--photos", default="")
    ap.add_argument("--classes", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=1)
    a = ap.parse_args()
    os.makedirs(a.out_dir, exist_ok=True)
    jobs = []
    for i in range(a.count):
        folder = a.out_dir if a.classes <= 0 else os.path.join(a.out_dir, f"class_{i % a.classes:03d}")
        os.makedirs(folder, exist_ok=True)
        jobs.append((i, os.path.join(folder, f"tile_{i:05d}.jpg")))
    with tempfile.TemporaryDirectory() as tmp:
        photos = photo_paths(a.photos, tmp)
        with Pool(a.jobs, initializer=_load, initargs=(photos,)) as pool:
            pool.map(_tile, jobs, chunksize=16)
    print(f"{a.count} tiles from {len(photos)} photos in {a.out_dir}")


if __name__ == "__main__":
    main()
