"""Activation ranges of NVIDIA's pytorch-quantization histogram calibrator, written from its documented
algorithm with numpy, for tests/models/quantization_test.cpp.

usage: calibration_reference.py IN.safetensors OUT.json
IN holds `x` (float32 values of one batch). The histogram is |x| in 2048 bins on [0, max |x|]; OUT gets the
max, the 99.99 and 99.9 percentiles (lower edge of the bin where the cumulative count reaches them) and the
entropy ranges for 128 (signed) and 256 (unsigned) levels: the clipping bin i in [128, 2048] whose
distribution, the outliers folded into its last bin, differs least (KL) from its quantization to the levels
(each level's count spread evenly over its non-empty bins; bin 0 first takes bin 1's count).
"""
import json
import sys

import numpy as np
import safetensors.numpy

x = np.abs(safetensors.numpy.load_file(sys.argv[1])["x"].astype(np.float64))
top = float(x.max())
hist, edges = np.histogram(x, bins=2048, range=(0.0, top))


def percentile(p):
    cdf = np.cumsum(hist) / hist.sum()
    return float(edges[max(int(np.searchsorted(cdf, p / 100.0)), 1)])


def entropy(levels):
    bins = hist.astype(np.float64).copy()
    bins[0] = bins[1]
    best, best_i = np.inf, len(bins)
    for i in range(128, len(bins) + 1):
        p = bins[:i].copy()
        p[-1] += bins[i:].sum()
        chunk = (np.arange(i) * levels) // i
        nonzero = bins[:i] != 0
        sums = np.bincount(chunk[nonzero], weights=bins[:i][nonzero], minlength=levels)
        counts = np.bincount(chunk[nonzero], minlength=levels)
        q = np.where(nonzero, sums[chunk] / np.maximum(counts[chunk], 1), 0.0)
        p, q = p / p.sum(), q / q.sum()
        mask = p > 0
        if np.any(q[mask] == 0):
            continue
        kl = float(np.sum(p[mask] * np.log(p[mask] / q[mask])))
        if kl <= best:
            best, best_i = kl, i
    return float(edges[best_i])


json.dump({"max": top, "percentile_99.99": percentile(99.99), "percentile_99.9": percentile(99.9),
           "entropy_signed": entropy(128), "entropy_unsigned": entropy(256), "bin_width": float(edges[1])},
          open(sys.argv[2], "w"))
