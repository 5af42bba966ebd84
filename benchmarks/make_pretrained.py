"""Package a checkpoint trained by ``inrgen train`` as a shipped one (``src/inrgen/pretrained/<name>/``).

Copies ``config.json`` and ``model.safetensors`` (no optimiser state, no pickles) from the run's
checkpoint, measures the held-out numbers that ``tests/vamoh/test_pretrained.py`` re-measures (the
completion table of the demo on 100 and on 500 held-out items: reconstruction from ``z``, hidden-pixel
PSNR of each mask beside the zero / training-mean / nearest-item fills) into ``heldout.json``, and writes
``TRAINING.md`` with the command, the CPU time and those numbers:

    python -m benchmarks.make_pretrained RUN_FOLDER --name vamoh-mnist-small \\
        --command "OMP_NUM_THREADS=1 inrgen train vamoh-mnist-small --out run --max-steps 10000 ..." \\
        --cpu-seconds 1165
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import torch

from inrgen.checkpoint import load_config, load_model, resolve_folder
from inrgen.configs import get_preset
from inrgen.pretrained import ROOT
from inrgen.training.data import build_split
from inrgen.training.demo import completion_table

__all__ = ["main"]


def _table_md(t: dict) -> str:
    head = "| mask | VaMoH | zero fill | training-mean fill | nearest training digit | margin |"
    rows = [head, "|---|---|---|---|---|---|"]
    for key, label in (("box", "in-painting box"), ("half", "left half kept"), ("outpaint", "out-painting")):
        r = t[key]
        cells = [f"{r[c]:.2f}" for c in ("model", "zero", "mean", "nearest")]
        rows.append(f"| {label} | " + " | ".join(cells) + f" | {r['margin_db']:+.2f} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--name", required=True)
    ap.add_argument("--command", required=True, help="the exact inrgen train command")
    ap.add_argument("--cpu-seconds", type=float, required=True)
    ap.add_argument("--note", default="")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    src = resolve_folder(a.run)
    cfg = load_config(src)
    dst = ROOT / a.name
    dst.mkdir(parents=True, exist_ok=True)
    for f in ("config.json", "model.safetensors"):
        shutil.copyfile(src / f, dst / f)
    model = load_model(dst).eval()
    p = get_preset(cfg.get("preset", a.name))
    test, train = build_split(p.data, "test"), build_split(p.data, "train")
    t100 = completion_table(model, test, train, 100, p.train.seed)
    t500 = completion_table(model, test, train, 500, p.train.seed)
    steps = int(cfg.get("step", int(model.trained_steps) + 1))  # optimisation steps done
    record = {"steps": steps, "items_100": t100, "items_500": t500}
    (dst / "heldout.json").write_text(json.dumps(record, indent=1))
    md = f"""# {a.name}: a shipped checkpoint

Trained by the library's own command (one torch thread, {a.cpu_seconds / 60:.1f} CPU minutes, {steps} steps):

```
{a.command}
```

{a.note}

Held-out numbers on {t500['num_items']} MNIST test digits (the demo's table;
`tests/vamoh/test_pretrained.py` re-measures the 100-digit version in `heldout.json`): PSNR decoded
from z alone {t500['reconstruction_psnr_from_z']:.2f} dB, with the posterior mixture weights
{t500.get('reconstruction_psnr_posterior', float('nan')):.2f} dB. Completion, PSNR on the hidden pixels
only (dB):

{_table_md(t500)}

Files: `config.json` (the model's config), `model.safetensors` (weights). Load with
`inrgen.load("pretrained:{a.name}")`; every command that takes a checkpoint accepts `pretrained:{a.name}`.
"""
    (dst / "TRAINING.md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
