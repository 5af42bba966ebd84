"""Seed spread of ``bench_laginr``'s rows: the same protocol (budget in CPU seconds, one thread, 500 held-out
MNIST digits spread over the classes) with other seeds, which change the initialisation and the data order.

Usage::

    python -m benchmarks.laginr_seeds --model locality-aware --model IPC --seed 1 --seed 2

Each (model, seed) pair takes the budget (600 CPU s by default); run two processes for two cores. One JSON
line per pair is printed and appended to ``benchmarks/results/laginr_seeds.jsonl``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from benchmarks import bench_laginr as B
from benchmarks.common import build, heldout_psnr, spread, train_for
from inrgen.data.datasets import build_dataset


def run_one(name: str, seed: int, budget_s: float, n_test: int = 500) -> dict:
    preset_name, overrides = {**B.MODELS, **{k: ("laginr-mnist-small", v) for k, v in B.BANDWIDTHS.items()}}[
        name
    ]
    train = build_dataset("mnist", split="train")
    test = build_dataset("mnist", split="test")
    model, preset = build(preset_name, overrides, seed)
    row = train_for(model, preset, train.arrays(range(len(train))), budget_s, seed)
    row.update(heldout_psnr(model, test.arrays(spread(len(test), n_test))))
    return {"name": name, "seed": seed, "budget_cpu_s": budget_s, **row}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", action="append", required=True, help="a row name of bench_laginr")
    ap.add_argument("--seed", action="append", type=int, required=True)
    ap.add_argument("--budget", type=float, default=600.0, help="CPU seconds of training per run")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/laginr_seeds.jsonl"))
    args = ap.parse_args()
    known = {*B.MODELS, *B.BANDWIDTHS}
    bad = [m for m in args.model if m not in known]
    if bad:
        ap.error(f"unknown model(s) {bad}; choose from {sorted(known)}")
    torch.set_num_threads(1)
    for name in args.model:
        for seed in args.seed:
            line = json.dumps(run_one(name, seed, args.budget))
            print(line, flush=True)
            with args.out.open("a") as f:
                f.write(line + "\n")


if __name__ == "__main__":
    main()
