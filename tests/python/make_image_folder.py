"""A small ImageFolder for prepare_data: train/{a_dog,b_cat}/ and val/ with RGB, grayscale and CMYK JPEGs, an
RGBA PNG, a corrupt JPEG and a stray text file. Writes expected.safetensors with PIL's RGB decode of the
PNG (the PNG becomes a JPEG, so it is compared with a tolerance)."""
import io
import os
import sys

import numpy as np
import safetensors.numpy
from PIL import Image


def main():
    root = sys.argv[1]
    rng = np.random.default_rng(3)

    def photo(h, w):
        coarse = rng.integers(0, 256, size=(4, 4, 3), dtype=np.uint8)
        return Image.fromarray(coarse).resize((w, h), Image.BICUBIC)

    for split, n in [("train", 3), ("val", 1)]:
        for cls in ["b_cat", "a_dog"]:
            d = os.path.join(root, split, cls)
            os.makedirs(d, exist_ok=True)
            for i in range(n):
                photo(40 + i, 50).save(os.path.join(d, f"rgb{i}.jpg"), quality=90)
    d = os.path.join(root, "train", "b_cat")
    photo(30, 30).convert("L").save(os.path.join(d, "gray.JPEG"), quality=90)
    photo(30, 30).convert("CMYK").save(os.path.join(d, "cmyk.jpg"), quality=90)
    png = photo(20, 24).convert("RGBA")
    png.save(os.path.join(d, "alpha.png"))
    with open(os.path.join(d, "broken.jpg"), "wb") as f:
        f.write(b"\xff\xd8\xff\xe0 this is not really a JPEG")
    with open(os.path.join(d, "notes.txt"), "w") as f:
        f.write("not an image")
    safetensors.numpy.save_file({"png_rgb": np.asarray(png.convert("RGB"))}, os.path.join(root, "expected.safetensors"))


if __name__ == "__main__":
    main()
