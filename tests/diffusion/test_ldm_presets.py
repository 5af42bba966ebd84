"""Latent diffusion presets (the paper's ImageNet model, the CPU MNIST run) and the real locality-aware
INR underneath: its frozen latents train the denoiser, and sampled latents decode at any resolution."""

import math

import torch

from inrgen import PointSet
from inrgen import coords as C
from inrgen.configs import Preset, apply_overrides, get_preset
from inrgen.configs.base import config_to_dict
from inrgen.data.datasets import build_dataset
from inrgen.data.points import collate
from inrgen.models.base import build_model
from inrgen.models.latent_diffusion import LatentDenoiser


def test_imagenet_preset_is_the_papers_setting():
    p = get_preset("ldm-imagenet256")
    c = p.model_config
    inr = get_preset("laginr-imagenet256")
    assert p.model == "latent_diffusion" and c.inr_model == "locality_aware"
    assert c.inr_config == config_to_dict(inr.model_config) and (c.num_tokens, c.token_dim) == (256, 256)
    # App. A.3: 24 x 1024 x 16 heads (458 M), DDPM linear T = 1000, x0, 10 % label drop, per-token/channel
    # standardisation, EMA 0.9999, 250 DDIM steps, guidance 2.5; Adam 1e-4 constant, batch 256, 400 epochs
    assert (c.depth, c.width, c.heads, c.num_classes) == (24, 1024, 16, 1000)
    assert (c.num_train_timesteps, c.beta_schedule, c.beta_start, c.beta_end) == (1000, "linear", 1e-4, 0.02)
    assert (c.prediction_type, c.p_uncond, c.latent_norm, c.ema_decay) == ("sample", 0.1, "token", 0.9999)
    assert (c.sampler, c.num_sampling_steps, c.guidance_scale, c.ddim_eta) == ("ddim", 250, 2.5, 0.0)
    t = p.train
    assert (t.lr, t.betas, t.weight_decay, t.warmup_steps, t.schedule) == (
        1e-4,
        (0.9, 0.999),
        0.0,
        0,
        "constant",
    )
    assert p.data.batch_size == 256 and t.max_steps == 400 * math.ceil(1_281_167 / 256)
    assert p.data.options["labels"] is True
    with torch.device("meta"):
        net = LatentDenoiser(c.token_dim, c.num_tokens, c.width, c.depth, c.heads, c.num_classes)
    assert abs(sum(q.numel() for q in net.parameters()) / 1e6 - 458) < 1.0
    assert Preset.from_dict(p.to_dict()).to_dict() == p.to_dict()


def test_mnist_preset_trains_its_inr_then_diffusion_on_real_digits():
    torch.manual_seed(0)
    p = get_preset("ldm-mnist-small")
    assert p.cpu_sized and p.data.source == "mnist"
    assert p.model_config.inr_pretrain_steps == get_preset("laginr-mnist-small").train.max_steps
    p = apply_overrides(p, ["model.inr_pretrain_steps=2", "model.latent_stats_items=16"])
    model = build_model(p.model, p.model_config)
    data = build_dataset(p.data.source, root=p.data.root, split="train", **p.data.options)
    batches = [collate([data[i] for i in range(s, s + 16)]) for s in (0, 16, 32)]
    assert batches[0].meta["labels"].shape == (16,)
    opt = torch.optim.Adam([q for q in model.parameters() if q.requires_grad], lr=p.train.lr)
    model.train()
    terms = []
    for step, batch in enumerate(batches):
        out = model.loss(batch, step)
        opt.zero_grad()
        out["loss"].backward()
        if step < 2:  # phase 1: the INR learns; phase 2: it is frozen and the denoiser learns
            assert model.inr.to_latent[1].weight.grad.abs().sum() > 0
            assert all(q.grad is None for q in model.denoiser.parameters())
        else:
            assert all(q.grad is None for q in model.inr.parameters())
        opt.step()
        terms.append(out)
    assert 0 < terms[0]["loss"] < 1 and "inr_psnr" in terms[0]
    # first diffusion step: the statistics come from this very batch (x0 has mean 0 and variance 1 at
    # every position) and the zero-initialised denoiser predicts 0, so the x0 loss is E[x0^2] = 1
    assert abs(terms[2]["loss"].item() - 1.0) < 1e-4 and bool(model.standardizer.frozen)
    # sampled latents decode at the training resolution and at 2x (any resolution)
    model.eval()
    z = model.sample_latent(
        2, labels=torch.tensor([3, 7]), num_steps=3, generator=torch.Generator().manual_seed(0)
    )
    assert z.shape == (2, 16, 64) and torch.isfinite(z).all()
    for shape in ((28, 28), (56, 56)):
        xy = C.grid(shape).unsqueeze(0).expand(2, -1, -1)
        img = PointSet(xy, model.decode(z, xy).mean, grid_shape=shape).to_grid()
        assert img.shape == (2, 1, *shape) and torch.isfinite(img).all()
