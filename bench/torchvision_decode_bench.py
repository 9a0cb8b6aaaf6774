"""torchvision's PIL training transform on the same files: Image.open + convert RGB + RandomResizedCrop(224)
+ RandomHorizontalFlip, to uint8 (as ours outputs); one thread. Prints images/s.
With --decode-only: Image.open + convert("RGB") alone (PIL decodes the whole image)."""
import glob
import io
import sys
import time

import numpy as np
import torch
import torchvision.transforms as T
from PIL import Image


def main():
    torch.set_num_threads(1)
    files = sorted(glob.glob(sys.argv[1] + "/*.jpg"))
    data = [open(f, "rb").read() for f in files]
    transform = T.Compose([T.RandomResizedCrop(224), T.RandomHorizontalFlip()])
    if len(sys.argv) > 2 and sys.argv[2] == "--decode-only":
        run = lambda b: Image.open(io.BytesIO(b)).convert("RGB").load()
    else:
        run = lambda b: np.asarray(transform(Image.open(io.BytesIO(b)).convert("RGB")))
    for b in data[:50]:
        run(b)
    start = time.perf_counter()
    for b in data:
        run(b)
    print(f"{len(data) / (time.perf_counter() - start):.1f}")


if __name__ == "__main__":
    main()
