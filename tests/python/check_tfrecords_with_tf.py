"""Reads TFRecord shards written by `convnets prepare_data` with TensorFlow's own parser and decoder, and
checks them against the IDX source: record counts, labels (1-based), and pixels (JPEG error bound)."""
import gzip
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

SCHEMA = {
    "image/encoded": tf.io.FixedLenFeature([], tf.string),
    "image/class/label": tf.io.FixedLenFeature([], tf.int64),
    "image/height": tf.io.FixedLenFeature([], tf.int64),
    "image/width": tf.io.FixedLenFeature([], tf.int64),
    "image/format": tf.io.FixedLenFeature([], tf.string),
    "image/class/text": tf.io.FixedLenFeature([], tf.string),
    "image/object/bbox/xmin": tf.io.VarLenFeature(tf.float32),
}


def read_idx(path):
    with gzip.open(path) as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * d: 8 + 4 * d], "big") for d in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def main():
    shard_dir, idx_dir = sys.argv[1], sys.argv[2]
    for split, prefix in [("train", "train"), ("validation", "t10k")]:
        files = sorted(tf.io.gfile.glob(os.path.join(shard_dir, f"{split}-*")))
        images = read_idx(os.path.join(idx_dir, f"{prefix}-images-idx3-ubyte.gz"))
        labels = read_idx(os.path.join(idx_dir, f"{prefix}-labels-idx1-ubyte.gz"))
        count = 0
        for i, raw in enumerate(tf.data.TFRecordDataset(files)):
            if i % 97 == 0:  # decode a spread of records; parse all would only cost time
                ex = tf.io.parse_single_example(raw, SCHEMA)
                assert int(ex["image/class/label"]) == int(labels[i]) + 1, (split, i)
                assert ex["image/format"].numpy() == b"JPEG"
                pixels = tf.io.decode_jpeg(ex["image/encoded"], channels=3).numpy()
                assert pixels.shape == (28, 28, 3), pixels.shape
                err = np.abs(pixels.astype(int) - images[i][:, :, None].astype(int)).mean()
                assert err < 4.0, (split, i, err)
            count += 1
        assert count == len(labels), (split, count, len(labels))
        print(f"{split}: {count} records read by TensorFlow {tf.__version__}")


if __name__ == "__main__":
    main()
