"""The latent diffusion model around a frozen INR: training on toy latents, class-conditional samples,
the frozen INR, checkpoints, the generate task and clear errors."""

import dataclasses
import shutil

import pytest
import torch
from ldm_helpers import TokenINR, TokenINRConfig, make_ldm, small_config, token_points

import inrgen
from inrgen import tasks
from inrgen.checkpoint import save_checkpoint
from inrgen.models.latent_diffusion import LatentDiffusion, LatentDiffusionConfig

MEANS = torch.tensor(
    [
        [[2.0, 0.0], [0.0, 2.0], [-2.0, 0.0], [1.0, 1.0]],
        [[-2.0, 0.0], [0.0, -2.0], [2.0, 0.0], [-1.0, -1.0]],
    ]
)  # (class, R = 4, D = 2): a 2-class mixture of Gaussians in token space


def mixture(n, g, std=0.2):
    y = torch.randint(0, 2, (n,), generator=g)
    return MEANS[y] + std * torch.randn(n, 4, 2, generator=g), y


def train_on_mixture(steps, seed=0):
    torch.manual_seed(seed)
    model = make_ldm(
        dtype=torch.float32,
        num_classes=2,
        width=32,
        depth=2,
        heads=2,
        timestep_features=16,
        latent_stats_items=256,
        ema_decay=0.999,
    )
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    g = torch.Generator().manual_seed(seed)
    model.train()
    losses, first_items = [], []
    for step in range(steps):
        z, y = mixture(64, g)
        if step < 4:
            first_items.append(z)
        out = model.loss(token_points(z, y), step)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        losses.append(out["loss"].item())
    return model.eval(), losses, torch.cat(first_items)


def class_samples(model, n, guidance_scale, num_steps=20):
    gen = torch.Generator().manual_seed(1)
    latent_means = MEANS * model.inr.scale.detach() + model.inr.offset.detach()  # Z = 1.5 values + 0.3
    out = []
    for c in (0, 1):
        z = model.sample_latent(n, torch.full((n,), c), guidance_scale, num_steps, generator=gen)
        d_right = (z - latent_means[c]).flatten(1).norm(dim=1)
        d_wrong = (z - latent_means[1 - c]).flatten(1).norm(dim=1)
        out.append(((d_right < d_wrong).float().mean().item(), (z.mean(0) - latent_means[c]).norm().item()))
    return out


def test_training_on_a_two_class_mixture_learns_class_conditional_samples():
    model, losses, first_items = train_on_mixture(200)
    first, last = sum(losses[:10]) / 10, sum(losses[-50:]) / 50
    assert first > 0.8 and last < 0.5 * first  # the untrained output 0 has loss E||x0||^2 = 1
    # standardised with the first latent_stats_items = 256 = 4 x 64 training latents, then frozen
    seen = model.encode(token_points(first_items)).detach()
    mean, std = model.standardizer.stats()
    assert torch.allclose(mean, seen.mean(0), atol=1e-5) and torch.allclose(std, seen.std(0, unbiased=False))
    assert int(model.ema_step) == 199
    # class-conditional samples land in their class: the class means are 11.2 apart, clusters 0.85 wide
    for acc, mean_err in class_samples(model, 100, guidance_scale=1.5):
        assert acc > 0.97 and mean_err < 1.0


@pytest.mark.slow
def test_longer_training_samples_the_class_means_closely():
    model, losses, _ = train_on_mixture(1000)
    assert sum(losses[-100:]) / 100 < 0.35
    for guidance_scale in (1.0, 2.5):
        for acc, mean_err in class_samples(model, 200, guidance_scale, num_steps=50):
            assert acc == 1.0 and mean_err < (0.2 if guidance_scale == 1.0 else 0.5)


def test_frozen_inr_receives_no_gradient():
    torch.manual_seed(0)
    model = make_ldm()
    z = torch.randn(8, 4, 2, dtype=torch.float64)
    batch = token_points(z, torch.randint(0, 3, (8,)))
    model.train()
    assert not model.inr.training  # the INR stays in eval mode
    out = model.loss(batch, step=0)
    out["loss"].backward()
    assert all(p.grad is None and not p.requires_grad for p in model.inr.parameters())
    assert model.denoiser.proj_out.weight.grad.abs().sum() > 0
    assert model.num_parameters() == sum(p.numel() for p in model.denoiser.parameters())


def test_inr_pretraining_phase_then_frozen():
    torch.manual_seed(0)
    cfg = small_config(
        inr_model="ldm-test-token-inr", inr_config={"num_tokens": 4, "out_channels": 2}, inr_pretrain_steps=3
    )
    model = LatentDiffusion(cfg).double()
    batch = token_points(torch.randn(8, 4, 2, dtype=torch.float64), torch.randint(0, 3, (8,)))
    model.train()
    with pytest.raises(ValueError, match="no trained weights"):
        LatentDiffusion(small_config(inr_model="ldm-test-token-inr")).double().loss(batch, step=0)
    out = model.loss(batch, step=2)  # phase 1: the INR's own loss
    assert set(out) == {"loss", "inr_mse"}
    out["loss"].backward()
    assert model.inr.scale.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.denoiser.parameters())
    assert not bool(model.inr_trained)
    assert model.eval().loss(batch, step=3)["loss"] > 0  # an evaluation at the switch is fine
    model.train()
    model.zero_grad(set_to_none=True)
    out = model.loss(batch, step=3)  # phase 2: diffusion on the now frozen INR
    out["loss"].backward()
    assert all(p.grad is None for p in model.inr.parameters())
    assert bool(model.inr_trained)


def test_save_load_round_trip(tmp_path):
    torch.manual_seed(0)
    model = make_ldm(dtype=torch.float32, ema_decay=0.99, num_classes=3)
    opt = torch.optim.Adam(model.denoiser.parameters(), lr=1e-2)
    for step in range(3):
        z = torch.randn(16, 4, 2)
        loss = model.loss(token_points(z, torch.randint(0, 3, (16,))), step)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.save_pretrained(tmp_path / "ldm")
    back = inrgen.load(tmp_path / "ldm")
    assert isinstance(back, LatentDiffusion) and back.config == model.config
    sd, sd2 = model.state_dict(), back.state_dict()
    assert sd.keys() == sd2.keys() and all(torch.equal(sd[k], sd2[k]) for k in sd)
    assert int(back.ema_step) == 2 and bool(back.inr_trained)
    a = model.sample_latent(4, num_steps=5, generator=torch.Generator().manual_seed(0))
    b = back.sample_latent(4, num_steps=5, generator=torch.Generator().manual_seed(0))
    assert torch.equal(a, b) and not torch.equal(a, model.standardizer.denormalize(torch.zeros_like(a)))


def test_inr_from_checkpoint_folder_is_saved_inside(tmp_path):
    torch.manual_seed(0)
    inr = TokenINR(TokenINRConfig(num_tokens=5, out_channels=3))
    with torch.no_grad():
        inr.scale.fill_(2.0)
    save_checkpoint(tmp_path / "inr", inr)
    folder = str(tmp_path / "inr")
    # an empty inr_config adopts the checkpoint's INR (written into the config)
    model = LatentDiffusion(small_config(inr_checkpoint=folder))
    assert model.config.inr_model == "ldm-test-token-inr"
    assert model.config.inr_config == {"coord_dim": 1, "out_channels": 3, "num_tokens": 5}
    assert model.latent_shape == (5, 3) and bool(model.inr_trained)
    assert torch.equal(model.inr.scale, torch.full((3,), 2.0))
    # an explicit, matching inr_config loads the weights too
    same = small_config(inr_checkpoint=folder, inr_model="ldm-test-token-inr", inr_config={"num_tokens": 5})
    same.inr_config["out_channels"] = 3
    assert bool(LatentDiffusion(same).inr_trained)
    model.save_pretrained(tmp_path / "ldm")
    shutil.rmtree(tmp_path / "inr")  # the diffusion checkpoint alone suffices
    back = LatentDiffusion.from_pretrained(tmp_path / "ldm")
    assert torch.equal(back.inr.scale, torch.full((3,), 2.0)) and bool(back.inr_trained)
    # a fresh run whose INR folder is missing, or holds another INR, refuses to train
    batch = token_points(torch.randn(2, 5, 3), torch.tensor([0, 1]))
    fresh = LatentDiffusion(model.config)
    with pytest.raises(ValueError, match="does not exist"):
        fresh.train().loss(batch, 0)
    save_checkpoint(tmp_path / "inr2", TokenINR(TokenINRConfig(num_tokens=5, out_channels=2)))
    other = dataclasses.replace(model.config, inr_checkpoint=str(tmp_path / "inr2"))
    with pytest.raises(ValueError, match="differing fields: out_channels"):
        LatentDiffusion(other).train().loss(batch, 0)


def test_generate_task_and_sample_decode_the_sampled_latents():
    torch.manual_seed(0)
    model = make_ldm(ema_decay=0.0)
    with torch.no_grad():
        for p in model.denoiser.parameters():
            p.normal_(0, 0.2)
    coords = torch.linspace(-1, 1, 4, dtype=torch.float64).reshape(4, 1)
    pred = tasks.generate(model, 3, coords=coords, generator=torch.Generator().manual_seed(5))
    z = model.sample_latent(3, generator=torch.Generator().manual_seed(5))  # random labels from the seed
    assert torch.allclose(pred.mean, (z - model.inr.offset) / model.inr.scale)
    again = model.sample(3, coords, generator=torch.Generator().manual_seed(5))
    assert torch.equal(again.mean, pred.mean)
    # reconstruct is the INR's: decode(encode(p)) = p for the stand-in
    p = token_points(torch.randn(2, 4, 2, dtype=torch.float64))
    assert torch.allclose(tasks.reconstruct(model, p).mean, p.values)


def test_unconditional_model_needs_no_labels():
    torch.manual_seed(0)
    model = make_ldm(num_classes=0)
    assert model.denoiser.y_embed is None
    model.train()
    out = model.loss(token_points(torch.randn(8, 4, 2, dtype=torch.float64)), step=0)
    assert out["loss"] > 0 and out["label_drop"] == 0
    z = model.sample_latent(2, labels=torch.tensor([0, 1]), num_steps=3)  # labels are ignored
    assert torch.isfinite(z).all()


def test_clear_errors():
    model = make_ldm()
    model.train()
    z = torch.randn(4, 4, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"meta\['labels'\]"):
        model.loss(token_points(z), step=0)
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        model.loss(token_points(z, torch.tensor([0, 1, 2, 3])), step=0)
    with pytest.raises(ValueError, match="integer tensor of shape"):
        model.sample_latent(2, labels=torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="num_steps"):
        model.sample_latent(2, num_steps=0)
    with pytest.raises(ValueError, match="sampler"):
        model.sample_latent(2, sampler="euler")
    other = make_ldm(inr_kw={"num_tokens": 6})
    with pytest.raises(ValueError, match="disagree"):
        LatentDiffusion.from_inr(other.inr, small_config(num_tokens=5))
    with pytest.raises(ValueError, match="prediction_type"):
        LatentDiffusionConfig(prediction_type="x0")
    with pytest.raises(ValueError, match="p_uncond"):
        LatentDiffusionConfig(p_uncond=1.0)
    with pytest.raises(ValueError, match="num_sampling_steps"):
        LatentDiffusionConfig(num_train_timesteps=100, num_sampling_steps=250)
    with pytest.raises(KeyError, match="unknown INR model"):
        LatentDiffusion(small_config(inr_model="nope"))
    model.inr.encode = lambda points: torch.zeros(points.batch_size, 5, 2)  # an INR with other latents
    with pytest.raises(ValueError, match=r"token latents \(B, 4, 2\)"):
        model.encode(token_points(z))


def test_pinned_values_of_a_tiny_seeded_model():
    """Regression values (diffusers 0.42, torch 2.13): a refactor must not silently change the model."""
    torch.manual_seed(0)
    model = make_ldm()
    with torch.no_grad():
        for p in model.denoiser.parameters():
            p.normal_(0, 0.2)
    model.standardizer.update(torch.linspace(-3, 5, 64, dtype=torch.float64).reshape(8, 4, 2))
    g = torch.Generator().manual_seed(0)
    z = model.sample_latent(2, labels=torch.tensor([0, 2]), guidance_scale=2.5, num_steps=10, generator=g)
    assert torch.allclose(z[0, 0], torch.tensor([2.300725395608599, -0.4346831431204117]).double(), atol=1e-9)
    assert abs(z.sum().item() - 16.35519695091666) < 1e-8
    torch.manual_seed(1)
    batch = token_points(
        torch.linspace(-1, 1, 32, dtype=torch.float64).reshape(4, 4, 2), torch.tensor([0, 1, 2, 0])
    )
    assert abs(model.train().loss(batch, 0)["loss"].item() - 0.8578990822912747) < 1e-10


@pytest.mark.parametrize("preset", ["laginr-mnist-small", "ipc-mnist-small"])
def test_from_inr_works_as_the_docstring_shows_without_the_latent_shape(preset):
    """``LatentDiffusion.from_inr(trained_inr, LatentDiffusionConfig(num_classes=10, ...))`` with neither
    num_tokens nor token_dim: the shape comes from the INR (its latent_shape, or its encoder and latent
    map)."""
    from inrgen import coords as C
    from inrgen.configs import get_preset
    from inrgen.models import build_model

    p = get_preset(preset)
    torch.manual_seed(0)
    trained_inr = build_model(p.model, p.model_config).eval()
    cfg = LatentDiffusionConfig(num_classes=10, width=32, depth=1, heads=2, num_sampling_steps=4,
                                latent_stats_items=8, ema_decay=0.0)  # fmt: skip
    assert (cfg.num_tokens, cfg.token_dim) == (0, 0)
    model = LatentDiffusion.from_inr(trained_inr, cfg)
    images = torch.rand(3, 1, 28, 28)
    z_inr = trained_inr.encode(inrgen.PointSet.from_image(images))
    assert model.latent_shape == tuple(z_inr.shape[1:]) == (16, z_inr.shape[-1])
    torch.testing.assert_close(model.encode(inrgen.PointSet.from_image(images)), z_inr)
    z = model.sample_latent(4, labels=torch.arange(4) % 10, guidance_scale=2.5, num_steps=3)
    assert z.shape == (4, *model.latent_shape)
    coords = C.grid((28, 28)).unsqueeze(0).expand(4, -1, -1)
    out = model.decode(z, coords).mean
    assert out.shape == (4, 784, 1) and torch.isfinite(out).all()
