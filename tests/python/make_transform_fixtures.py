"""References for the CPU transforms: PIL resizes (bilinear/bicubic, with boxes), the RN50 eval transform
(shorter side 256 then a floor-centred 224 crop, TF1 offsets) and the EfficientNet eval transform
(centre crop int(S/(S+32)*shorter), offsets ((h-c)+1)//2, then resize), computed with PIL on PIL's decode;
and crop samples drawn by tf.image.sample_distorted_bounding_box and torchvision's RandomResizedCrop."""
import argparse
import io
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import safetensors.numpy  # noqa: E402
import tensorflow as tf  # noqa: E402
import torch  # noqa: E402
import torchvision.transforms as T  # noqa: E402
from PIL import Image  # noqa: E402

from fixture_images import photo  # noqa: E402

FILTERS = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC}


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
    # 3. Crop samplers: (x, y, w, h) of 4000 draws each, image 500x375, no boxes / one box.
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
