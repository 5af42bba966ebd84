"""Held-out evaluation: per-item PSNR (mean and spread) and the model's loss terms on a test split.

For every held-out item the model encodes its observed points and decodes its targets (the item's own
points; the query views of a novel-view pair), and the PSNR of the item is

    PSNR_b = -10 log10( mean_{n,c} (clip(mean_bnc, 0, 1) - y_bnc)^2 )          (inrgen.metrics.psnr)

over its known points, for the predictive mean decoded from the latent alone (``psnr_*``). The models
of the IPC codebase (``UNCLAMPED_PSNR_MODELS``: the locality-aware INR, IPC, TransINR, Learned Init)
report PSNR on the *unclamped* output, as IPC's ``compute_loss`` does and the LA-GINR tables use, so
their ``psnr_*`` drop the clip; ``psnr_per_point_mean`` is VaMoH's Eq. 19-20 (squared error summed over
the ``C`` channels: ``10 log10(C)`` dB lower, 4.77 dB for RGB); every summary also holds both clampings
(``psnr_clamped_*`` and ``psnr_unclamped_*``) and names the headline one (``headline_psnr``). For mixture
models whose decoder also reads the observed values (VaMoH: the posterior weights ``pi~(x, y, z)`` of
Eq. 5, which the released code uses to reconstruct observed points), ``psnr_posterior_*`` is the same
with those weights; it is the paper's reconstruction PSNR, and it says little about the latent when the
components are nearly constant, so both are reported. The summary holds means, population standard
deviations over items, the per-item values, and the mean of every term of ``model.loss`` (weighted by
batch size).

Example:
    >>> summary = evaluate(model, datamodule.eval_batches(), step=1000)  # doctest: +SKIP
    >>> summary["psnr_mean"], summary["psnr_std"]                       # doctest: +SKIP
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor

from inrgen.data.points import PointSet, PointSetPair
from inrgen.metrics.psnr import mse_per_item, psnr
from inrgen.models.base import INRModel, Prediction
from inrgen.tasks import decode_chunked
from inrgen.training.state import preserve_rng

__all__ = [
    "evaluate",
    "predict_targets",
    "format_table",
    "move_batch",
    "reads_values",
    "UNCLAMPED_PSNR_MODELS",
]

# models whose papers score unclamped predictions (IPC's compute_loss; LA-GINR, TransINR follow it)
UNCLAMPED_PSNR_MODELS = frozenset({"locality_aware", "ipc", "transinr", "learned_init"})


def move_batch(batch: PointSet | PointSetPair, device: torch.device) -> PointSet | PointSetPair:
    """A batch (and the tensors of its ``meta``) on ``device``."""
    if isinstance(batch, PointSetPair):
        return PointSetPair(move_batch(batch.context, device), move_batch(batch.target, device))  # type: ignore[arg-type]
    out = batch.to(device)
    out.meta = {k: (v.to(device) if isinstance(v, Tensor) else v) for k, v in batch.meta.items()}
    return out


def reads_values(model: INRModel) -> bool:
    """Whether ``model.decode`` takes the observed ``values`` (posterior mixture weights, VaMoH)."""
    try:
        return "values" in inspect.signature(model.decode).parameters
    except (TypeError, ValueError):
        return False


@torch.no_grad()
def predict_targets(
    model: INRModel, batch: PointSet | PointSetPair, chunk_size: int | None = None
) -> tuple[Prediction, PointSet]:
    """Encode a batch's observed points and decode its targets: ``(prediction, target set)``."""
    if isinstance(batch, PointSetPair):
        latent = model.encode(batch.context)
        return decode_chunked(model, latent, batch.target.coords, chunk_size), batch.target
    latent = model.encode(batch)
    return decode_chunked(model, latent, batch.coords, chunk_size), batch


@torch.no_grad()
def evaluate(
    model: INRModel,
    batches: Iterable[PointSet | PointSetPair],
    step: int = 0,
    chunk_size: int | None = None,
    with_loss: bool = True,
) -> dict[str, Any]:
    """Per-item PSNR and MSE and the mean loss terms over ``batches`` (the global RNG is left as it was)."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    psnrs: list[Tensor] = []
    raw: list[Tensor] = []
    mses: list[Tensor] = []
    post: list[Tensor] = []
    sums: dict[str, float] = {}
    count = 0
    posterior = reads_values(model)
    try:
        with preserve_rng():
            torch.manual_seed(0)  # evaluation noise (e.g. a posterior sample) is the same every time
            for batch in batches:
                batch = move_batch(batch, device)
                if isinstance(batch, PointSetPair):
                    pred, target = predict_targets(model, batch, chunk_size)
                    latent = None
                else:
                    target, latent = batch, model.encode(batch)
                    pred = decode_chunked(model, latent, batch.coords, chunk_size)
                mask = target.mask
                psnrs.append(psnr(pred.mean.float(), target.values.float(), mask=mask, clamp=True).cpu())
                raw.append(psnr(pred.mean.float(), target.values.float(), mask=mask, clamp=False).cpu())
                mses.append(mse_per_item(pred.mean.float().clamp(0, 1), target.values.float(), mask).cpu())
                if posterior and latent is not None:
                    p_post = decode_chunked(model, latent, batch.coords, chunk_size, values=batch.values)
                    post.append(psnr(p_post.mean.float(), target.values.float(), mask=mask, clamp=True).cpu())
                if with_loss:
                    terms = model.loss(batch, step)
                    b = batch.batch_size
                    for k, v in terms.items():
                        val = float(v.float().mean()) if isinstance(v, Tensor) else float(v)
                        sums[k] = sums.get(k, 0.0) + val * b
                count += batch.batch_size
    finally:
        model.train(was_training)
    if count == 0:
        raise ValueError(
            "the held-out set is empty: nothing to evaluate (check data.num_eval and the test split)"
        )
    clamped = torch.cat(psnrs).double()
    unclamped = torch.cat(raw).double()
    m = torch.cat(mses).double()
    unclamped_headline = getattr(model, "model_name", None) in UNCLAMPED_PSNR_MODELS
    p = unclamped if unclamped_headline else clamped
    # VaMoH Eq. 19-20 sums the squared error over channels: 10 log10(C) dB below the per-value PSNR
    channels = int(getattr(model, "out_channels", 1) or 1)
    per_point = p - 10 * math.log10(channels)
    out: dict[str, Any] = {
        "step": int(step),
        "num_items": int(count),
        "psnr_mean": float(p.mean()),
        "psnr_std": float(p.std(unbiased=False)),
        "psnr_clamped_mean": float(clamped.mean()),
        "psnr_clamped_std": float(clamped.std(unbiased=False)),
        "psnr_unclamped_mean": float(unclamped.mean()),
        "psnr_unclamped_std": float(unclamped.std(unbiased=False)),
        "mse_mean": float(m.mean()),
        "psnr_per_item": [round(float(v), 4) for v in p],
        "headline_psnr": "unclamped (IPC)" if unclamped_headline else "clamped to [0, 1]",
        "psnr_per_point_mean": float(per_point.mean()),
        "psnr_definition": (
            "psnr_*: per value (squared error averaged over points and channels; IPC, TransINR, Functa, "
            "LA-GINR Tables 1-3); psnr_per_point_*: VaMoH Eq. 19-20 (squared error summed over the "
            f"{channels} channel(s), averaged over points; VaMoH Tables 1, 2, 4, 5) = psnr - 10 log10(C)"
        ),
    }
    if post:
        q = torch.cat(post).double()
        out["psnr_posterior_mean"] = float(q.mean())
        out["psnr_posterior_std"] = float(q.std(unbiased=False))
    out.update({f"loss/{k}": v / count for k, v in sums.items()})
    return out


def format_table(summary: dict[str, Any]) -> str:
    """The scalar entries of an evaluation summary as an aligned two-column text table."""
    rows = [(k, v) for k, v in summary.items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    width = max(len(k) for k, _ in rows)
    lines = [f"{'metric':<{width}}  value", f"{'-' * width}  {'-' * 12}"]
    for k, v in rows:
        lines.append(f"{k:<{width}}  {v:.4f}" if isinstance(v, float) else f"{k:<{width}}  {v}")
    return "\n".join(lines)
