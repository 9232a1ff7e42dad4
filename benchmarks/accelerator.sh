#!/usr/bin/env bash
# One command for a machine with a GPU or a TPU: install, measure, write one results file.
#
#   bash benchmarks/accelerator.sh          # NVIDIA GPU: the project with its cuda extra
#   bash benchmarks/accelerator.sh tpu      # TPU: the project with jax[tpu]
#
# Creates a virtual environment (VENV, default .venv-accelerator; an existing one is reused),
# installs the project into it with the accelerator's JAX and the test extra (gensim's test data
# holds SimLex-999), then runs benchmarks/bench_accelerator.py with a time budget of what is left
# of TOTAL_S seconds (default 480) after the installation, so that the whole command stays within
# it. Writes benchmarks/results/accelerator_<date>.json and .md and prints the Markdown.
# SKIP_INSTALL=1 uses the python of an existing VENV as it is (a machine without network access).
set -euo pipefail

kind="${1:-cuda}"
cd "$(dirname "$0")/.."
total="${TOTAL_S:-480}"
venv="${VENV:-.venv-accelerator}"

# the jax bound of pyproject.toml, so that the TPU wheels stay within it as the cuda extra does
jax_bound="$(grep -o '"jax>=[^"]*"' pyproject.toml | head -n 1 | tr -d '"')"
jax_bound="${jax_bound#jax}"
case "$kind" in
    cuda) packages=(-e ".[cuda,test]") ;;
    tpu) packages=(-e ".[test]" "jax[tpu]${jax_bound}"
                   -f https://storage.googleapis.com/jax-releases/libtpu_releases.html) ;;
    *) echo "accelerator.sh: unknown accelerator '$kind'; use cuda or tpu" >&2; exit 2 ;;
esac

if [[ "${SKIP_INSTALL:-0}" != 1 ]]; then
    [[ -x "$venv/bin/python" ]] || python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --upgrade pip
    "$venv/bin/python" -m pip install --quiet "${packages[@]}"
elif [[ ! -x "$venv/bin/python" ]]; then
    echo "accelerator.sh: SKIP_INSTALL=1 but $venv/bin/python does not exist" >&2
    exit 2
fi

backend="$("$venv/bin/python" -c 'import jax; print(jax.default_backend())')"
if [[ "$backend" == cpu ]]; then
    echo "accelerator.sh: JAX sees no $kind device (backend cpu); measuring on the CPU anyway" >&2
fi

budget=$(( total - SECONDS - 15 ))  # 15 s for the report after the budget
if (( budget < 60 )); then
    echo "accelerator.sh: only ${budget} s of the ${total} s left after installing; running with 60 s" >&2
    budget=60
fi
out="benchmarks/results/accelerator_$(date -u +%Y-%m-%d)"
echo "accelerator.sh: installed in ${SECONDS} s; measuring on ${backend} for at most ${budget} s" >&2
"$venv/bin/python" benchmarks/bench_accelerator.py --budget "$budget" --out "$out"
echo "accelerator.sh: wrote ${out}.json and ${out}.md in ${SECONDS} s" >&2
