"""TFRecords written by real TensorFlow (tf.io.TFRecordWriter + tf.train.Example) in the exact ImageNet schema
of build_imagenet_data.py, with RGB, grayscale and CMYK JPEGs made by PIL, with and without bounding boxes.
Expected values (raw JPEG bytes, PIL's RGB decode, labels, boxes) go to expected.safetensors; shard 0 also gets
a DALI tfrecord2idx-style index file (the others are indexed on the fly)."""
import argparse
import io
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import safetensors.numpy  # noqa: E402
import tensorflow as tf  # noqa: E402
from PIL import Image  # noqa: E402

from fixture_images import photo  # noqa: E402

MODES = ["RGB", "L", "CMYK"]


def bytes_feature(v):
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=v if isinstance(v, list) else [v]))


def int64_feature(v):
    return tf.train.Feature(int64_list=tf.train.Int64List(value=v if isinstance(v, list) else [v]))


def float_feature(v):
    return tf.train.Feature(float_list=tf.train.FloatList(value=v))


def write_fuzz_seeds(root, shard_dir, expected):
    """Valid inputs for the libFuzzer targets to mutate from."""
    seeds = {name: os.path.join(root, "fuzz_seeds", name)
             for name in ("tfrecord", "example", "jpeg", "png", "pickle")}
    for d in seeds.values():
        os.makedirs(d, exist_ok=True)
    with open(os.path.join(shard_dir, "train-00000-of-00003"), "rb") as f:
        shard = f.read()
    with open(os.path.join(seeds["tfrecord"], "shard0"), "wb") as f:
        f.write(shard)
    for i, raw in enumerate(tf.data.TFRecordDataset(os.path.join(shard_dir, "train-00000-of-00003"))):
        with open(os.path.join(seeds["example"], f"example{i}"), "wb") as f:
            f.write(raw.numpy())
    for key, value in expected.items():
        if key.startswith("encoded."):
            with open(os.path.join(seeds["jpeg"], key), "wb") as f:
                f.write(b"\x03\x05" + value.tobytes())
    # PNG: every colour type, 16-bit, palette with transparency, interlaced.
    rng = np.random.default_rng(1)
    rgb = Image.fromarray(rng.integers(0, 256, (9, 13, 3), dtype=np.uint8))
    variants = {"rgb": rgb, "gray": rgb.convert("L"), "rgba": rgb.convert("RGBA"), "palette": rgb.convert("P"),
                "gray16": Image.fromarray((np.asarray(rgb.convert("L"), np.uint16) * 257)),
                "bilevel": rgb.convert("1")}
    for name, image in variants.items():
        for interlace in (False, True):
            buffer = io.BytesIO()
            image.save(buffer, format="PNG", optimize=False, **({"interlace": 1} if interlace else {}))
            with open(os.path.join(seeds["png"], f"{name}{'_interlaced' if interlace else ''}.png"), "wb") as f:
                f.write(buffer.getvalue())
    # Pickles: torch.save's data.pkl of a state dict and of a checkpoint-like dict of dicts, and a nest of
    # tuples just over the depth limit.
    import torch
    import zipfile
    for name, obj in {"state_dict": {"w": torch.zeros(2, 3), "n": torch.tensor(4)},
                      "checkpoint": {"model": {"w": torch.ones(2)}, "rng": {"cpu": torch.zeros(3, dtype=torch.uint8)}}
                      }.items():
        buffer = io.BytesIO()
        torch.save(obj, buffer)
        with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as z:
            pkl = next(n for n in z.namelist() if n.endswith("/data.pkl"))
            with open(os.path.join(seeds["pickle"], name), "wb") as f:
                f.write(z.read(pkl))
    with open(os.path.join(seeds["pickle"], "deep"), "wb") as f:
        f.write(b"\x80\x02N" + b"\x85" * 300 + b".")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    out = os.path.join(args.out, "tfrecords")
    os.makedirs(os.path.join(out, "idx"), exist_ok=True)
    rng = np.random.default_rng(0)
    expected = {}
    shards = 3
    for shard in range(shards):
        path = os.path.join(out, f"train-{shard:05d}-of-{shards:05d}")
        with tf.io.TFRecordWriter(path) as writer:
            for i in range(4):
                mode = MODES[(shard * 4 + i) % 3]
                h, w = int(rng.integers(40, 161)), int(rng.integers(40, 161))
                image = photo(rng, h, w).convert(mode)
                buf = io.BytesIO()
                image.save(buf, format="JPEG", quality=90)
                jpeg = buf.getvalue()
                label = int(rng.integers(1, 1001))
                boxes = []
                if i % 2 == 0:
                    for _ in range(int(rng.integers(1, 3))):
                        y0, x0 = rng.uniform(0, 0.5, size=2)
                        y1, x1 = rng.uniform(0.5, 1.0, size=2)
                        boxes.append((y0, x0, y1, x1))
                feature = {
                    "image/height": int64_feature(h),
                    "image/width": int64_feature(w),
                    "image/colorspace": bytes_feature(b"RGB"),
                    "image/channels": int64_feature(3),
                    "image/class/label": int64_feature(label),
                    "image/class/synset": bytes_feature(b"n%08d" % label),
                    "image/class/text": bytes_feature(b"class %d" % label),
                    "image/object/bbox/xmin": float_feature([b[1] for b in boxes]),
                    "image/object/bbox/xmax": float_feature([b[3] for b in boxes]),
                    "image/object/bbox/ymin": float_feature([b[0] for b in boxes]),
                    "image/object/bbox/ymax": float_feature([b[2] for b in boxes]),
                    "image/object/bbox/label": int64_feature([label] * len(boxes)),
                    "image/format": bytes_feature(b"JPEG"),
                    "image/filename": bytes_feature(b"img_%d_%d.JPEG" % (shard, i)),
                    "image/encoded": bytes_feature(jpeg),
                }
                writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
                key = f"{shard}.{i}"
                expected["encoded." + key] = np.frombuffer(jpeg, dtype=np.uint8)
                expected["pil." + key] = np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB"))
                expected["label." + key] = np.array([label], dtype=np.int64)
                expected["boxes." + key] = np.array(boxes, dtype=np.float32).reshape(-1, 4)
                expected["mode." + key] = np.array([MODES.index(mode)], dtype=np.int64)
        if shard == 0:  # tfrecord2idx: "<offset> <size>" per record
            with open(path, "rb") as f, open(os.path.join(out, "idx", os.path.basename(path)), "w") as idx:
                while True:
                    start = f.tell()
                    header = f.read(8)
                    if not header:
                        break
                    length = int.from_bytes(header, "little")
                    f.seek(4 + length + 4, 1)
                    idx.write(f"{start} {f.tell() - start}\n")
    safetensors.numpy.save_file(expected, os.path.join(out, "expected.safetensors"))
    write_fuzz_seeds(args.out, out, expected)
    print(f"wrote {shards} shards with TensorFlow {tf.__version__}")


if __name__ == "__main__":
    main()
