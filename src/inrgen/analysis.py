"""Locality of latent tokens: what one token changes in the prediction (locality-aware INR, Sec. 4.3).

Fig. 5 and 12 of the paper replace one latent token ``z_k`` with the zero vector, decode again and show

    Delta_k(v) = | F(v; Z with z_k = 0) - F(v; Z) |            (mean over output channels here)

rescaled to a maximum of 1 per map. Locality-aware latents change a small region; IPC's change the whole
image (its modulated weight ``normalize(U V)`` sums over all tokens). :func:`token_influence` computes
``Delta`` for every token (or chosen ones), :func:`influence_maps` puts them back on the data grid, and
:func:`locality_score` summarises a map by the fraction of its change mass inside its top ``f`` fraction of
points (1 = all change in ``f N`` points; ``f`` = no locality at all, a uniform map), so that models can be
compared with one number (:func:`locality_summary`).

``replace="zero"`` is the paper's operation; ``replace="drop"`` removes the token instead (from the
attention softmax of the locality-aware decoder; models that support it set ``supports_token_mask``).
Zeroing is not removing: a zero token still has key ``b_K`` and value ``b_V`` and takes part in the
softmax.

Model-agnostic: the latent is a tensor ``(b, R, D)`` (locality-aware INR, IPC) or a list of such tensors
(TransINR; token ``k`` then counts through the list in order).

Shapes (einops legend)::

    b items  k analysed tokens  n points  c channels
    token_influence -> (b, k, n);  influence_maps -> (b, k, *grid_shape);  locality_score -> (b, k)

Example:
    >>> maps = influence_maps(model, points, tokens=[3, 17])        # doctest: +SKIP
    >>> locality_summary(model, points)["locality"]                  # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import torch
from torch import Tensor

from inrgen.data.points import PointSet
from inrgen.models.base import INRModel

__all__ = ["token_influence", "influence_maps", "locality_score", "locality_summary", "num_tokens"]

Replace = Literal["zero", "drop"]


def _parts(latent: Any) -> tuple[list[Tensor], bool]:
    if isinstance(latent, Tensor):
        if latent.dim() != 3:
            raise ValueError(f"a token latent must be (B, R, D), got shape {tuple(latent.shape)}")
        return [latent], True
    if (
        isinstance(latent, (list, tuple))
        and latent
        and all(isinstance(t, Tensor) and t.dim() == 3 for t in latent)
    ):
        return list(latent), False
    raise TypeError(
        "token analysis needs latent tokens: a (B, R, D) tensor or a list of them (TransINR); got "
        f"{type(latent).__name__}"
    )


def num_tokens(latent: Any) -> int:
    """Number of latent tokens ``R`` (summed over the list for list latents)."""
    parts, _ = _parts(latent)
    return sum(t.shape[1] for t in parts)


def _expand_zeroed(parts: list[Tensor], ks: list[int]) -> list[Tensor]:
    """For every item and every token in ``ks``: a copy of the latent with that token zeroed,
    ``(b * len(ks), R_l, D_l)`` per part (item-major)."""
    out, start = [], 0
    for t in parts:
        b, r, d = t.shape
        e = t.unsqueeze(1).expand(b, len(ks), r, d).clone()
        for j, k in enumerate(ks):
            if start <= k < start + r:
                e[:, j, k - start] = 0
        out.append(e.reshape(b * len(ks), r, d))
        start += r
    return out


@torch.no_grad()
def token_influence(
    model: INRModel,
    latent: Any,
    coords: Tensor,
    tokens: Sequence[int] | None = None,
    replace: Replace = "zero",
    chunk_size: int | None = None,
    token_batch: int = 8,
) -> Tensor:
    """``Delta_k(v)``: mean over channels of ``|F(v; Z with token k replaced) - F(v; Z)|``, ``(b, k, n)``.

    Args:
        latent: ``model.encode(...)`` output (tokens ``(b, R, D)`` or a list of them).
        coords: ``(b, n, d_in)`` where to decode.
        tokens: token indices to analyse (default: all ``R``), in the order of the output.
        replace: ``"zero"`` (the paper) or ``"drop"`` (remove the token; needs ``supports_token_mask``).
        chunk_size: query points per decode; ``token_batch``: tokens decoded together.
    """
    from inrgen.tasks import decode_chunked

    parts, single = _parts(latent)
    r = num_tokens(latent)
    ks = list(range(r)) if tokens is None else [int(k) for k in tokens]
    bad = [k for k in ks if not 0 <= k < r]
    if bad:
        raise ValueError(f"token indices {bad} are out of range: the latent has {r} tokens")
    if replace not in ("zero", "drop"):
        raise ValueError(f"replace must be 'zero' (the paper) or 'drop' (remove the token), got {replace!r}")
    if replace == "drop" and not getattr(model, "supports_token_mask", False):
        raise ValueError(
            f"{type(model).__name__}.decode cannot remove tokens (no token_mask support); use replace='zero'"
        )
    if token_batch < 1:
        raise ValueError(f"token_batch must be >= 1, got {token_batch}")
    b, n = coords.shape[:2]
    base = decode_chunked(model, latent, coords, chunk_size).mean  # b n c
    out = torch.empty(b, len(ks), n, dtype=base.dtype, device=base.device)
    for s in range(0, len(ks), token_batch):
        chunk = ks[s : s + token_batch]
        kc = len(chunk)
        xs = coords.unsqueeze(1).expand(b, kc, *coords.shape[1:]).reshape(b * kc, *coords.shape[1:])
        if replace == "zero":
            lat = _expand_zeroed(parts, chunk)
            pred = decode_chunked(model, lat[0] if single else lat, xs, chunk_size).mean
        else:
            mask = torch.ones(b, kc, r, dtype=torch.bool, device=coords.device)
            mask[:, torch.arange(kc), torch.tensor(chunk)] = False
            lat = [t.unsqueeze(1).expand(b, kc, *t.shape[1:]).reshape(b * kc, *t.shape[1:]) for t in parts]
            pred = decode_chunked(
                model, lat[0] if single else lat, xs, chunk_size, token_mask=mask.reshape(b * kc, r)
            ).mean
        delta = (pred.reshape(b, kc, n, -1) - base.unsqueeze(1)).abs().mean(-1)
        out[:, s : s + kc] = delta
    return out


@torch.no_grad()
def influence_maps(
    model: INRModel,
    points: PointSet,
    tokens: Sequence[int] | None = None,
    replace: Replace = "zero",
    normalize: bool = True,
    chunk_size: int | None = None,
    token_batch: int = 8,
) -> Tensor:
    """Encode ``points`` and return the influence of each token on its grid: ``(b, k, *grid_shape)``.

    With ``normalize`` every map is divided by its maximum (the paper's display; an all-zero map stays 0).
    Light fields: pass the query views (``grid_shape = (V, H, W)``) with a latent of the support views
    through :func:`token_influence` instead.
    """
    if points.grid_shape is None:
        raise ValueError(
            "influence maps need points on a grid (PointSet.from_image / from_views); use "
            "token_influence for scattered points"
        )
    latent = model.encode(points)
    delta = token_influence(model, latent, points.coords, tokens, replace, chunk_size, token_batch)
    if normalize:
        delta = delta / delta.amax(-1, keepdim=True).clamp_min(torch.finfo(delta.dtype).tiny)
    return delta.reshape(*delta.shape[:2], *points.grid_shape)


def locality_score(influence: Tensor, top_fraction: float = 0.1) -> Tensor:
    """Fraction of each map's change mass inside its ``ceil(top_fraction * n)`` largest points, ``(b, k)``.

    ``influence``: ``(b, k, n)`` (or ``(b, k, *grid)``, flattened). 1 for a change confined to that many
    points, ``top_fraction`` (about) for a uniform change; NaN for a map with no change at all.
    """
    if not 0.0 < top_fraction <= 1.0:
        raise ValueError(f"top_fraction must be in (0, 1], got {top_fraction}")
    if influence.dim() < 3:
        raise ValueError(f"expected influence maps (B, K, N) or (B, K, *grid), got {tuple(influence.shape)}")
    flat = influence.flatten(2)
    if (flat < 0).any():
        raise ValueError("influence maps are magnitudes |Delta| >= 0; got negative values")
    n = flat.shape[-1]
    top = max(1, math.ceil(top_fraction * n))
    total = flat.sum(-1)
    inside = flat.topk(top, dim=-1).values.sum(-1)
    return torch.where(total > 0, inside / total.clamp_min(torch.finfo(flat.dtype).tiny), float("nan"))


@torch.no_grad()
def locality_summary(
    model: INRModel,
    points: PointSet,
    tokens: Sequence[int] | None = None,
    top_fraction: float = 0.1,
    replace: Replace = "zero",
    chunk_size: int | None = None,
    token_batch: int = 8,
) -> dict[str, float]:
    """One-number comparison of models: the mean :func:`locality_score` over items and tokens.

    Returns ``locality`` (mean score), ``locality_std``, ``uniform`` (the score of a uniform map,
    ``ceil(f n) / n``) and ``mean_change`` (mean ``Delta`` over points, items and tokens).
    """
    latent = model.encode(points)
    delta = token_influence(model, latent, points.coords, tokens, replace, chunk_size, token_batch)
    s = locality_score(delta, top_fraction)
    s = s[~s.isnan()]
    n = delta.shape[-1]
    return {
        "locality": float(s.mean()) if s.numel() else float("nan"),
        "locality_std": float(s.std()) if s.numel() > 1 else 0.0,
        "uniform": max(1, math.ceil(top_fraction * n)) / n,
        "mean_change": float(delta.mean()),
    }
