"""EMA reference from docs/recipes.md in float64: after update t (1-based), d = min(decay, (1+t)/(10+t)),
ema <- ema - (1 - d) (ema - w); starting from a copy of the first weights. Reads weights[T, N] and decay."""
import sys

import numpy as np
import safetensors.numpy


def main():
    d = safetensors.numpy.load_file(sys.argv[1])
    weights, decay = d["weights"], float(d["decay"][0])
    ema = weights[0].copy()
    out = []
    for t in range(1, len(weights)):
        k = min(decay, (1 + t) / (10 + t))
        ema = ema - (1 - k) * (ema - weights[t])
        out.append(ema.copy())
    safetensors.numpy.save_file({"ema": np.stack(out)}, sys.argv[2])


if __name__ == "__main__":
    main()
