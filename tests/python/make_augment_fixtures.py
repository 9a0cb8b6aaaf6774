"""PIL references for every AutoAugment / RandAugment op, written from docs/recipes.md: the op applied with
a fixed, already-mapped argument to a photo-like image (geometric ops: nearest neighbour, fill 128)."""
import argparse
import os

import numpy as np
import safetensors.numpy
from PIL import Image, ImageEnhance, ImageOps

from fixture_images import photo

FILL = (128, 128, 128)


def solarize_add(img, add):
    x = np.asarray(img).astype(np.int32)
    return Image.fromarray(np.where(x < 128, np.minimum(x + add, 255), x).astype(np.uint8))


def affine(img, data):
    return img.transform(img.size, Image.AFFINE, data, resample=Image.NEAREST, fillcolor=FILL)


OPS = {
    "AutoContrast": [(0, lambda im, a: ImageOps.autocontrast(im))],
    "Equalize": [(0, lambda im, a: ImageOps.equalize(im))],
    "Invert": [(0, lambda im, a: ImageOps.invert(im))],
    "Posterize": [(b, lambda im, a: ImageOps.posterize(im, int(a))) for b in (1, 2, 4)],
    "Solarize": [(t, lambda im, a: ImageOps.solarize(im, a)) for t in (77, 128, 256)],
    "SolarizeAdd": [(v, lambda im, a: solarize_add(im, int(a))) for v in (30, 77)],
    "Color": [(f, lambda im, a: ImageEnhance.Color(im).enhance(a)) for f in (0.1, 0.64, 1.9)],
    "Contrast": [(f, lambda im, a: ImageEnhance.Contrast(im).enhance(a)) for f in (0.1, 1.9)],
    "Brightness": [(f, lambda im, a: ImageEnhance.Brightness(im).enhance(a)) for f in (0.28, 1.72)],
    "Sharpness": [(f, lambda im, a: ImageEnhance.Sharpness(im).enhance(a)) for f in (0.1, 1.9)],
    "Rotate": [(d, lambda im, a: im.rotate(a, resample=Image.NEAREST, fillcolor=FILL)) for d in (30.0, -12.0)],
    # TF's transform maps integer pixel coordinates, PIL's maps pixel centres (+0.5): the -a/2 offset makes
    # PIL sample what the recipe's [1, a, 0, 0, 1, 0] transform samples.
    "ShearX": [(s, lambda im, a: affine(im, (1, a, -a / 2, 0, 1, 0))) for s in (0.3, -0.18)],
    "ShearY": [(s, lambda im, a: affine(im, (1, 0, 0, a, 1, -a / 2))) for s in (0.3, -0.18)],
    "TranslateX": [(p, lambda im, a: affine(im, (1, 0, -a, 0, 1, 0))) for p in (25.0, -10.0)],
    "TranslateY": [(p, lambda im, a: affine(im, (1, 0, 0, 0, 1, -a))) for p in (25.0, -10.0)],
}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    out_dir = os.path.join(args.out, "augment")
    os.makedirs(out_dir, exist_ok=True)
    rng = np.random.default_rng(11)
    img = photo(rng, 64, 80, cell=12, noise=12, lo=30, hi=220)
    t = {"source": np.asarray(img)}
    for name, cases in OPS.items():
        for k, (arg, fn) in enumerate(cases):
            t[f"{name}.{k}"] = np.asarray(fn(img, arg))
            t[f"{name}.{k}.arg"] = np.array([arg], dtype=np.float64)
    safetensors.numpy.save_file(t, os.path.join(out_dir, "expected.safetensors"))
    print(f"{len(t) // 2} augmentation references written")


if __name__ == "__main__":
    main()
