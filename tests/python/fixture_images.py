"""Photo-like test images shared by the fixture scripts: smooth random colour fields plus noise, the kind of
content JPEG and the augmentations are built for."""
import numpy as np
from PIL import Image


def photo(rng, h, w, cell=16, noise=8, lo=0, hi=256):
    coarse = rng.integers(lo, hi, size=(max(2, h // cell), max(2, w // cell), 3), dtype=np.uint8)
    img = np.asarray(Image.fromarray(coarse).resize((w, h), Image.BICUBIC), dtype=np.int16)
    img = img + rng.integers(-noise, noise + 1, size=img.shape)
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
