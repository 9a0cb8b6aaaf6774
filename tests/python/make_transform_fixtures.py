"""References for the CPU transforms: PIL resizes (bilinear/bicubic, with boxes), the RN50 eval transform
(shorter side 256 then a floor-centred 224 crop, TF1 offsets) and the EfficientNet eval transform
(centre crop int(S/(S+32)*shorter), offsets ((h-c)+1)//2, then resize), computed with PIL on PIL's decode;
PNGs of every colour type and bit depth with PIL's RGB of them; and crop samples drawn by tf.image.sample_distorted_bounding_box and torchvision's RandomResizedCrop."""
import argparse
import io
import os
import struct
import zlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import safetensors.numpy  # noqa: E402
import tensorflow as tf  # noqa: E402
import torch  # noqa: E402
import torchvision.transforms as T  # noqa: E402
from PIL import Image  # noqa: E402

from fixture_images import photo  # noqa: E402

FILTERS = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC}


def png_file(rows, width, height, color_type, depth, palette=None, trns=None):
    """A PNG written by hand (PIL cannot write 16-bit colour): `rows` are the filtered-free scanline bytes."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, color_type, 0, 0, 0))
    if palette is not None:
        out += chunk(b"PLTE", bytes(palette))
    if trns is not None:
        out += chunk(b"tRNS", trns)
    return out + chunk(b"IDAT", zlib.compress(b"".join(b"\x00" + r for r in rows))) + chunk(b"IEND", b"")


def png_variants(rgb, rng):
    """The photo as PNG of every colour type PIL reads: grey 1/2/4/8/16 bit, grey + alpha 8/16, RGB 8/16,
    RGBA 8/16, palette with and without tRNS."""
    h, w, _ = rgb.shape
    gray = (rgb.astype(np.float64) @ [0.299, 0.587, 0.114]).astype(np.uint8)
    alpha = rng.integers(0, 256, (h, w), dtype=np.uint8)
    wide = lambda a: (a.astype(np.uint16) * 257 + rng.integers(0, 257, a.shape).astype(np.uint16)).astype(">u2")
    out = {}
    for depth in (1, 2, 4):
        levels = (gray >> (8 - depth)).astype(np.uint8)
        rows = []
        for r in levels:
            bits = "".join(format(int(v), f"0{depth}b") for v in r)
            bits += "0" * (-len(bits) % 8)
            rows.append(int(bits, 2).to_bytes(len(bits) // 8, "big"))
        out[f"gray{depth}"] = png_file(rows, w, h, 0, depth)
    out["gray8"] = png_file([r.tobytes() for r in gray], w, h, 0, 8)
    out["gray16"] = png_file([r.tobytes() for r in wide(gray)], w, h, 0, 16)  # PIL: I;16, clipped to 255
    out["gray16_dark"] = png_file([r.tobytes() for r in (gray // 2).astype(">u2")], w, h, 0, 16)
    out["graya8"] = png_file([r.tobytes() for r in np.dstack([gray, alpha])], w, h, 4, 8)
    out["graya16"] = png_file([r.tobytes() for r in wide(np.dstack([gray, alpha]))], w, h, 4, 16)
    out["rgb8"] = png_file([r.tobytes() for r in rgb], w, h, 2, 8)
    out["rgb16"] = png_file([r.tobytes() for r in wide(rgb)], w, h, 2, 16)
    out["rgba8"] = png_file([r.tobytes() for r in np.dstack([rgb, alpha])], w, h, 6, 8)
    out["rgba16"] = png_file([r.tobytes() for r in wide(np.dstack([rgb, alpha]))], w, h, 6, 16)
    quantized = Image.fromarray(rgb).quantize(64)
    palette = quantized.getpalette()[:3 * 64]
    index = np.asarray(quantized)
    out["palette"] = png_file([r.tobytes() for r in index], w, h, 3, 8, palette=palette)
    out["palette_trns"] = png_file([r.tobytes() for r in index], w, h, 3, 8, palette=palette,
                                   trns=bytes(range(0, 256, 8)))
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    out_dir = os.path.join(args.out, "transforms")
    os.makedirs(out_dir, exist_ok=True)
    rng = np.random.default_rng(1)
    t = {}
    # 1. PIL resize with boxes, both filters, down and up.
    src = photo(rng, 181, 263, cell=12, noise=10)
    t["resize.src"] = np.asarray(src)
    cases = [(224, 224, (0, 0, 263, 181)), (57, 91, (10.5, 3.25, 200.75, 170.0)), (300, 200, (0, 0, 263, 181)),
             (64, 64, (100, 50, 140, 90)), (224, 224, (31, 7, 211, 160))]
    for name, filt in FILTERS.items():
        for k, (w, h, box) in enumerate(cases):
            t[f"resize.{name}.{k}"] = np.asarray(src.resize((w, h), filt, box=box))
            t[f"resize.{name}.{k}.args"] = np.array([w, h, *box], dtype=np.float64)
    # 2. Eval transforms on JPEGs of several shapes (decoded by PIL, as torchvision does).
    for k, (h, w) in enumerate([(375, 500), (500, 333), (257, 256), (640, 427)]):
        buf = io.BytesIO()
        photo(rng, h, w, cell=12, noise=10).save(buf, format="JPEG", quality=92)
        jpeg = buf.getvalue()
        img = Image.open(io.BytesIO(jpeg)).convert("RGB")
        t[f"eval.{k}.jpeg"] = np.frombuffer(jpeg, dtype=np.uint8)
        short = min(h, w)
        rw, rh = w * 256 // short, h * 256 // short
        left, top = (rw - 224) // 2, (rh - 224) // 2
        t[f"eval.{k}.rn50"] = np.asarray(img.resize((rw, rh), Image.BILINEAR).crop((left, top, left + 224, top + 224)))
        size = 380
        crop = int(size / (size + 32) * short)
        oy, ox = ((h - crop) + 1) // 2, ((w - crop) + 1) // 2
        t[f"eval.{k}.effnet"] = np.asarray(img.crop((ox, oy, ox + crop, oy + crop)).resize((size, size), Image.BICUBIC))
        # Train-style crop then resize (torchvision resized_crop), a fixed crop.
        cx, cy, cw, ch = w // 7, h // 5, w // 2, h // 2
        t[f"eval.{k}.crop"] = np.array([cx, cy, cw, ch], dtype=np.int64)
        t[f"eval.{k}.resized_crop"] = np.asarray(img.crop((cx, cy, cx + cw, cy + ch)).resize((224, 224), Image.BILINEAR))
    # 3. PNG in every colour type and bit depth, as PIL decodes it (convert("RGB"), torchvision's loader), and
    # the two eval transforms on PIL's pixels.
    base = np.asarray(photo(rng, 83, 97, cell=9, noise=12))
    for name, png_bytes in png_variants(base, rng).items():
        img = Image.open(io.BytesIO(png_bytes)).convert("RGB")
        t[f"png.{name}.bytes"] = np.frombuffer(png_bytes, dtype=np.uint8)
        t[f"png.{name}.rgb"] = np.asarray(img)
        short = min(img.size)
        crop = int(64 / (64 + 32) * short)
        oy, ox = ((img.height - crop) + 1) // 2, ((img.width - crop) + 1) // 2
        t[f"png.{name}.effnet64"] = np.asarray(img.crop((ox, oy, ox + crop, oy + crop)).resize((64, 64), Image.BICUBIC))
    # 4. Crop samplers: (x, y, w, h) of 4000 draws each, image 500x375, no boxes / one box.
    n, width, height = 4000, 500, 375
    for tag, boxes in [("nobox", np.zeros((1, 0, 4), np.float32)),
                       ("box", np.array([[[0.2, 0.3, 0.6, 0.55]]], np.float32))]:
        samples = []
        for i in range(n):
            begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
                [height, width, 3], bounding_boxes=boxes, seed=[i, 17], min_object_covered=0.1,
                aspect_ratio_range=[0.75, 1.33], area_range=[0.05, 1.0], max_attempts=100,
                use_image_if_no_bounding_boxes=True)
            samples.append([int(begin[1]), int(begin[0]), int(size[1]), int(size[0])])
        t[f"sampler.tf.{tag}"] = np.array(samples, dtype=np.int64)
    torch.manual_seed(0)
    rrc = T.RandomResizedCrop(224, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3))
    dummy = torch.empty(3, height, width)
    samples = []
    for _ in range(n):
        top, left, h, w = rrc.get_params(dummy, rrc.scale, rrc.ratio)
        samples.append([left, top, w, h])
    t["sampler.torchvision"] = np.array(samples, dtype=np.int64)
    safetensors.numpy.save_file(t, os.path.join(out_dir, "expected.safetensors"))
    print("transform fixtures written")


if __name__ == "__main__":
    main()
