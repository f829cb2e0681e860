#!/usr/bin/env bash
# The wheels a lent GPU machine lacks, downloaded here into .whl/ (ignored by git) for
# benchmarks/gpu_session.sh to carry there. The device image (see the device tool's KINDS.md)
# has torch, transformers, tokenizers, safetensors, numpy, pyarrow, scikit-learn and pytest but
# none of transformer-lens (and the datasets library it imports), nor this project; the UI
# stack (dash, plotly, ipywidgets) and nnsight are not needed for the GPU checks.
#   benchmarks/gpu_wheels.sh      # then: device run with carry [".whl"]
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
rm -rf .whl && mkdir -p .whl
platforms=()
for p in manylinux_2_28_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64; do
  platforms+=(--platform "$p")
done
# pinned to the versions the tests pass with here (within pyproject.toml's ranges)
read -ra pins < <(python3 -c 'import importlib.metadata as m; print(" ".join(
  f"{n}=={m.version(n)}" for n in ("transformer-lens", "datasets", "dill", "multiprocess")))')
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
  --implementation cp "${platforms[@]}" -d .whl "${pins[@]}"
# this project as a wheel: its entry points register the CLI's subcommands there; the modules
# themselves are imported from the carried working tree (the current directory comes first)
# (built from a clean copy of HEAD, so no build/ or *.egg-info is left in the tree)
src="$(mktemp -d)"
git archive HEAD | tar -x -C "$src"
python3 -m pip wheel -q --no-deps --no-build-isolation -w .whl "$src"
rm -rf "$src"
ls -la .whl
du -sh .whl
