"""PointConv (Wu et al. 2019) and the PointConv encoder of VaMoH (Sec. 3.2, Table 3).

A PointConv layer turns features on a set of points into features on ``S`` centroids. For a centroid
``c`` with neighbourhood ``N(c)`` (its ``k`` nearest points, itself included) it computes

    out_c = Linear( sum_{j in N(c)}  F_j (outer) W(p_j - p_c) )                       (efficient PointConv)

where ``F_j`` are the input features (``C_in``), ``W`` the *weight net*, a small MLP on the offset of
the neighbour from the centroid (``mid`` outputs), and the ``C_in * mid`` outer-product sum is mapped to
``C_out`` by one linear map. No density weighting and no neighbour-count normalisation (as in GASP and
VaMoH). Centroids are chosen by farthest-point sampling with a deterministic start (the first observed
point); neighbourhoods by k-nearest neighbours. An average-pooling layer uses the same geometry and
averages the neighbours' features. The encoder stacks ``PointConv -> LeakyReLU(0.2) [-> AvgPool]``,
flattens the last centroids' features and maps them with one linear layer to ``(mu, log sigma^2)``:

    q(z | X, Y) = N(mu, diag sigma^2)                                              (VaMoH Sec. 3.2)

Positions ``p`` are the raw coordinates ``x`` (the paper: "PointConv as in GASP") or, with
``encoder_input="fourier"``, their random Fourier features ``gamma(x)`` (the authors' released code:
FPS, kNN and offsets then live in the 256-D feature space).

Only observed points are seen: masked points are never centroids nor neighbours. When every item of a
batch shares its coordinates and mask (grids, and VaMoH's batch-shared point dropout), the observed
points are gathered once and centroids / neighbourhoods are computed once per batch (and cached across
calls with identical coordinates); otherwise per item, batched, with masks.

Shapes (einops legend): ``b`` batch, ``n`` input points, ``s`` centroids, ``k`` neighbours, ``d``
position dim, ``c`` channels, ``h`` weight-net outputs.

Example:
    >>> import torch
    >>> from inrgen import PointSet
    >>> enc = PointConvEncoder(in_channels=1, coord_dim=2, dim_z=8, centroids=(16, 4), neighbors=(9, 9),
    ...                        out_channels=(8, 8))
    >>> q = enc(PointSet.from_image(torch.rand(3, 1, 8, 8)))
    >>> q.mean.shape, q.event_shape
    (torch.Size([3, 8]), torch.Size([8]))
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.distributions import Independent, Normal

from inrgen.data.points import PointSet

__all__ = [
    "farthest_point_sample",
    "knn",
    "gather_points",
    "PointConv",
    "PointConvEncoder",
    "Neighbourhood",
    "ChannelLastBatchNorm",
]

# the largest (queries x points) distance block computed at once by `knn` (elements per item)
_KNN_BLOCK = 1 << 22


def gather_points(x: Tensor, idx: Tensor) -> Tensor:
    """``x[b, idx[b, ...]]``: x ``(b, n, c)``, idx ``(b, *rest)`` -> ``(b, *rest, c)`` (idx may have b=1
    against a larger x, or x b=1 against a larger idx: the size-1 side is broadcast)."""
    if x.shape[0] != idx.shape[0]:
        if idx.shape[0] == 1:
            return x.index_select(1, idx[0].reshape(-1)).reshape(x.shape[0], *idx.shape[1:], x.shape[-1])
        if x.shape[0] == 1:
            x = x.expand(idx.shape[0], -1, -1)
        else:
            raise ValueError(f"cannot gather {tuple(idx.shape)} indices from {tuple(x.shape)} points")
    b, rest = idx.shape[0], idx.shape[1:]
    if b == 1:
        return x.index_select(1, idx[0].reshape(-1)).reshape(1, *rest, x.shape[-1])
    flat = idx.reshape(b, -1, 1).expand(-1, -1, x.shape[-1])
    return torch.gather(x, 1, flat).reshape(b, *rest, x.shape[-1])


@torch.no_grad()
def farthest_point_sample(
    points: Tensor, num_samples: int, mask: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """Farthest-point sampling, vectorised over the batch, deterministic start.

    Args:
        points: ``(b, n, d)`` positions.
        num_samples: ``s``, how many centroids per item.
        mask: optional ``(b, n)`` bool, True for points that may be chosen.
    Returns:
        ``idx (b, s)`` long and ``valid (b, s)`` bool. The first centroid is the first allowed point;
        each next one maximises the Euclidean distance to the chosen set (first index on ties). The chosen
        indices of an item are distinct. An item with at most ``s`` allowed points gets all of them as
        centroids, in index order (no sampling: the released code's rule), and its extra slots repeat
        its first centroid, flagged ``valid=False``.
    """
    b, n, d = points.shape
    if num_samples < 1:
        raise ValueError(f"farthest_point_sample needs num_samples >= 1, got {num_samples}")
    dev = points.device
    allowed = torch.ones(b, n, dtype=torch.bool, device=dev) if mask is None else mask.bool()
    n_allowed = allowed.sum(1)
    if bool((n_allowed <= num_samples).all()):  # every allowed point is a centroid, in index order
        return _all_points(allowed, num_samples)
    pts = (
        (points if points.dtype == torch.float64 else points.float()).transpose(1, 2).contiguous()
    )  # (b,d,n)
    # squared distance to the chosen set; -inf for masked and already chosen points
    inf = float("inf")
    dist = torch.full((b, n), inf, dtype=pts.dtype, device=dev).masked_fill_(~allowed, -inf)
    neg = torch.full((b, 1), -inf, dtype=pts.dtype, device=dev)
    diff = torch.empty_like(pts)
    cur = allowed.to(torch.int8).argmax(1, keepdim=True)  # (b, 1): the first allowed point
    picks = [cur]
    for _ in range(num_samples - 1):  # a loop over centroids, vectorised over the batch
        dist.scatter_(1, cur, neg)
        torch.sub(pts, torch.gather(pts, 2, cur.unsqueeze(1).expand(b, d, 1)), out=diff)
        torch.minimum(dist, diff.square_().sum(1), out=dist)
        cur = dist.argmax(1, keepdim=True)
        picks.append(cur)
    idx = torch.cat(picks, 1)
    # while an item has candidates left its picks are distinct allowed points
    valid = torch.arange(num_samples, device=dev).unsqueeze(0) < n_allowed.unsqueeze(1)
    few = n_allowed <= num_samples
    if bool(few.any()):  # items with no more points than centroids: all of them, in index order
        idx_all, valid_all = _all_points(allowed, num_samples)
        idx = torch.where(few.unsqueeze(1), idx_all, idx)
        valid = torch.where(few.unsqueeze(1), valid_all, valid)
    return idx, valid


def _all_points(allowed: Tensor, num_samples: int) -> tuple[Tensor, Tensor]:
    """Every allowed point of each item in index order, padded to ``num_samples`` (padding invalid)."""
    b, n = allowed.shape
    order = torch.argsort((~allowed).to(torch.int8), dim=1, stable=True)  # allowed points first
    if n < num_samples:
        order = torch.cat([order, order[:, :1].expand(b, num_samples - n)], 1)
    idx = order[:, :num_samples]
    valid = torch.arange(num_samples, device=allowed.device).unsqueeze(0) < allowed.sum(1, keepdim=True)
    idx = torch.where(valid, idx, idx[:, :1].expand_as(idx))
    return idx, valid


@torch.no_grad()
def knn(query: Tensor, points: Tensor, k: int, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """The ``k`` nearest ``points`` of every query (Euclidean, nearest first; a query that is one of the
    points finds itself first).

    Args:
        query: ``(b, s, d)``; points: ``(b, n, d)`` (either may have b=1 to be shared).
        mask: optional ``(b, n)`` bool, True for points that may be neighbours.
    Returns:
        ``idx (b, s, k')`` and ``valid (b, s, k')`` with ``k' = min(k, n)``; a slot is invalid when the
        item has fewer than ``k'`` allowed points (its index then is a masked point's; ignore it).
    """
    if k < 1:
        raise ValueError(f"knn needs k >= 1, got {k}")
    b = max(query.shape[0], points.shape[0])
    n = points.shape[1]
    k = min(k, n)
    d = points.shape[-1]
    # exact per-pair differences for low-dimensional positions (reproducible ties), BLAS for high ones
    mode = "donot_use_mm_for_euclid_dist" if d <= 16 else "use_mm_for_euclid_dist_if_necessary"
    step = max(1, _KNN_BLOCK // max(n, 1))
    out_i, out_v = [], []
    for s0 in range(0, query.shape[1], step):
        q = query[:, s0 : s0 + step]
        dist = torch.cdist(q.expand(b, -1, -1), points.expand(b, -1, -1), compute_mode=mode)
        if mask is not None:
            dist = dist.masked_fill(~mask.bool().unsqueeze(1).expand_as(dist), float("inf"))
        val, ind = dist.topk(k, dim=-1, largest=False, sorted=True)
        out_i.append(ind)
        out_v.append(torch.isfinite(val))
    return torch.cat(out_i, 1), torch.cat(out_v, 1)


@dataclass
class Neighbourhood:
    """The geometry of one encoder stage: centroids chosen among the stage's input points and their kNN.

    centroid_idx (g, s)    indices into the stage's input points
    centroid_ok  (g, s)    False for padding centroids (items with fewer points than ``s``)
    nbr_idx      (g, s, k) indices into the stage's input points
    nbr_ok       (g, s, k) False for padding neighbours
    ``g`` is 1 when the batch shares its coordinates, else the batch size. With ``centroid_pos`` the
    centroids are those fixed positions instead (``centroid_idx`` is then unused).
    """

    centroid_idx: Tensor
    centroid_ok: Tensor
    nbr_idx: Tensor
    nbr_ok: Tensor
    centroid_pos: Tensor | None = None  # (1, s, d) fixed query positions (last_centroids="grid")


class ChannelLastBatchNorm(nn.BatchNorm1d):
    """BatchNorm over the last dimension of ``(..., c)`` features: statistics over every leading position
    (GASP's ``BatchNorm2d`` on ``(b, c, k, s)`` weight-net maps and ``BatchNorm1d`` on ``(b, c, s)``
    point features, without the transposes)."""

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x.reshape(-1, x.shape[-1])).reshape(x.shape)


def _activation(name: str, negative_slope: float) -> nn.Module:
    if name == "leaky_relu":
        return nn.LeakyReLU(negative_slope)
    if name == "identity":
        return nn.Identity()
    raise ValueError(f"unknown weight-net activation {name!r}; use 'leaky_relu' (paper/GASP) or 'identity'")


class PointConv(nn.Module):
    """One PointConv layer on given neighbourhoods (see the module docstring for the equation).

    Args:
        in_channels, out_channels: ``C_in``, ``C_out``.
        offset_dim: dimension of the positions (2 or 3 raw, 256 for Fourier features).
        weightnet_hidden: widths of the weight net; the last one is ``mid``.
        weightnet_activation: ``"leaky_relu"`` (GASP, after every weight-net layer) or ``"identity"``
            (the released VaMoH code: a linear weight net).
        batchnorm: BatchNorm after every weight-net layer, before its activation (GASP's discriminator:
            ``add_weightnet_batchnorm`` in its released configs).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        offset_dim: int,
        weightnet_hidden: Sequence[int] = (16, 16),
        weightnet_activation: str = "leaky_relu",
        negative_slope: float = 0.2,
        batchnorm: bool = False,
    ) -> None:
        super().__init__()
        if len(weightnet_hidden) == 0:
            raise ValueError("weightnet_hidden needs at least one width (the last one is the mid size)")
        layers: list[nn.Module] = []
        prev = offset_dim
        for w in weightnet_hidden:
            layers.append(nn.Linear(prev, w))
            if batchnorm:
                layers.append(ChannelLastBatchNorm(w))
            layers.append(_activation(weightnet_activation, negative_slope))
            prev = w
        self.weightnet = nn.Sequential(*layers)
        self.mid = prev
        self.in_channels = in_channels
        self.linear = nn.Linear(in_channels * self.mid, out_channels)

    def forward(self, nbr_features: Tensor, offsets: Tensor, nbr_ok: Tensor | None = None) -> Tensor:
        """nbr_features ``(b, s, k, c_in)``, offsets ``(g, s, k, d)`` with g in {1, b}, nbr_ok ``(g, s, k)``
        -> ``(b, s, c_out)``."""
        w = self.weightnet(offsets)  # (g, s, k, h)
        if nbr_ok is not None:
            w = w * nbr_ok.unsqueeze(-1).to(w.dtype)
        if w.shape[0] == 1 and nbr_features.shape[0] != 1:
            agg = torch.einsum("bskc,skh->bsch", nbr_features, w[0])
        else:
            agg = torch.einsum("bskc,bskh->bsch", nbr_features, w)
        return self.linear(agg.flatten(-2))


class PointConvEncoder(nn.Module):
    """PointConv stack -> ``q(z | X, Y) = N(mu, diag sigma^2)`` (a ``torch.distributions`` object).

    Stage ``i`` is ``PointConv(centroids[i], neighbors[i], -> out_channels[i])`` then LeakyReLU, then,
    when ``avgpool_centroids[i]`` is not None, ``AvgPool(avgpool_centroids[i], avgpool_neighbors[i])``.

    Args:
        in_channels: value channels ``C``.
        coord_dim: coordinate dimension ``d``.
        dim_z: latent size.
        position_encoding: a module mapping coordinates to the positions the encoder works in
            (``gamma`` for the released code's ``encoder_input="fourier"``); None: raw coordinates.
        position_dim: output size of ``position_encoding`` (required with it).
        log_var_clamp, max_sigma: numerical guards on the posterior (the released code's values).
    """

    def __init__(
        self,
        in_channels: int,
        coord_dim: int,
        dim_z: int,
        centroids: Sequence[int],
        neighbors: Sequence[int],
        out_channels: Sequence[int],
        weightnet_hidden: Sequence[int] = (16, 16),
        avgpool_centroids: Sequence[int | None] | None = None,
        avgpool_neighbors: Sequence[int | None] | None = None,
        weightnet_activation: str = "leaky_relu",
        negative_slope: float = 0.2,
        position_encoding: nn.Module | None = None,
        position_dim: int | None = None,
        log_var_clamp: float = 70.0,
        max_sigma: float = 10.0,
        last_centroids: str = "fps",
    ) -> None:
        super().__init__()
        if last_centroids not in ("fps", "grid"):
            raise ValueError(f"last_centroids must be 'fps' (paper) or 'grid', got {last_centroids!r}")
        L = len(centroids)
        if L == 0 or len(neighbors) != L or len(out_channels) != L:
            raise ValueError(
                "centroids, neighbors and out_channels need one entry per PointConv layer, got "
                f"{list(centroids)}, {list(neighbors)}, {list(out_channels)}"
            )
        apc = list(avgpool_centroids) if avgpool_centroids is not None else [None] * L
        apk = list(avgpool_neighbors) if avgpool_neighbors is not None else [None] * L
        if len(apc) != L or len(apk) != L or any((a is None) != (b is None) for a, b in zip(apc, apk)):
            raise ValueError(
                "avgpool_centroids and avgpool_neighbors need one entry per layer (None for no pooling), "
                f"both set or both None; got {apc} and {apk}"
            )
        if any(int(c) < 1 for c in centroids) or any(int(k) < 1 for k in neighbors):
            raise ValueError(f"centroid and neighbour counts must be >= 1, got {centroids}, {neighbors}")
        if position_encoding is not None and position_dim is None:
            raise ValueError("position_dim is required with a position_encoding")
        self.position_encoding = position_encoding
        pos_dim = coord_dim if position_encoding is None else int(position_dim)  # type: ignore[arg-type]
        self.coord_dim = coord_dim
        self.in_channels = in_channels
        self.dim_z = dim_z
        self.log_var_clamp = log_var_clamp
        self.max_sigma = max_sigma
        # stages: ("conv", s, k) or ("pool", s, k); conv stages own a PointConv
        self.stages: list[tuple[str, int, int]] = []
        self.convs = nn.ModuleList()
        self.act = nn.LeakyReLU(negative_slope)
        c_in = in_channels
        for i in range(L):
            self.stages.append(("conv", int(centroids[i]), int(neighbors[i])))
            self.convs.append(
                PointConv(c_in, int(out_channels[i]), pos_dim, weightnet_hidden, weightnet_activation)
            )
            c_in = int(out_channels[i])
            if apc[i] is not None:
                self.stages.append(("pool", int(apc[i]), int(apk[i])))  # type: ignore[arg-type]
        counts = [s for _, s, _ in self.stages]
        if min(counts) != counts[-1]:
            raise ValueError(
                f"the last stage must have the fewest centroids (its count fixes the final linear layer), "
                f"got stage counts {counts}"
            )
        self.min_points = counts[-1]  # every item needs at least this many observed points
        self.final_centroids = counts[-1]
        self.last_centroids = last_centroids
        if last_centroids == "grid":
            side = round(counts[-1] ** (1.0 / coord_dim))
            if side**coord_dim != counts[-1]:
                raise ValueError(
                    f"last_centroids='grid' needs a last stage of r^{coord_dim} centroids (a grid), got "
                    f"{counts[-1]}"
                )
            from inrgen.coords import grid as _grid  # pixel centres in [-1, 1], ij order

            self.register_buffer("grid_centroids", _grid((side,) * coord_dim).unsqueeze(0), persistent=False)
        self.head = nn.Linear(self.final_centroids * c_in, 2 * dim_z)
        self._cache: tuple[Tensor, list[Neighbourhood]] | None = None
        self._warned_shrink = False

    # ------------------------------------------------------------------------------------ geometry
    def positions(self, coords: Tensor) -> Tensor:
        return coords if self.position_encoding is None else self.position_encoding(coords)

    @torch.no_grad()
    def plan(self, positions: Tensor, mask: Tensor | None) -> list[Neighbourhood]:
        """Centroids and neighbourhoods of every stage for points ``(g, n, d)`` (mask ``(g, n)`` or None)."""
        out = []
        pos, ok = positions, mask
        last = len(self.stages) - 1
        for i, (_, s, k) in enumerate(self.stages):
            if i == last and self.last_centroids == "grid":
                # fixed positions: slot j of the flattened features is always the same place
                cpos = self.positions(self.grid_centroids.to(positions.dtype)).detach()
                n_idx, n_ok = knn(cpos, pos, k, ok)
                g = n_idx.shape[0]
                c_idx = torch.zeros(g, s, dtype=torch.long, device=pos.device)
                out.append(Neighbourhood(c_idx, torch.ones_like(c_idx, dtype=torch.bool), n_idx, n_ok, cpos))
                break
            # fewer points than centroids: all points, the rest padding (the count shrinks)
            c_idx, c_ok = farthest_point_sample(pos, s, ok)
            cpos = gather_points(pos, c_idx)
            n_idx, n_ok = knn(cpos, pos, k, ok)
            out.append(Neighbourhood(c_idx, c_ok, n_idx, n_ok))
            pos, ok = cpos, (None if bool(c_ok.all()) else c_ok)
        return out

    def _shared_plan(self, coords: Tensor) -> list[Neighbourhood]:
        """Plan for shared, fully observed coordinates ``(1, m, d)``, compacted (no padding) and cached."""
        if self._cache is not None:
            c0, plan = self._cache
            same = c0.shape == coords.shape and c0.dtype == coords.dtype and c0.device == coords.device
            if same and torch.equal(c0, coords):
                return plan
        pos = self.positions(coords).detach()
        plan = self.plan(pos, None)
        # compact: with one fully observed item, padding centroids / neighbours only come at the end
        compact = []
        for nb in plan:
            s = int(nb.centroid_ok.sum())
            k = int(nb.nbr_ok[0, 0].sum())
            cp = None if nb.centroid_pos is None else nb.centroid_pos[:, :s]
            compact.append(
                Neighbourhood(
                    nb.centroid_idx[:, :s],
                    nb.centroid_ok[:, :s],
                    nb.nbr_idx[:, :s, :k],
                    nb.nbr_ok[:, :s, :k],
                    cp,
                )
            )
        self._cache = (coords.detach().clone(), compact)
        return compact

    # ------------------------------------------------------------------------------------- forward
    def forward(self, points: PointSet, shared: bool | None = None) -> Independent:
        """``q(z | points)`` from the observed points only.

        ``shared=None`` detects whether the batch shares coordinates and mask (then the geometry is
        computed once); ``False`` forces the per-item path (same result, slower).
        """
        if points.coord_dim != self.coord_dim or points.channels != self.in_channels:
            raise ValueError(
                f"this encoder reads {self.coord_dim}-D coordinates and {self.in_channels} channels; got "
                f"{points.coord_dim}-D and {points.channels}"
            )
        n_obs = points.num_observed()
        few = n_obs < self.min_points
        if few.any():
            raise ValueError(
                f"item(s) {few.nonzero().flatten().tolist()[:10]} have {n_obs[few].min().item()} observed "
                f"points; this encoder needs at least {self.min_points} (its last stage has "
                f"{self.min_points} centroids). Observe more points or use an encoder with fewer centroids."
            )
        first = self.stages[0][1]
        if not self._warned_shrink and bool((n_obs < first).any()):
            self._warned_shrink = True  # once per encoder: training with point dropout would repeat it
            warnings.warn(
                f"{int(n_obs.min())} observed points but the first PointConv layer has {first} centroids: "
                "the centroid counts of the layers shrink to the available points (warned once per encoder)",
                stacklevel=2,
            )
        if shared is None:
            shared = points.shares_coords()
        if shared:
            keep = points.observed[0].nonzero().flatten()
            coords = points.coords[:1, keep]
            feats = points.values[:, keep]
            plan = self._shared_plan(coords)
            pos = self.positions(coords)
        else:
            coords = points.coords
            ok = points.observed
            feats = torch.where(ok.unsqueeze(-1), points.values, torch.zeros_like(points.values))
            pos = self.positions(coords)
            plan = self.plan(pos.detach(), None if bool(ok.all()) else ok)
        h = self._run(feats, pos, plan)
        return self._posterior(h)

    def _run(self, feats: Tensor, pos: Tensor, plan: list[Neighbourhood]) -> Tensor:
        conv_i = 0
        for (kind, _, _), nb in zip(self.stages, plan):
            if nb.centroid_pos is not None:  # fixed centroids; positions carry gradients like gather's
                cpos = self.positions(self.grid_centroids.to(pos.dtype))
            else:
                cpos = gather_points(pos, nb.centroid_idx)  # (g, s, d)
            nbr_f = gather_points(feats, nb.nbr_idx)  # (b, s, k, c)
            if kind == "conv":
                offsets = gather_points(pos, nb.nbr_idx) - cpos.unsqueeze(2)  # (g, s, k, d)
                ok = None if bool(nb.nbr_ok.all()) else nb.nbr_ok
                feats = self.act(self.convs[conv_i](nbr_f, offsets, ok))
                conv_i += 1
            else:
                w = nb.nbr_ok.to(nbr_f.dtype).unsqueeze(-1)
                feats = (nbr_f * w).sum(2) / w.sum(2).clamp_min(1)
            pos = cpos
        return feats.flatten(1)  # (b, s_last * c_last)

    def _posterior(self, h: Tensor) -> Independent:
        mu, log_var = self.head(h).chunk(2, dim=-1)
        log_var = log_var.clamp(-self.log_var_clamp, self.log_var_clamp)
        sigma = (0.5 * log_var).exp().clamp(max=self.max_sigma)
        return Independent(Normal(mu, sigma), 1)
