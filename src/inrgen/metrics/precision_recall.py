"""Improved precision and recall (Kynkäänniemi et al., NeurIPS 2019) from k-NN radii in feature space.

The manifold of a set ``Phi`` is the union of balls around its features, each with the radius of the
distance to its k-th nearest neighbour within the set (``NND_k``, the point itself excluded):

    f(phi, Phi) = 1  if  ||phi - phi'|| <= NND_k(phi')  for some phi' in Phi,  else 0
    precision   = mean_{g in Phi_g} f(g, Phi_r)        (generated samples inside the real manifold)
    recall      = mean_{r in Phi_r} f(r, Phi_g)        (real samples inside the generated manifold)

VaMoH reports k = 3 on InceptionV3 features (the default here). Distances are computed in chunks.

Shapes: ``real (n_r, D)``, ``fake (n_g, D)``.

Example:
    >>> import torch
    >>> r = torch.randn(100, 4)
    >>> precision_recall(r, r)
    (1.0, 1.0)
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["knn_radii", "manifold_coverage", "precision_recall"]


def _check(x: Tensor, name: str, k: int) -> None:
    if x.dim() != 2:
        raise ValueError(f"{name} must be features (n, D), got {tuple(x.shape)}")
    if x.shape[0] <= k:
        raise ValueError(f"{name} has {x.shape[0]} samples; k = {k} nearest neighbours need more than k")


def knn_radii(features: Tensor, k: int = 3, chunk: int = 1024) -> Tensor:
    """Distance of each feature to its k-th nearest neighbour in the same set (itself excluded): ``(n,)``."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    _check(features, "features", k)
    f = features.to(torch.float64)
    out = []
    for s in range(0, len(f), chunk):
        d = torch.cdist(f[s : s + chunk], f)  # (c, n); the k+1-th smallest skips the zero self-distance
        out.append(d.kthvalue(k + 1, dim=1).values)
    return torch.cat(out)


def manifold_coverage(queries: Tensor, support: Tensor, radii: Tensor, chunk: int = 1024) -> Tensor:
    """Bool ``(n_q,)``: each query lies in some ball ``B(support_j, radii_j)``."""
    q, s = queries.to(torch.float64), support.to(torch.float64)
    r = radii.to(torch.float64)
    out = []
    for i in range(0, len(q), chunk):
        d = torch.cdist(q[i : i + chunk], s)
        out.append((d <= r.unsqueeze(0)).any(1))
    return torch.cat(out)


def precision_recall(real: Tensor, fake: Tensor, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall of ``fake`` against ``real`` features."""
    _check(real, "real", k)
    _check(fake, "fake", k)
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"feature sizes differ: {tuple(real.shape)} vs {tuple(fake.shape)}")
    precision = manifold_coverage(fake, real, knn_radii(real, k)).double().mean()
    recall = manifold_coverage(real, fake, knn_radii(fake, k)).double().mean()
    return float(precision), float(recall)
