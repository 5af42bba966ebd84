"""The diffusion process of latent diffusion: training targets, samplers, guidance, label dropout,
standardisation and the denoiser, against independently computed references (float64)."""

import math

import pytest
import torch
from ldm_helpers import make_ldm, token_points
from torch import nn

from inrgen.models.latent_diffusion import (
    LatentDenoiser,
    LatentDiffusionConfig,
    LatentStandardizer,
    classifier_free_guidance,
    make_scheduler,
    run_sampler,
    timestep_embedding,
)


def linear_abar(T=1000, beta_start=1e-4, beta_end=0.02):
    """DDPM's linear schedule, computed here in float64: abar_t = prod_{s<=t} (1 - beta_s)."""
    betas = torch.linspace(beta_start, beta_end, T, dtype=torch.float64)
    return torch.cumprod(1 - betas, 0)


def scheduler_abar(T=1000, beta_end=0.02):
    """The schedule the model uses (diffusers keeps it in float32; checked against linear_abar below)."""
    cfg = LatentDiffusionConfig(num_train_timesteps=T, beta_end=beta_end, num_sampling_steps=1)
    return make_scheduler(cfg).alphas_cumprod.double()


class Oracle(nn.Module):
    """A perfect denoiser for known clean latents ``x0`` (b, r, d): returns the exact target of
    ``prediction_type`` given ``x_t`` and ``t`` for the schedule ``abar``."""

    def __init__(self, x0_fn, prediction_type, abar):
        super().__init__()
        self.x0_fn, self.kind, self.abar = x0_fn, prediction_type, abar
        self.calls = []

    def forward(self, x, t, y=None):
        self.calls.append((x.clone(), t.clone(), None if y is None else y.clone()))
        x0 = self.x0_fn().expand_as(x)
        a = self.abar[t].to(x.dtype).reshape(-1, 1, 1)
        eps = (x - a.sqrt() * x0) / (1 - a).sqrt()
        if self.kind == "sample":
            return x0
        if self.kind == "epsilon":
            return eps
        return a.sqrt() * eps - (1 - a).sqrt() * x0  # v


# --------------------------------------------------------------------------------------- training target


@pytest.mark.parametrize("kind", ["sample", "epsilon", "v_prediction"])
def test_training_target_matches_the_forward_process(kind):
    """With a perfect denoiser the loss vanishes: x_t = sqrt(abar) x0 + sqrt(1 - abar) eps and the
    target (x0 by default, as the paper) are exactly the DDPM linear-schedule quantities."""
    torch.manual_seed(0)
    model = make_ldm(num_train_timesteps=1000, beta_end=0.02, prediction_type=kind)
    z = torch.randn(64, 4, 2, dtype=torch.float64) * 3 + 1
    batch = token_points(z, torch.randint(0, 3, (64,)))
    model.standardizer.update(model.encode(batch))
    latents = model.encode(batch)
    oracle = Oracle(lambda: model.standardizer.normalize(latents), kind, scheduler_abar())
    model.denoiser = oracle
    model.train()
    losses = [model.loss(batch, step=i)["loss"].item() for i in range(5)]
    assert max(losses) < 1e-10
    ts = torch.cat([c[1] for c in oracle.calls])
    assert ts.min() >= 0 and ts.max() < 1000 and len(set(ts.tolist())) > 100  # t ~ U{0..T-1}
    # negative control: the x0 oracle under an eps objective is far off (E||eps - x0||^2 = 2)
    if kind == "epsilon":
        model.denoiser = Oracle(lambda: model.standardizer.normalize(latents), "sample", scheduler_abar())
        assert model.loss(batch, step=9)["loss"].item() > 1.0


def test_paper_schedule_is_the_linear_ddpm_one():
    cfg = LatentDiffusionConfig()
    s = make_scheduler(cfg, "ddpm")
    assert cfg.num_train_timesteps == 1000 and cfg.prediction_type == "sample"
    assert s.config.prediction_type == "sample" and not s.config.clip_sample
    assert torch.allclose(s.alphas_cumprod.double(), linear_abar(), rtol=1e-5)
    assert torch.equal(s.alphas_cumprod.double(), scheduler_abar())
    assert s.alphas_cumprod[-1] < 5e-5  # x_T is (almost) pure noise


# ----------------------------------------------------------------------------------------- samplers


@pytest.mark.parametrize("kind", ["sample", "epsilon"])
@pytest.mark.parametrize("sampler", ["ddim", "ddpm"])
@pytest.mark.parametrize("steps", [1, 7, 50])
def test_oracle_denoiser_samples_the_latent(kind, sampler, steps):
    """A denoiser that knows the one latent z* makes the sampler return z* (after de-standardising)."""
    torch.manual_seed(1)
    model = make_ldm(num_train_timesteps=1000, beta_end=0.02, prediction_type=kind)
    model.standardizer.update(torch.randn(50, 4, 2, dtype=torch.float64) * 2 + 5)
    z_star = torch.randn(1, 4, 2, dtype=torch.float64) * 2 + 5
    model.denoiser = Oracle(lambda: model.standardizer.normalize(z_star), kind, scheduler_abar())
    g = torch.Generator().manual_seed(0)
    z = model.sample_latent(3, guidance_scale=2.5, num_steps=steps, sampler=sampler, generator=g)
    assert torch.allclose(z, z_star.expand(3, -1, -1), atol=1e-9)


def test_ddim_with_perfect_x0_keeps_its_noise():
    """Deterministic DDIM with the true x0: every state is sqrt(abar) x0 + sqrt(1 - abar) eps with the
    same eps (the one implied by x_T), so the trajectory is the exact forward-process path."""
    cfg = LatentDiffusionConfig(num_sampling_steps=20)
    abar = scheduler_abar()
    x0 = torch.randn(2, 3, 4, dtype=torch.float64)
    x_T = torch.randn(2, 3, 4, dtype=torch.float64)
    sched = make_scheduler(cfg, "ddim")
    seen = []
    out = run_sampler(lambda x, t: x0, x_T, sched, 20, callback=lambda i, t, x: seen.append((i, x)))
    ts = sched.timesteps.tolist()
    assert ts[0] == 950 and ts[-1] == 0 and len(ts) == 20  # "leading" spacing, as in the DDIM paper
    eps0 = (x_T - abar[ts[0]].sqrt() * x0) / (1 - abar[ts[0]]).sqrt()
    for i, x in seen[:-1]:
        a = abar[ts[i + 1]]
        assert torch.allclose((x - a.sqrt() * x0) / (1 - a).sqrt(), eps0, atol=1e-5)
    assert torch.allclose(out, x0, atol=1e-12)


def test_ddpm_with_perfect_x0_has_the_forward_marginals():
    """Ancestral sampling from the exact marginal at t_start with the true x0 keeps q(x_t | x0) =
    N(sqrt(abar_t) x0, (1 - abar_t) I) at every later step (posterior q(x_{t'} | x_t, x0) of DDPM)."""
    cfg = LatentDiffusionConfig()
    abar = linear_abar()
    n, x0_val = 40000, 1.7
    sched = make_scheduler(cfg, "ddpm")
    sched.set_timesteps(25)
    ts = sched.timesteps.tolist()
    g = torch.Generator().manual_seed(3)
    a0 = abar[ts[0]]
    x_T = a0.sqrt() * x0_val + (1 - a0).sqrt() * torch.randn(n, 1, 1, generator=g, dtype=torch.float64)
    seen = {}
    run_sampler(
        lambda x, t: torch.full_like(x, x0_val),
        x_T,
        make_scheduler(cfg, "ddpm"),
        25,
        generator=g,
        callback=lambda i, t, x: seen.__setitem__(i, x.flatten()),
    )
    for i in (3, 12, 20):
        a = abar[ts[i + 1]]
        mean, var = seen[i].mean(), seen[i].var()
        assert abs(mean - a.sqrt() * x0_val) < 5 * math.sqrt((1 - a) / n)
        assert abs(var / (1 - a) - 1) < 5 * math.sqrt(2 / n)
    assert torch.allclose(seen[24], torch.full((n,), x0_val, dtype=torch.float64))


def test_exact_gaussian_denoiser_samples_the_gaussian_with_the_papers_sampler():
    """For data N(m, s^2 I) the exact x0-predictor is E[x0 | x_t] = m + sqrt(a) s^2 / (a s^2 + 1 - a)
    (x_t - sqrt(a) m); 250 DDIM steps (the paper's sampler) then reproduce mean and spread."""
    cfg = LatentDiffusionConfig()
    abar = scheduler_abar()
    m, s = 2.0, 0.3

    def posterior_mean(x, t):
        a = abar[t].reshape(-1, 1, 1)
        return m + a.sqrt() * s**2 / (a * s**2 + 1 - a) * (x - a.sqrt() * m)

    g = torch.Generator().manual_seed(0)
    x_T = torch.randn(4000, 2, 2, generator=g, dtype=torch.float64)
    out = run_sampler(posterior_mean, x_T, make_scheduler(cfg, "ddim"), 250)
    assert abs(out.mean().item() - m) < 0.015  # x_T ~ N(0, I) instead of N(sqrt(abar_T) m, ...): ~0.006
    assert abs(out.std().item() / s - 1) < 0.03  # 250 steps discretise the ODE: ~1 % narrower


# -------------------------------------------------------------------------------- guidance and labels


def _random_denoiser(token_dim=3, num_tokens=5, **kw):
    torch.manual_seed(2)
    net = LatentDenoiser(token_dim, num_tokens, width=16, depth=2, heads=2, timestep_features=8, **kw)
    with torch.no_grad():
        for p in net.parameters():  # leave the zero init so every path carries signal
            p.normal_(0, 0.3)
    return net.double()


def test_classifier_free_guidance_scales():
    torch.manual_seed(0)
    model = make_ldm()
    model.denoiser = _random_denoiser(token_dim=2, num_tokens=4, num_classes=3)
    x = torch.randn(4, 4, 2, dtype=torch.float64)
    t = torch.tensor([0, 10, 50, 99])
    y = torch.tensor([0, 1, 2, 1])
    null = torch.full_like(y, 3)
    net = model.denoiser
    cond, uncond = net(x, t, y), net(x, t, null)
    assert not torch.allclose(cond, uncond)  # the label matters
    assert torch.equal(model.predict(x, t, y, 1.0, net), cond)
    assert torch.allclose(model.predict(x, t, y, 0.0, net), uncond, atol=1e-12)
    for s in (0.5, 2.5, 4.0):
        ref = uncond + s * (cond - uncond)
        assert torch.allclose(model.predict(x, t, y, s, net), ref, atol=1e-12)
    assert torch.allclose(classifier_free_guidance(cond, uncond, 1.0), cond, atol=1e-12)
    assert torch.allclose(classifier_free_guidance(cond, uncond, 0.0), uncond, atol=1e-12)


def test_label_dropout_rate_matches_p_uncond():
    model = make_ldm(num_classes=10, p_uncond=0.1)
    n = 200_000
    labels = torch.randint(0, 10, (n,), generator=torch.Generator().manual_seed(0))
    dropped = model.drop_labels(labels, generator=torch.Generator().manual_seed(1))
    is_null = dropped == 10
    assert abs(is_null.float().mean().item() - 0.1) < 4.5 * math.sqrt(0.1 * 0.9 / n)
    assert torch.equal(dropped[~is_null], labels[~is_null])  # kept labels are untouched
    # inside the training loss: the labels the denoiser sees are dropped at the same rate
    torch.manual_seed(0)
    z = torch.randn(500, 4, 2, dtype=torch.float64)
    batch = token_points(z, torch.randint(0, 10, (500,)))
    model.denoiser = Oracle(
        lambda: torch.zeros(1, 4, 2, dtype=torch.float64), "sample", scheduler_abar(100, 0.2)
    )
    model.train()
    fracs = [model.loss(batch, step=i)["label_drop"].item() for i in range(20)]
    seen = torch.cat([c[2] for c in model.denoiser.calls])
    assert abs((seen == 10).float().mean().item() - 0.1) < 4.5 * math.sqrt(0.09 / seen.numel())
    assert abs(sum(fracs) / len(fracs) - (seen == 10).float().mean().item()) < 1e-6
    model.eval()  # evaluation never drops labels
    model.loss(batch, step=100)
    assert torch.equal(model.denoiser.calls[-1][2], batch.meta["labels"])


# ----------------------------------------------------------------------------------- standardisation


def test_standardizer_streams_exact_statistics_and_round_trips():
    g = torch.Generator().manual_seed(0)
    mu = torch.randn(4, 3, generator=g, dtype=torch.float64) * 10
    sd = torch.rand(4, 3, generator=g, dtype=torch.float64) * 3 + 0.1
    data = mu + sd * torch.randn(100, 4, 3, generator=g, dtype=torch.float64)
    for mode in ("token", "channel"):
        st = LatentStandardizer(4, 3, mode).double()
        assert torch.equal(st.normalize(data), data)  # identity before any statistics
        for a, b in ((0, 1), (1, 8), (8, 38), (38, 100)):  # uneven batches merge exactly
            st.update(data[a:b])
        mean, std = st.stats()
        if mode == "token":
            ref_m, ref_s = data.mean(0), data.std(0, unbiased=False)
        else:
            ref_m, ref_s = data.mean((0, 1)), data.std((0, 1), unbiased=False)
        assert torch.allclose(mean.squeeze(), ref_m, atol=1e-10)
        assert torch.allclose(std.squeeze(), ref_s, atol=1e-10)
        x = st.normalize(data)
        assert torch.allclose(st.denormalize(x), data, atol=1e-10)
        dims = (0,) if mode == "token" else (0, 1)
        assert torch.allclose(x.mean(dims), torch.zeros(()).double(), atol=1e-10)
        assert torch.allclose(x.std(dims, unbiased=False), torch.ones(()).double(), atol=1e-10)
    st = LatentStandardizer(4, 3, "none").double()
    st.update(data)
    assert torch.equal(st.normalize(data), data) and torch.equal(st.denormalize(data), data)


def test_standardizer_freezes_at_target_and_is_stable_in_float32():
    st = LatentStandardizer(2, 2)
    g = torch.Generator().manual_seed(0)
    data = 1e4 + torch.randn(3000, 2, 2, generator=g)  # large offset, unit spread: naive sums cancel
    for i in range(0, 3000, 100):
        st.update(data[i : i + 100], target=1000)
    assert float(st.count) == 1000 and bool(st.frozen)
    ref = data[:1000].double()
    mean, std = st.stats()
    assert torch.allclose(mean.double(), ref.mean(0), atol=1e-3)
    assert torch.allclose(std.double(), ref.std(0, unbiased=False), rtol=1e-3)


def test_model_fit_latent_stats():
    model = make_ldm()
    z = torch.randn(40, 4, 2, dtype=torch.float64) * 4 - 2
    batches = [token_points(z[i : i + 16]) for i in range(0, 40, 16)]
    model.fit_latent_stats(batches, max_items=30)
    latents = model.encode(token_points(z[:30]))
    mean, std = model.standardizer.stats()
    assert torch.allclose(mean, latents.mean(0), atol=1e-10)
    assert torch.allclose(std, latents.std(0, unbiased=False), atol=1e-10)
    assert bool(model.standardizer.frozen)


# ------------------------------------------------------------------------------------------ denoiser


def test_denoiser_size_matches_the_paper():
    """24 blocks x 1024 wide x 16 heads with adaLN-Zero over 256 tokens of 256 channels, 1000 classes:
    458 M parameters, as the paper reports (in-context conditioning would give about 303 M)."""
    with torch.device("meta"):
        net = LatentDenoiser(256, 256, width=1024, depth=24, heads=16, num_classes=1000)
    n = sum(p.numel() for p in net.parameters())
    assert abs(n / 1e6 - 458) < 1.0
    per_block = sum(p.numel() for p in net.blocks[0].parameters())
    assert per_block == 4 * (1024 * 1024 + 1024) + 2 * 1024 * 4096 + 4096 + 1024 + 6 * (1024 * 1024 + 1024)


def test_untrained_denoiser_predicts_zero_and_sinusoid_features():
    net = LatentDenoiser(3, 5, width=16, depth=2, heads=2, num_classes=4, timestep_features=8)
    x = torch.randn(2, 5, 3)
    assert torch.equal(net(x, torch.tensor([3, 7]), torch.tensor([0, 4])), torch.zeros(2, 5, 3))
    e = timestep_embedding(torch.tensor([0, 5]), 8)
    w = 10000 ** (-torch.arange(4, dtype=torch.float64) / 4)
    assert torch.allclose(e[1], torch.cat([torch.cos(5 * w), torch.sin(5 * w)]))
    assert torch.equal(e[0], torch.tensor([1.0, 1, 1, 1, 0, 0, 0, 0], dtype=torch.float64))


def test_without_positional_embedding_the_denoiser_is_permutation_equivariant():
    net = _random_denoiser(num_classes=2, pos_embedding="none")
    x = torch.randn(2, 5, 3, dtype=torch.float64)
    t, y = torch.tensor([4, 90]), torch.tensor([1, 0])
    perm = torch.tensor([3, 0, 4, 1, 2])
    assert torch.allclose(net(x[:, perm], t, y), net(x, t, y)[:, perm], atol=1e-12)
    learned = _random_denoiser(num_classes=2)
    assert not torch.allclose(learned(x[:, perm], t, y), learned(x, t, y)[:, perm], atol=1e-3)
