"""Reference mixup / cutmix written from docs/recipes.md in NumPy, applied to the batch, partners,
lambdas and boxes the C++ side drew; compares with the C++ outputs. Exit status 0 when they agree."""
import sys

import numpy as np
import safetensors.numpy


def main():
    d = safetensors.numpy.load_file(sys.argv[1])
    x, labels = d["images"].astype(np.float64), d["labels"]
    k, eps = int(d["num_classes"][0]), float(d["eps"][0])
    partner, lam, box, cut = d["partner"], d["lambda"], d["box"].reshape(-1, 4), d["cut"].astype(bool)
    n, _, h, w = x.shape
    one_hot = np.eye(k)[labels]
    mixed, targets = np.empty_like(x), np.empty((n, k))
    for i in range(n):
        j = partner[i]
        if cut[i]:  # paste the partner's box; the label weight is this example's own remaining area
            x0, y0, x1, y1 = box[i]
            m = np.zeros((h, w))
            m[y0:y1, x0:x1] = 1.0
            mixed[i] = (1 - m) * x[i] + m * x[j]
            share = 1.0 - (x1 - x0) * (y1 - y0) / (h * w)
        else:  # x = lam * x + (1 - lam) * x_partner, same for the labels
            mixed[i] = lam[i] * x[i] + (1 - lam[i]) * x[j]
            share = lam[i]
        targets[i] = (1 - eps) * (share * one_hot[i] + (1 - share) * one_hot[j]) + eps / k
    err_x = np.abs(mixed - d["mixed"]).max()
    err_t = np.abs(targets - d["targets"]).max()
    print(f"max |diff| images {err_x:.2e}, targets {err_t:.2e}")
    sys.exit(0 if err_x < 1e-5 and err_t < 1e-6 else 1)


if __name__ == "__main__":
    main()
