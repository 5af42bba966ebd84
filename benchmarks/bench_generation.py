"""Generation metrics of VaMoH Tables 1 and 4 (and Figs. 15, 17): VaMoH vs GASP vs Functa + flow.

Protocol (one table per data set and resolution):

1. Training at an equal budget of process CPU seconds (one torch thread, seeded batches of the real
   training images; the conventions of ``common.py``), each model with its own procedure:
   ``vamoh-mnist-small`` (Adam on the ELBO; N(0, I) prior for the first 60% of the budget, then the flow,
   as the preset's 1000 of 1600 steps), ``gasp-mnist-small`` (alternating discriminator / generator
   Adam steps, betas (0.5, 0.999), lr 2e-4 / 8e-4, R1 10) and ``functa-flow-mnist-small`` (meta-learning
   for the first 60%, then the INR frozen and a RealNVP flow fitted to the functaset, the preset's 1500 of
   2500 steps). The switch happens at the step where 60% of the budget is spent.
2. Five independent sets of ``n`` uncurated samples per model (seeds 0-4), decoded at the original
   28 x 28 grid (x1) and at 56 x 56 (x2, the same latents' functions on a finer grid).
3. FID, improved precision and recall (Kynkaenniemi et al. 2019, k = 3) of each set against the
   InceptionV3 pool3 features of real training images (tr) and of real test images (tst), reported as
   mean +- std over the five sets. Features: ``inrgen.metrics.fid.InceptionV3Features`` (TF-FID input:
   8-bit, grey repeated to RGB, TF1 bilinear resize to 299); the real images are at 28 x 28 for both
   resolutions (Inception resizes everything to 299).
4. Trivial baselines on the same features: held-out real images as a "model" (the floor a perfect
   generator reaches at this ``n``) and a Gaussian fitted to the training pixels (mean and full
   covariance, clipped to [0, 1]; at x2 its samples are bilinearly upsampled). A model that loses to
   the Gaussian is reported as losing.
5. PNG grids of uncurated samples (rows: real test images, VaMoH, GASP, Functa, Gaussian) at x1 and x2.

FID from a few hundred samples is biased upwards (the paper uses thousands): compare models at equal
``n`` only, never with the paper's numbers, which come from GPU training on CelebA-HQ, Shapes3D and
PolyMNIST for hundreds of epochs (``PAPER_TABLE4`` sits beside ours for the orderings).

Profiles: tiny (seconds, MNIST, a random-projection feature extractor: checks the pipeline only), quick
(40 CPU s per model, MNIST, 5 sets of 30, 150 real tr / tst images; about 6.5 CPU min), full (600 CPU s per
model, MNIST and Fashion-MNIST, 5 sets of 300, 1000 real tr / tst images; about 2.5 CPU h, 29,000 Inception
passes at 0.17 CPU s). Trained models and real features are cached in ``benchmarks/cache``.

``run(quick, out_dir)`` writes ``bench_generation.json``, ``bench_generation.md`` and the grids
``bench_generation_<data>_x1.png`` / ``_x2.png`` into ``out_dir``.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from benchmarks.common import (
    CACHE,
    RESULTS,
    TINY_ENV,
    build,
    load_images,
    machine_info,
    md_table,
    write_outputs,
)
from inrgen import tasks
from inrgen.configs.base import Preset, config_to_dict
from inrgen.data.points import PointSet
from inrgen.metrics.fid import InceptionV3Features, extract_features, fid_from_features, tf_bilinear_resize
from inrgen.metrics.precision_recall import precision_recall
from inrgen.metrics.timing import num_threads
from inrgen.models.base import INRModel
from inrgen.training.adversarial import DISC_LR_RATIO

__all__ = ["run", "GEN_PROFILES", "MODELS", "DATASETS", "PAPER_TABLE4", "train_budget"]

MODELS = {"VaMoH": "vamoh-mnist-small", "GASP": "gasp-mnist-small", "Functa": "functa-flow-mnist-small"}
DATASETS = {"MNIST": "mnist", "Fashion-MNIST": "fashion-mnist"}
SWITCH = 0.6  # fraction of the budget before VaMoH's flow phase and Functa's flow stage
PROTOCOL = "generation-v1"  # part of the cache key

# VaMoH Table 4 (tr / tst rows): FID, precision, recall; "-" where the paper gives none.
PAPER_TABLE4 = {
    "CelebA-HQ": {
        "GASP": {"tr": (14.01, 0.81, 0.43), "tst": (17.8, 0.83, 0.42)},
        "Functa": {"tr": (40.40, None, None), "tst": (None, None, None)},
        "VaMoH": {"tr": (66.27, 0.65, 0.0), "tst": (72.14, 0.43, 0.0)},
    },
    "Shapes3D": {
        "GASP": {"tr": (118.66, 0.01, 0.16), "tst": (119.35, 0.01, 0.16)},
        "Functa": {"tr": (57.81, 0.06, 0.13), "tst": (58.3, 0.07, 0.13)},
        "VaMoH": {"tr": (56.25, 0.08, 0.64), "tst": (56.63, 0.09, 0.63)},
    },
}


@dataclasses.dataclass(frozen=True)
class GenProfile:
    name: str
    train_cpu_s: float  # training budget per model and data set (process CPU seconds, one thread)
    n_sample: int  # samples per set
    n_sets: int  # independent sample sets
    n_real: int  # real training (tr) and test (tst) images embedded
    datasets: tuple[str, ...]
    inception: bool  # False: a random projection of the pixels (the tiny profile checks the pipeline)
    n_grid: int = 10  # samples per row of the PNG grids


GEN_PROFILES = {
    "tiny": GenProfile("tiny", 1.5, 12, 5, 24, ("MNIST",), False, 6),
    "quick": GenProfile("quick", 40.0, 30, 5, 150, ("MNIST",), True),
    "full": GenProfile("full", 600.0, 300, 5, 1000, ("MNIST", "Fashion-MNIST"), True),
}


def gen_profile(quick: bool) -> GenProfile:
    import os

    if os.environ.get(TINY_ENV, "") not in ("", "0"):
        return GEN_PROFILES["tiny"]
    return GEN_PROFILES["quick" if quick else "full"]


# ------------------------------------------------------------------------------------------ training


def train_budget(
    model: INRModel, preset: Preset, images: torch.Tensor, budget_cpu_s: float, seed: int = 0
) -> dict[str, Any]:
    """Train ``model`` with its own procedure on random batches of ``images`` for ``budget_cpu_s``."""
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    t, cfg = preset.train, model.config
    betas = tuple(t.betas)
    if preset.model == "gasp":
        dlr = cfg.disc_lr if cfg.disc_lr is not None else DISC_LR_RATIO * t.lr
        opt_g = torch.optim.Adam(model.generator_parameters(), lr=t.lr, betas=betas)
        opt_d = torch.optim.Adam(model.discriminator_parameters(), lr=dlr, betas=betas)
    elif preset.model == "functa":
        cfg.flow_start_step = 10**12  # set to the step at SWITCH x budget below
        flow = {id(p) for p in model.prior_parameters()}
        rest = [p for p in model.parameters() if id(p) not in flow]
        flow_lr = cfg.flow_lr if cfg.flow_lr is not None else t.lr
        groups = [{"params": rest, "lr": t.lr}, {"params": model.prior_parameters(), "lr": flow_lr}]
        opt = torch.optim.Adam(groups, betas=betas)
    else:  # VaMoH
        cfg.warmup_steps = 10**12
        opt = torch.optim.Adam(model.parameters(), lr=t.lr, betas=betas)
    model.train()
    step, switched, last = 0, None, {}
    first: dict[str, float] = {}
    c0, w0 = time.process_time(), time.perf_counter()
    while time.process_time() - c0 < budget_cpu_s:
        if switched is None and time.process_time() - c0 >= SWITCH * budget_cpu_s:
            switched = step
            if preset.model == "functa":
                cfg.flow_start_step = step
            elif preset.model == "vamoh":
                cfg.warmup_steps = step
        idx = torch.randint(0, len(images), (preset.data.batch_size,), generator=g)
        batch = PointSet.from_image(images[idx])
        if preset.model == "gasp":
            pts = model.prepare_batch(batch)
            d = model.discriminator_loss(pts)
            opt_d.zero_grad(set_to_none=True)
            d["d_loss"].backward()
            opt_d.step()
            gl = model.generator_loss(pts)
            opt_g.zero_grad(set_to_none=True)
            gl["g_loss"].backward()
            opt_g.step()
            terms = {**d, **gl}
        else:
            terms = model.loss(batch, step)
            opt.zero_grad(set_to_none=True)
            terms["loss"].backward()
            opt.step()
        last = {k: float(v.detach().float().mean()) for k, v in terms.items()}
        if not first:
            first = dict(last)
        step += 1
    if preset.model in ("functa", "vamoh") and switched is None:  # the budget ended before the switch
        if preset.model == "functa":
            cfg.flow_start_step = step
        else:
            cfg.warmup_steps = step
    model.eval()
    return {
        "steps": step,
        "switch_step": switched,
        "cpu_s": time.process_time() - c0,
        "wall_s": time.perf_counter() - w0,
        "first_terms": first,
        "final_terms": last,
    }


def _key(*parts: Any) -> str:
    return hashlib.sha1(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:12]


def trained_model(label: str, data: str, images: torch.Tensor, budget: float, seed: int = 0):
    """The model of ``MODELS[label]`` trained on ``images`` (from ``benchmarks/cache`` when there)."""
    model, preset = build(MODELS[label], seed=seed)
    key = _key(PROTOCOL, config_to_dict(preset.model_config), preset.train.lr, budget, seed, len(images))
    folder = CACHE / f"gen-{label.lower()}-{data}-{key}"
    stats_file = folder / "train_stats.json"
    if stats_file.is_file():
        try:
            stats = json.loads(stats_file.read_text())
            return INRModel.from_pretrained(folder).eval(), {**stats, "cached": True}
        except Exception as err:  # a stale or broken entry: train again
            print(f"  cache {folder.name} unusable ({err}); training again")
    stats = train_budget(model, preset, images, budget, seed)
    stats.update({"preset": preset.name, "params": model.num_parameters(), "budget_cpu_s": budget})
    model.save_pretrained(folder)
    stats_file.write_text(json.dumps(stats, indent=2))
    return model, {**stats, "cached": False}


# ------------------------------------------------------------------------------------------ samples


@torch.no_grad()
def model_samples(model: INRModel, n: int, size: int, seed: int, chunk: int = 200) -> torch.Tensor:
    """``n`` samples ``(n, 1, size, size)`` in [0, 1]: the prior's functions decoded on a size^2 grid."""
    out = []
    g = torch.Generator().manual_seed(seed)
    for s in range(0, n, chunk):
        m = min(chunk, n - s)
        pred = tasks.generate(model, m, shape=(size, size), generator=g, chunk_size=65536)
        out.append(tasks.as_grid(pred.mean, (size, size)).clamp(0, 1))
    return torch.cat(out)


class PixelGaussian:
    """The trivial generator: ``N(mean, cov)`` of the training pixels, clipped to [0, 1]."""

    def __init__(self, images: torch.Tensor) -> None:
        x = images.flatten(1).double()
        self.shape = images.shape[1:]
        self.mean = x.mean(0)
        cov = torch.cov(x.T) + 1e-6 * torch.eye(x.shape[1], dtype=torch.float64)
        self.chol = torch.linalg.cholesky(cov)

    def sample(self, n: int, size: int, seed: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        eps = torch.randn(n, self.mean.numel(), generator=g, dtype=torch.float64)
        x = (self.mean + eps @ self.chol.T).float().clamp(0, 1).reshape(n, *self.shape)
        if size != self.shape[-1]:
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
        return x


class RandomProjection:
    """The tiny profile's stand-in for Inception: a fixed Gaussian projection of 28 x 28 pixels."""

    name = "random-projection-64"

    def __init__(self, dim: int = 64) -> None:
        self.w = torch.randn(28 * 28, dim, generator=torch.Generator().manual_seed(0)) / 28.0

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        x = images.float()
        if x.shape[-1] != 28:
            x = tf_bilinear_resize(x, (28, 28))
        return x.mean(1).flatten(1) @ self.w


def _extractor(prof: GenProfile):
    if prof.inception:
        net = InceptionV3Features()
        net.name = "inception-v3-pool3-tf"  # type: ignore[attr-defined]
        return net
    return RandomProjection()


def real_features(extractor, data: str, split: str, n: int) -> torch.Tensor:
    """Features of ``n`` real images of a split (spread over it), cached."""
    name = getattr(extractor, "name", type(extractor).__name__)
    path = CACHE / f"gen-features-{data}-{split}-{n}-{name}.pt"
    if path.is_file():
        return torch.load(path, weights_only=True)
    feats = extract_features(load_images(data, split, n), extractor, batch_size=50)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(feats, path)
    return feats


def set_metrics(sets: list[torch.Tensor], real: dict[str, torch.Tensor]) -> dict[str, Any]:
    """FID / precision / recall (k = 3) of each feature set against each real set: mean, std, values."""
    out: dict[str, Any] = {}
    for ref, feats in real.items():
        vals = {"fid": [], "precision": [], "recall": []}
        for f in sets:
            vals["fid"].append(fid_from_features(feats, f))
            p, r = precision_recall(feats, f, k=3)
            vals["precision"].append(p)
            vals["recall"].append(r)
        out[ref] = {
            k: {
                "mean": float(torch.tensor(v).mean()),
                "std": float(torch.tensor(v).std()) if len(v) > 1 else 0.0,
                "values": v,
            }
            for k, v in vals.items()
        }
    return out


# ------------------------------------------------------------------------------------------ the run


def run(quick: bool = True, out_dir: Path = RESULTS) -> dict[str, Any]:
    prof = gen_profile(quick)
    out_dir = Path(out_dir)
    results: dict[str, Any] = {
        "profile": prof.name,
        "settings": dataclasses.asdict(prof),
        "switch_fraction": SWITCH,
        "machine": machine_info(),
        "datasets": {},
        "paper_table4": PAPER_TABLE4,
    }
    with num_threads(1):
        extractor = _extractor(prof)
        results["features"] = getattr(extractor, "name", "?")
        for dname in prof.datasets:
            results["datasets"][dname] = evaluate_dataset(dname, prof, extractor, out_dir)
    write_outputs(out_dir, "bench_generation", results, markdown(results))
    return results


def evaluate_dataset(dname: str, prof: GenProfile, extractor, out_dir: Path) -> dict[str, Any]:
    """Train the three models on one data set, score their sample sets and the baselines, draw grids."""
    from inrgen.training.outputs import save_grid

    data = DATASETS[dname]
    train = load_images(data, "train")
    real = {
        "tr": real_features(extractor, data, "train", prof.n_real),
        "tst": real_features(extractor, data, "test", prof.n_real),
    }
    test_imgs = load_images(data, "test", prof.n_real)
    entry: dict[str, Any] = {"n_train": len(train), "n_real": {k: len(v) for k, v in real.items()}}
    shown = test_imgs[[(j * len(test_imgs)) // prof.n_grid for j in range(prof.n_grid)]]  # all classes
    grids = {r: [_resize(shown, 28 * r)] for r in (1, 2)}
    # the floor: held-out real images (as many as one sample set) scored against the training features
    floor = test_imgs[: min(prof.n_sample, len(test_imgs))]
    rows: dict[str, Any] = {
        "real (held-out)": {
            f"x{r}": set_metrics(
                [extract_features(_resize(floor, 28 * r), extractor, 50)], {"tr": real["tr"]}
            )
            for r in (1, 2)
        }
    }
    samplers: dict[str, Any] = {}
    for label in MODELS:
        print(f"  {dname}: training {label} for {prof.train_cpu_s:g} CPU s")
        model, stats = trained_model(label, data, train, prof.train_cpu_s)
        rows[label] = {"train": stats}
        samplers[label] = lambda n, size, seed, m=model: model_samples(m, n, size, seed)
    gauss = PixelGaussian(train)
    rows["Gaussian (pixels)"] = {}
    samplers["Gaussian (pixels)"] = gauss.sample
    for label, sampler in samplers.items():
        for res in (1, 2):
            sets = []
            for s in range(prof.n_sets):
                imgs = sampler(prof.n_sample, 28 * res, seed=s)
                if s == 0:
                    grids[res].append(imgs[: prof.n_grid])
                sets.append(extract_features(imgs, extractor, batch_size=50))
            rows[label][f"x{res}"] = set_metrics(sets, real)
    for res in (1, 2):
        png = out_dir / f"bench_generation_{data}_x{res}.png"
        save_grid(png, torch.cat(grids[res]), nrow=prof.n_grid)
        entry[f"grid_x{res}"] = png.name
    entry["rows"] = rows
    entry["reading"] = reading(rows)
    return entry


def _resize(images: torch.Tensor, size: int) -> torch.Tensor:
    if images.shape[-1] == size:
        return images
    return F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)


def reading(rows: dict[str, Any]) -> dict[str, Any]:
    """What agrees with the paper's orderings, per resolution (FID and recall against tr)."""
    models = [m for m in MODELS if m in rows]
    out: dict[str, Any] = {}
    for res in ("x1", "x2"):
        fid = {m: rows[m][res]["tr"]["fid"]["mean"] for m in models}
        rec = {m: rows[m][res]["tr"]["recall"]["mean"] for m in models}
        gfid = rows["Gaussian (pixels)"][res]["tr"]["fid"]["mean"]
        out[res] = {
            "lowest_fid": min(fid, key=fid.get),
            "highest_recall": max(rec, key=rec.get),
            "gasp_lowest_fid (paper: PolyMNIST, CelebA-HQ)": min(fid, key=fid.get) == "GASP",
            "vamoh_highest_recall (paper: Shapes3D)": max(rec, key=rec.get) == "VaMoH",
            "lose_to_gaussian_fid": [m for m in models if fid[m] >= gfid],
        }
    return out


def _pm(d: dict[str, Any], digits: int) -> str:
    if len(d.get("values", [])) <= 1:
        return f"{d['mean']:.{digits}f}"
    return f"{d['mean']:.{digits}f} ± {d['std']:.{digits}f}"


def markdown(r: dict[str, Any]) -> str:
    m, s = r["machine"], r["settings"]
    lines = [
        "# Generation: VaMoH vs GASP vs Functa + flow (VaMoH Tables 1 and 4 at CPU scale)",
        "",
        f"Profile `{r['profile']}`: {s['train_cpu_s']:g} CPU s of training per model (one torch thread; "
        f"VaMoH's flow phase and Functa's flow stage start at {int(100 * r['switch_fraction'])}% of it); "
        f"{s['n_sets']} sets of {s['n_sample']} uncurated samples per model; features: {r['features']}; "
        f"real embeddings: {s['n_real']} training (tr) and {s['n_real']} test (tst) images. "
        f"{m['cpu']} ({m['cores']} cores), torch {m['torch']}, load average "
        f"{', '.join(f'{x:.1f}' for x in m.get('load_average', []))} at the start.",
        "Command: `python -m benchmarks.run --only generation` (`--quick`, `--full`).",
        "",
        "FID over a few hundred samples is biased upwards: compare rows of one table only. "
        "'real (held-out)' is the floor (real test images scored as samples), 'Gaussian (pixels)' the "
        "trivial generator (a full-covariance Gaussian on pixels); a model above its FID loses to it.",
        "",
    ]
    for dname, e in r["datasets"].items():
        for res in ("x1", "x2"):
            size = 28 * int(res[1])
            lines += [f"## {dname}, {res} ({size}x{size})", ""]
            rows = []
            for label, row in e["rows"].items():
                for ref in ("tr", "tst"):
                    mt = row[res].get(ref)
                    if mt is None:
                        continue
                    train = row.get("train", {})
                    steps = f"{train['steps']}" if train else "-"
                    rows.append([f"{label} ({ref})", _pm(mt["fid"], 1), _pm(mt["precision"], 3),
                                 _pm(mt["recall"], 3), steps])  # fmt: skip
            lines.append(md_table(["model", "FID ↓", "precision ↑", "recall ↑", "train steps"], rows))
            rd = e["reading"][res]
            lines += [
                "",
                f"Lowest FID (tr): **{rd['lowest_fid']}**; highest recall (tr): **{rd['highest_recall']}**. "
                f"Paper orderings: GASP lowest FID on PolyMNIST and CelebA-HQ "
                f"({'agrees' if rd['gasp_lowest_fid (paper: PolyMNIST, CelebA-HQ)'] else 'does not agree'}); "
                f"VaMoH highest recall on Shapes3D "
                f"({'agrees' if rd['vamoh_highest_recall (paper: Shapes3D)'] else 'does not agree'}). "
                f"Losing to the pixel Gaussian on FID: {', '.join(rd['lose_to_gaussian_fid']) or 'none'}.",
                "",
                f"![{dname} {res}]({e[f'grid_{res}']})  (rows: real test, {', '.join(MODELS)}, Gaussian)",
                "",
            ]
    lines += ["## Paper (VaMoH Table 4, GPU, full data sets; for the orderings only)", ""]
    prow = []
    for data, models in PAPER_TABLE4.items():
        for label, refs in models.items():
            for ref, (f, p, rc) in refs.items():
                fmt = lambda v, d: "-" if v is None else f"{v:.{d}f}"  # noqa: E731
                prow.append([data, f"{label} ({ref})", fmt(f, 2), fmt(p, 2), fmt(rc, 2)])
    lines.append(md_table(["data", "model", "FID", "precision", "recall"], prow))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--quick", action="store_true")
    g.add_argument("--full", action="store_true")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--budget", type=float, help="training CPU seconds per model (overrides the profile)")
    ap.add_argument("--n-sample", type=int, help="samples per set")
    ap.add_argument("--sets", type=int, help="independent sample sets")
    ap.add_argument("--n-real", type=int, help="real tr / tst images embedded")
    ap.add_argument("--data", action="append", choices=list(DATASETS), help="data sets (repeatable)")
    args = ap.parse_args(argv)
    name = "full" if args.full else "quick"
    base = gen_profile(not args.full)
    custom = {
        "train_cpu_s": args.budget, "n_sample": args.n_sample, "n_sets": args.sets, "n_real": args.n_real,
        "datasets": tuple(args.data) if args.data else None,
    }  # fmt: skip
    custom = {k: v for k, v in custom.items() if v is not None}
    if custom:
        GEN_PROFILES[name] = dataclasses.replace(base, name=f"{base.name} (custom)", **custom)
    run(quick=not args.full, out_dir=args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
