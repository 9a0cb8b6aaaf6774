"""Reference optimizer and learning-rate trajectories written from docs/recipes.md in float64 NumPy.
Objective: sum(a * w^2 + b * sin(w)), gradient 2 a w + b cos(w). Reads the C++ side's initial weights and
cases, writes each case's per-step learning rates and weights after every step."""
import json
import math
import sys

import numpy as np
import safetensors.numpy


def lr_at(s, step):
    if step < s["warmup"]:
        return s["base"] * step / s["warmup"]
    t = step - s["warmup"] if s["after_warmup"] else step
    if s["kind"] == "cosine":
        return s["base"] * 0.5 * (1 + math.cos(math.pi * min(t, s["T"]) / s["T"]))
    if s["kind"] == "step":  # tf.train.piecewise_constant
        i = 0
        while i < len(s["boundaries"]) and t > s["boundaries"][i]:
            i += 1
        return s["base"] * s["multipliers"][i]
    if s["kind"] == "exponential":
        return s["base"] * 0.97 ** math.floor(t / s["interval"])
    raise ValueError(s["kind"])


def run(case, w0, a, b, steps):
    w = w0.copy()
    state = [np.zeros_like(w), np.zeros_like(w)]
    wd, out_w, out_lr = case["weight_decay"], [], []
    for step in range(steps):
        lr = lr_at(case["schedule"], step)
        g = 2 * a * w + b * np.cos(w)
        if case["optimizer"] == "sgd":  # TF1 momentum: accum = m accum + g; w -= lr accum (L2 in g)
            g = g + wd * w
            state[0] = case["momentum"] * state[0] + g
            w = w - lr * state[0]
        elif case["optimizer"] == "rmsprop":  # Keras: eps inside the sqrt, ms from zeros
            g = g + wd * w
            state[0] = case["rho"] * state[0] + (1 - case["rho"]) * g * g
            state[1] = case["momentum"] * state[1] + lr * g / np.sqrt(state[0] + case["epsilon"])
            w = w - state[1]
        elif case["optimizer"] == "adamw":  # torch.optim.AdamW
            t = step + 1
            w = w * (1 - lr * wd)
            state[0] = 0.9 * state[0] + 0.1 * g
            state[1] = 0.999 * state[1] + 0.001 * g * g
            denom = np.sqrt(state[1]) / math.sqrt(1 - 0.999 ** t) + 1e-8
            w = w - lr / (1 - 0.9 ** t) * state[0] / denom
        out_w.append(w.copy())
        out_lr.append(lr)
    return np.stack(out_w), np.array(out_lr)


def main():
    data = safetensors.numpy.load_file(sys.argv[1])
    with open(sys.argv[1] + ".json") as f:
        cases = json.load(f)
    out = {}
    for name, case in cases.items():
        out[name + ".w"], out[name + ".lr"] = run(case, data["w0"], data["a"], data["b"], case["steps"])
    safetensors.numpy.save_file(out, sys.argv[2])


if __name__ == "__main__":
    main()
