"""VaMoH completion against trivial fills (issue 10): training with logged KL terms, hidden-pixel PSNR.

The masks are the demo's (VaMoH Sec. 4.3, Fig. 9): the in-painting box ``[5, 5 + n // 3)^2`` hidden
(``box``), the left half kept (``half``), the central 14x14 square kept (``outpaint``). For each held-out
item the PSNR is computed on its hidden pixels only (values clamped to [0, 1], per item, then averaged),
for the model (the mixture mean under the prior weights ``pi(x, z)`` with ``z`` the posterior mean given
the kept pixels) and for three fills of the hidden pixels:

- ``zero``: black;
- ``mean``: the per-pixel mean of the training images;
- ``nearest``: the training image closest (MSE) to the item on the kept pixels.

The per-item mean is the headline (as the demo and the papers average per image); ``pooled`` beside it
is the PSNR of the squared error pooled over all hidden pixels of all items.

The training loop is ``benchmarks.common``'s protocol (Adam, the preset's learning rate and batch size,
seeded random batches, a budget of process CPU seconds or of steps) with the preset's gradient clipping,
and logs ``KL_z``, ``KL_c``, the reconstruction term and the held-out PSNR decoded from ``z`` (prior
weights) every ``log_every`` steps; ``mutual_information`` estimates ``I(z; x)`` of the aggregate
posterior (Hoffman & Johnson's ELBO surgery: ``E_x KL(q(z|x) || p(z)) - KL(q(z) || p(z))``, the second
term by Monte Carlo over the held-out items), so a collapse of ``z`` shows as ``I -> 0``.

Command line (experiments and the rows of ``bench_vamoh_completion``):

    python -m benchmarks.vamoh_completion --steps 1600 model.cat_logits=tanh --out /tmp/run.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from benchmarks.common import load_images
from inrgen.configs import apply_overrides, get_preset
from inrgen.configs.base import Preset
from inrgen.data.points import PointSet
from inrgen.metrics.completion import (
    COMPLETION_MASKS,
    completion_masks,
    hidden_psnr,
    pooled_psnr,
    trivial_fills,
)
from inrgen.metrics.psnr import psnr
from inrgen.models import build_model

__all__ = [
    "MASKS",
    "completion_masks",
    "trivial_fills",
    "evaluate_completion",
    "mutual_information",
    "train_logged",
    "main",
]

MASKS = COMPLETION_MASKS


def _decode_mean(model, context: PointSet, coords: Tensor, values: Tensor | None = None, batch: int = 50):
    """``decode(encode(context), coords).mean`` in chunks of ``batch`` items (bounded memory)."""
    out = []
    for s in range(0, context.batch_size, batch):
        sl = slice(s, s + batch)
        ctx = dataclasses.replace(context, coords=context.coords[sl], values=context.values[sl],
                                  mask=None if context.mask is None else context.mask[sl])  # fmt: skip
        v = None if values is None else values[sl]
        out.append(model.decode(model.encode(ctx), coords[sl], values=v).mean)
    return torch.cat(out)


@torch.no_grad()
def evaluate_completion(model, train_img: Tensor, test_img: Tensor) -> dict[str, Any]:
    """Hidden-pixel PSNR of the model and of the fills, per mask; plus reconstruction PSNR from z."""
    model.eval()
    shape = tuple(test_img.shape[-2:])
    test = PointSet.from_image(test_img)
    train_v = PointSet.from_image(train_img).values
    out: dict[str, Any] = {}
    rec = _decode_mean(model, test, test.coords)
    out["recon_psnr"] = float(psnr(rec, test.values, clamp=True).mean())
    rec_post = _decode_mean(model, test, test.coords, values=test.values)
    out["recon_psnr_posterior"] = float(psnr(rec_post, test.values, clamp=True).mean())
    out["flat_mean_colour_psnr"] = float(psnr(test.values.mean(1, keepdim=True).expand_as(test.values),
                                              test.values).mean())  # fmt: skip
    for name, keep in completion_masks(shape).items():
        pred = _decode_mean(model, test.with_mask(keep), test.coords)
        row = {"model": float(hidden_psnr(pred, test.values, keep).mean())}
        pooled = {"model": pooled_psnr(pred, test.values, keep)}
        for fname, f in trivial_fills(train_v, test.values, keep).items():
            row[fname] = float(hidden_psnr(f, test.values, keep).mean())
            pooled[fname] = pooled_psnr(f, test.values, keep)
        row["pooled"] = pooled
        row["best_fill"] = max(row[f] for f in ("zero", "mean", "nearest"))
        row["margin"] = row["model"] - row["best_fill"]
        out[name] = row
    return out


@torch.no_grad()
def mutual_information(model, images: Tensor, samples: int = 4) -> dict[str, float]:
    """``I(z; x)`` of the aggregate posterior over ``images``, and the mean ``KL(q(z|x) || N(0,I))``.

    ``I = E_x E_q(z|x)[log q(z|x) - log q(z)]`` with ``q(z) = mean_x q(z|x)`` estimated on the same items
    (a lower-biased estimate bounded by ``log n``)."""
    model.eval()
    q = model.encode(PointSet.from_image(images))
    z = q.sample((samples,))  # (S, n, dz)
    log_q_own = q.log_prob(z)  # (S, n)
    # log q(z_s,i | x_j) for all j
    mu, sd = q.mean, q.stddev
    lp = (
        torch.distributions.Normal(mu.unsqueeze(0).unsqueeze(0), sd.unsqueeze(0).unsqueeze(0))
        .log_prob(z.unsqueeze(2))
        .sum(-1)
    )  # (S, n, n)
    log_agg = lp.logsumexp(-1) - math.log(images.shape[0])
    mi = float((log_q_own - log_agg).mean())
    kl = float(torch.distributions.kl_divergence(
        torch.distributions.Normal(mu, sd), torch.distributions.Normal(0.0, 1.0)).sum(-1).mean())  # fmt: skip
    active = int((mu.var(0) > 0.01).sum())
    return {
        "mi_nats": mi,
        "mi_bound_log_n": math.log(images.shape[0]),
        "kl_std_nats": kl,
        "active_units": active,
    }


def train_logged(
    model,
    preset: Preset,
    images: Tensor,
    steps: int | None = None,
    budget_cpu_s: float | None = None,
    seed: int = 0,
    log_every: int = 100,
    probe: Tensor | None = None,
    log=print,
) -> dict[str, Any]:
    """Adam on seeded random batches for ``steps`` steps or ``budget_cpu_s`` CPU seconds, with the
    preset's gradient-norm clipping; logs the ELBO terms (and the probe PSNR from z) every ``log_every``."""
    if (steps is None) == (budget_cpu_s is None):
        raise ValueError("give exactly one of steps or budget_cpu_s")
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=preset.train.lr, betas=tuple(preset.train.betas))
    clip = getattr(preset.train, "grad_clip", None)
    model.train()
    history: list[dict[str, float]] = []
    acc: dict[str, float] = {}
    step = 0
    c0, w0 = time.process_time(), time.perf_counter()
    while True:
        if steps is not None and step >= steps:
            break
        if budget_cpu_s is not None and time.process_time() - c0 >= budget_cpu_s:
            break
        idx = torch.randint(0, len(images), (preset.data.batch_size,), generator=g)
        out = model.loss(PointSet.from_image(images[idx]), step)
        opt.zero_grad(set_to_none=True)
        out["loss"].backward()
        gn = torch.nn.utils.clip_grad_norm_(model.parameters(), clip if clip else float("inf"))
        opt.step()
        for key in ("loss", "recon", "kl_z", "kl_c", "psnr", "keep_rate"):
            acc[key] = acc.get(key, 0.0) + float(out[key])
        acc["grad_norm"] = acc.get("grad_norm", 0.0) + float(gn)
        step += 1
        if step % log_every == 0:
            row = {k: v / log_every for k, v in acc.items()}
            row.update(step=step, cpu_s=time.process_time() - c0)
            if probe is not None:
                with torch.no_grad():
                    model.eval()
                    ps = PointSet.from_image(probe)
                    row["probe_psnr_z"] = float(psnr(model.decode(model.encode(ps), ps.coords).mean,
                                                     ps.values, clamp=True).mean())  # fmt: skip
                    for name, keep in completion_masks(tuple(probe.shape[-2:])).items():
                        pred = model.decode(model.encode(ps.with_mask(keep)), ps.coords).mean
                        row[f"probe_{name}"] = float(hidden_psnr(pred, ps.values, keep).mean())
                    model.train()
            history.append(row)
            log(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))
            acc = {}
    model.eval()
    return {"steps": step, "cpu_s": time.process_time() - c0, "wall_s": time.perf_counter() - w0,
            "history": history}  # fmt: skip


def _other_moments(model, train_img: Tensor, test_img: Tensor) -> dict[str, Any]:
    """The completion table again with the other logistic mixture moments (location vs exact mean)."""
    cfg = getattr(model, "config", None)
    if getattr(cfg, "likelihood", "") != "discretized_logistic":
        return {}
    old = cfg.logistic_moments
    cfg.logistic_moments = "exact" if old == "location" else "location"
    try:
        return {f"completion_{cfg.logistic_moments}_moments": evaluate_completion(model, train_img, test_img)}
    finally:
        cfg.logistic_moments = old


def run_one(
    preset_name: str,
    overrides: list[str],
    steps: int | None,
    budget_cpu_s: float | None,
    seed: int = 0,
    source: str | None = None,
    n_test: int = 500,
    log_every: int = 100,
) -> dict[str, Any]:
    """Train one configuration and evaluate its completions; returns everything as a dict."""
    p = apply_overrides(get_preset(preset_name), list(overrides))
    src = source or p.data.source
    opts = dict(p.data.options or {})
    train_img = load_images(src, "train", None, **opts)
    test_img = load_images(src, "test", n_test, **opts)
    torch.manual_seed(seed)
    model = build_model(p.model, p.model_config)
    stats = train_logged(model, p, train_img, steps, budget_cpu_s, seed, log_every, probe=test_img[::10])
    res = {
        "preset": preset_name,
        "overrides": overrides,
        "source": src,
        "seed": seed,
        **{k: v for k, v in stats.items() if k != "history"},
        "completion": evaluate_completion(model, train_img, test_img),
        **_other_moments(model, train_img, test_img),
        "latent": mutual_information(model, test_img[::2]),
        "history": stats["history"],
    }
    return res, model


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", default="vamoh-mnist-small")
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--budget", type=float, default=None, help="process CPU seconds")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--source", default=None)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--log-every", type=int, default=100)
    ap.add_argument("--out", default=None, help="JSON file for the results")
    ap.add_argument("--save", default=None, help="folder for the trained model")
    ap.add_argument("overrides", nargs="*")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    if a.steps is None and a.budget is None:
        a.steps = get_preset(a.preset).train.max_steps
    res, model = run_one(a.preset, a.overrides, a.steps, a.budget, a.seed, a.source, log_every=a.log_every)
    c = res["completion"]
    print(
        f"recon from z {c['recon_psnr']:.2f} dB, with pi~ {c['recon_psnr_posterior']:.2f} dB; "
        f"latent {res['latent']}"
    )
    for m in MASKS:
        r = c[m]
        print(f"  {m:9s} model {r['model']:6.2f}  zero {r['zero']:6.2f}  mean {r['mean']:6.2f}  "
              f"nearest {r['nearest']:6.2f}  margin {r['margin']:+.2f}")  # fmt: skip
    for key in [k for k in res if k.startswith("completion_")]:
        c2 = res[key]
        print(
            f"{key}: recon {c2['recon_psnr']:.2f}; "
            + ", ".join(f"{m} {c2[m]['model']:.2f} ({c2[m]['margin']:+.2f})" for m in MASKS)
        )
    if a.out:
        Path(a.out).write_text(json.dumps(res, indent=1))
    if a.save:
        model.save_pretrained(a.save)
    return 0


if __name__ == "__main__":
    sys.exit(main())
