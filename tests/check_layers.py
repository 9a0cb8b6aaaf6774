"""Every #include "<folder>/..." in src/ points to the folder's own layer or one below it
(docs/architecture.md): util <- data, models <- cpu, dist <- run <- train, infer. cpu and dist, and train
and infer, never include each other. The link-time half of this is src/CMakeLists.txt's layer_check_* executables.

usage: check_layers.py SRC_DIR
"""
import os
import re
import sys

ALLOWED = {
    "util": {"util"},
    "data": {"data", "util"},
    "models": {"models", "util"},
    "cpu": {"cpu", "data", "models", "util"},
    "dist": {"dist", "models", "util"},
    "run": {"run", "cpu", "dist", "data", "models", "util"},
    "train": {"train", "run", "cpu", "dist", "data", "models", "util"},
    "infer": {"infer", "run", "cpu", "dist", "data", "models", "util"},
}

src = sys.argv[1]
include = re.compile(r'^\s*#\s*include\s+"([a-z_]+)/')
problems, checked = [], 0
for layer in sorted(os.listdir(src)):
    folder = os.path.join(src, layer)
    if not os.path.isdir(folder):
        continue
    if layer not in ALLOWED:
        problems.append(f"{layer}/: a folder that no layer rule covers (add it to tests/check_layers.py)")
        continue
    for name in sorted(os.listdir(folder)):
        if not name.endswith((".h", ".cpp", ".in")):
            continue
        with open(os.path.join(folder, name), encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                m = include.match(line)
                if not m:
                    continue
                checked += 1
                if m.group(1) not in ALLOWED[layer]:
                    problems.append(f"src/{layer}/{name}:{number}: {layer} includes {m.group(1)}/ ({line.strip()})")
for p in problems:
    print(p)
if problems or checked == 0:
    sys.exit(f"{len(problems)} include(s) against the layering" if problems else "no includes found")
print(f"{checked} includes in {src} follow the layering")
