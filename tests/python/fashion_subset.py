"""A smaller Fashion-MNIST for the end-to-end tests: the first `train` and `test` images of Debian's
dataset-fashion-mnist, written as the same four gzip'd IDX files, so `convnets prepare_data --input DIR` reads it
as it reads the real one. The CLI tests train a few dozen updates and evaluate the validation split several
times; 2,000 test images keep every check they make and a fifth of the evaluation time."""
import gzip
import os
import struct

SOURCE = "/usr/share/datasets/fashion-mnist"


def write(out, train=12000, test=2000):
    """Writes the subset into `out` (created) and returns `out`."""
    os.makedirs(out, exist_ok=True)
    for prefix, count in (("train", train), ("t10k", test)):
        for kind, rank in (("images-idx3", 3), ("labels-idx1", 1)):
            name = f"{prefix}-{kind}-ubyte.gz"
            with gzip.open(os.path.join(SOURCE, name)) as f:
                data = f.read()
            header = 4 + 4 * rank  # magic, then one big-endian count per dimension
            dims = struct.unpack(">" + "I" * rank, data[4:header])
            if count > dims[0]:
                raise ValueError(f"{name} holds {dims[0]} items, {count} asked")
            item = 1
            for d in dims[1:]:
                item *= d
            subset = data[:4] + struct.pack(">I", count) + data[8:header] + data[header:header + count * item]
            with gzip.open(os.path.join(out, name), "wb", compresslevel=1) as f:
                f.write(subset)
    return out
