"""Cuts ImageNet-sized JPEGs (shorter side 333..500, aspect 3:4..16:9, quality 90) from the photos of Debian's
plasma-workspace-wallpapers package (largest JPEG of each wallpaper), for the decode benchmark."""
import glob
import os
import subprocess
import sys
import tempfile

import numpy as np
from PIL import Image


def main():
    out_dir, count = sys.argv[1], int(sys.argv[2])
    os.makedirs(out_dir, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["apt-get", "download", "plasma-workspace-wallpapers"], cwd=tmp, check=True,
                       stdout=subprocess.DEVNULL)
        deb = glob.glob(os.path.join(tmp, "*.deb"))[0]
        subprocess.run(["dpkg", "-x", deb, os.path.join(tmp, "x")], check=True)
        photos = []
        for wallpaper in sorted(glob.glob(os.path.join(tmp, "x/usr/share/wallpapers/*"))):
            jpgs = glob.glob(os.path.join(wallpaper, "contents/images*/*.jpg"))
            if jpgs:
                photos.append(max(jpgs, key=os.path.getsize))
        rng = np.random.default_rng(0)
        images = [Image.open(p).convert("RGB") for p in photos]
        for i in range(count):
            img = images[i % len(images)]
            short = int(rng.integers(333, 501))
            aspect = float(rng.uniform(0.75, 1.78))
            w, h = (int(short * aspect), short) if rng.random() < 0.8 else (short, int(short * aspect))
            # A random window of the photo at a random zoom, resized to the tile size.
            zoom = float(rng.uniform(1.0, min(img.width / w, img.height / h)))
            cw, ch = int(w * zoom), int(h * zoom)
            x, y = int(rng.integers(0, img.width - cw + 1)), int(rng.integers(0, img.height - ch + 1))
            tile = img.crop((x, y, x + cw, y + ch)).resize((w, h), Image.BICUBIC)
            tile.save(os.path.join(out_dir, f"tile_{i:05d}.jpg"), quality=90)
    print(f"{count} tiles from {len(photos)} photos in {out_dir}")


if __name__ == "__main__":
    main()
