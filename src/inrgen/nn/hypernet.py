"""Hypernetworks and the stateless, batched MLP they parameterise (VaMoH Sec. 3.1, App. A.1).

A hypernetwork ``g_phi_k`` maps a latent ``z`` to *all* weights and biases ``theta_k = g_phi_k(z)`` of a
small INR ``f_theta_k``, a LeakyReLU MLP on the Fourier features ``gamma(x)``:

    f_theta(x) = W_L a( ... a(W_1 gamma(x) + b_1) ... ) + b_L,     a = LeakyReLU(0.1)

``param_shapes`` is the contract between the two: the ordered names and shapes of the INR's parameters
(``weight_i`` in ``(out, in)`` layout, ``bias_i``), laid out in the flat hypernetwork output as all
weights first, then all biases (the authors' released layout). ``mlp(x, params)`` evaluates the INR with
explicit parameters that carry any leading batch dimensions ``(*lead, out, in)``: nothing is stored on a
module, and coordinates shared by a batch are contracted with every item's (and every component's)
weights in one matrix product, without copying the coordinates per item or per component.

``HyperNetwork`` holds ``K`` independent MLPs ``z -> theta_k`` (no shared trunk) as stacked parameters,
so all ``K`` run in one batched product. Hidden layers use LeakyReLU(0.1), the output is linear, and
the initialisation is PyTorch's ``nn.Linear`` default for each of the ``K`` networks.

Shapes (einops legend): ``b`` batch, ``k`` components, ``n`` points, ``i``/``o`` layer in/out widths,
``p`` number of INR parameters.

Example:
    >>> import torch
    >>> shapes = param_shapes(256, (4, 4, 4), 3)
    >>> num_params(shapes)                   # PolyMNIST INR of Table 3
    1083
    >>> hyper = HyperNetwork(16, (16, 32), shapes, num_nets=4)
    >>> params = hyper(torch.randn(2, 16))   # weight_0: (2, 4, 4, 256) ...
    >>> mlp(torch.randn(784, 256), params).shape
    torch.Size([2, 4, 784, 3])
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["param_shapes", "num_params", "unflatten_params", "mlp", "HyperNetwork"]


def param_shapes(in_dim: int, hidden: Sequence[int], out_dim: int) -> dict[str, tuple[int, ...]]:
    """Ordered ``{name: shape}`` of an MLP ``in_dim -> hidden... -> out_dim``: all weights, then biases."""
    widths = [int(in_dim), *[int(h) for h in hidden], int(out_dim)]
    if any(w < 1 for w in widths):
        raise ValueError(f"MLP widths must be >= 1, got {widths}")
    shapes: dict[str, tuple[int, ...]] = {}
    for i in range(len(widths) - 1):
        shapes[f"weight_{i}"] = (widths[i + 1], widths[i])
    for i in range(len(widths) - 1):
        shapes[f"bias_{i}"] = (widths[i + 1],)
    return shapes


def num_params(shapes: dict[str, tuple[int, ...]]) -> int:
    """Total number of scalars described by ``shapes``."""
    return sum(math.prod(s) for s in shapes.values())


def unflatten_params(flat: Tensor, shapes: dict[str, tuple[int, ...]]) -> dict[str, Tensor]:
    """Split ``flat (*lead, p)`` into ``{name: (*lead, *shape)}`` following ``shapes`` (views, no copy)."""
    p = num_params(shapes)
    if flat.shape[-1] != p:
        raise ValueError(f"expected {p} parameters in the last dimension, got {flat.shape[-1]}")
    lead = flat.shape[:-1]
    out, start = {}, 0
    for name, shape in shapes.items():
        size = math.prod(shape)
        out[name] = flat[..., start : start + size].reshape(*lead, *shape)
        start += size
    return out


def _first_layer(x: Tensor, w: Tensor) -> Tensor:
    """``x (n, i)`` or ``(b, n, i)`` against ``w (*lead, o, i)`` -> ``(*lead, n, o)``."""
    if x.dim() == 2:
        lead = w.shape[:-2]
        o = w.shape[-2]
        # one (n, i) @ (i, lead*o) product: the coordinates are never copied per item or component
        h = x @ w.reshape(-1, w.shape[-1]).t()  # (n, lead*o)
        return h.reshape(x.shape[0], *lead, o).movedim(0, -2)
    if x.dim() == 3:
        b = x.shape[0]
        if w.dim() < 3 or w.shape[0] != b:
            raise ValueError(
                f"per-item inputs {tuple(x.shape)} need weights (b={b}, ..., o, i), got {tuple(w.shape)}"
            )
        rest, o = w.shape[1:-2], w.shape[-2]
        h = torch.bmm(x, w.reshape(b, -1, w.shape[-1]).transpose(1, 2))  # (b, n, rest*o)
        return h.reshape(b, x.shape[1], *rest, o).movedim(1, -2)
    raise ValueError(f"inputs must be (n, i) or (b, n, i), got {tuple(x.shape)}")


def mlp(x: Tensor, params: dict[str, Tensor], negative_slope: float = 0.1) -> Tensor:
    """Evaluate the MLP described by ``params`` (see :func:`param_shapes`) at inputs ``x``.

    Args:
        x: ``(n, i)`` inputs shared by every parameter set, or ``(b, n, i)`` per item (then the leading
            dimension of the parameters is ``b``).
        params: ``weight_j (*lead, o, i)`` and ``bias_j (*lead, o)``, e.g. ``lead = (b, k)``.
    Returns:
        ``(*lead, n, o_last)``; LeakyReLU(``negative_slope``) on hidden layers, linear output.
    """
    n_layers = sum(1 for name in params if name.startswith("weight_"))
    if n_layers == 0:
        raise ValueError("params hold no weight_0")
    h = x
    for j in range(n_layers):
        w, b = params[f"weight_{j}"], params[f"bias_{j}"]
        if j == 0:
            if x.shape[-1] != w.shape[-1]:
                raise ValueError(f"inputs have {x.shape[-1]} features but weight_0 expects {w.shape[-1]}")
            h = _first_layer(x, w)
        else:
            h = torch.matmul(h, w.transpose(-1, -2))
        h = h + b.unsqueeze(-2)
        if j < n_layers - 1:
            h = F.leaky_relu(h, negative_slope)
    return h


class HyperNetwork(nn.Module):
    """``num_nets`` independent MLPs ``z -> theta`` (hidden LeakyReLU, linear output), run together.

    Args:
        dim_z: latent size.
        hidden: hidden widths (Table 3 "Hypernetwork layers", e.g. ``(16, 32)``).
        shapes: the INR's :func:`param_shapes`.
        num_nets: ``K``, the number of hypernetworks.
    Call ``hyper(z (b, dim_z))`` for the parameter dict with leading dims ``(b, K)``, or
    ``hyper.flat(z)`` for ``(b, K, p)``.
    """

    def __init__(
        self,
        dim_z: int,
        hidden: Sequence[int],
        shapes: dict[str, tuple[int, ...]],
        num_nets: int = 1,
        negative_slope: float = 0.1,
    ) -> None:
        super().__init__()
        if num_nets < 1:
            raise ValueError(f"num_nets must be >= 1, got {num_nets}")
        self.shapes = dict(shapes)
        self.num_nets = num_nets
        self.negative_slope = negative_slope
        widths = [int(dim_z), *[int(h) for h in hidden], num_params(self.shapes)]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for i in range(len(widths) - 1):
            fan_in, fan_out = widths[i], widths[i + 1]
            bound = 1.0 / math.sqrt(fan_in)  # nn.Linear's default (kaiming_uniform with a=sqrt(5))
            self.weights.append(nn.Parameter(torch.empty(num_nets, fan_out, fan_in).uniform_(-bound, bound)))
            self.biases.append(nn.Parameter(torch.empty(num_nets, fan_out).uniform_(-bound, bound)))

    @property
    def num_outputs(self) -> int:
        return num_params(self.shapes)

    def flat(self, z: Tensor) -> Tensor:
        """``z (b, dim_z)`` -> ``theta (b, K, p)``."""
        h = torch.einsum("bi,koi->bko", z, self.weights[0]) + self.biases[0]
        for w, b in zip(list(self.weights)[1:], list(self.biases)[1:]):
            h = F.leaky_relu(h, self.negative_slope)
            h = torch.einsum("bki,koi->bko", h, w) + b
        return h

    def forward(self, z: Tensor) -> dict[str, Tensor]:
        return unflatten_params(self.flat(z), self.shapes)
