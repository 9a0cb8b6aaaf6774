"""NVIDIA DALI's CPU pipeline on the same files, as the seeds' loader builds it (decode fused with the random
crop, resize to 224, random flip), CPU only (device_id=None), one thread, synchronous execution; the encoded
files are read into memory first and fed by an external source, as the other contenders read theirs.
Prints images/s. DALI is a bench extra: bench/run_decode_bench.sh installs it (PyPI nvidia-dali-cuda130).

usage: dali_decode_bench.py TILES_DIR [--decode-only]
--decode-only: fn.decoders.image alone (the whole image)."""
import glob
import sys
import time

import numpy as np
from nvidia.dali import fn, pipeline_def, types

BATCH = 32


def main():
    files = sorted(glob.glob(sys.argv[1] + "/*.jpg"))
    data = [np.frombuffer(open(f, "rb").read(), dtype=np.uint8) for f in files]
    decode_only = len(sys.argv) > 2 and sys.argv[2] == "--decode-only"
    batches = len(data) // BATCH

    def source(info):
        i = info.iteration % batches
        return data[i * BATCH:(i + 1) * BATCH]

    @pipeline_def(batch_size=BATCH, num_threads=1, device_id=None, seed=1, exec_async=False, exec_pipelined=False,
                  prefetch_queue_depth=1)
    def pipeline():
        jpegs = fn.external_source(source=source, batch=True, batch_info=True, dtype=types.UINT8)
        if decode_only:
            return fn.decoders.image(jpegs, device="cpu", output_type=types.RGB)
        images = fn.decoders.image_random_crop(jpegs, device="cpu", output_type=types.RGB,
                                               random_area=[0.08, 1.0], random_aspect_ratio=[0.75, 4 / 3],
                                               num_attempts=100)
        images = fn.resize(images, resize_x=224, resize_y=224, interp_type=types.INTERP_LINEAR)
        return fn.flip(images, horizontal=fn.random.coin_flip())

    pipe = pipeline()
    pipe.build()
    for _ in range(2):
        pipe.run()
    start = time.perf_counter()
    for _ in range(batches):
        pipe.run()
    print(f"{batches * BATCH / (time.perf_counter() - start):.1f}")


if __name__ == "__main__":
    main()
