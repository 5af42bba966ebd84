"""VaMoH: the ELBO and its terms, decoding, priors, gradients, checkpoints, bad inputs."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from vamoh_tiny import tiny_model

from inrgen.data.points import PointSet, PointSetPair
from inrgen.models.vamoh import PointConvConfig, VaMoH, VaMoHConfig
from inrgen.nn.flows import kl_normal_std
from inrgen.nn.likelihoods import component_log_prob
from inrgen.tasks import decode_chunked


def _image(b: int = 2, h: int = 4, w: int = 4, c: int = 1, seed: int = 0) -> PointSet:
    g = torch.Generator().manual_seed(seed)
    img = torch.randint(0, 256, (b, c, h, w), generator=g).double() / 255
    return PointSet.from_image(img)


# ------------------------------------------------------------------------------------------- decoding


def test_batched_hyper_inr_equals_per_item_loop():
    model = tiny_model(likelihood="gaussian")  # two raw outputs per channel: checks the channel layout
    g = torch.Generator().manual_seed(1)
    z = torch.randn(3, 3, generator=g, dtype=torch.float64)
    coords = torch.rand(3, 10, 2, generator=g, dtype=torch.float64)
    feats = model.gamma(coords)
    comp = model._components(z, feats)  # batch (b, n, K, C)
    for b in range(3):
        flat = torch.cat([lin_out(model, z[b : b + 1], k) for k in range(3)])  # (K, P)
        for k in range(3):
            p = flat[k]
            w0, w1 = p[: 5 * 16].reshape(5, 16), p[80:90].reshape(2, 5)
            b0, b1 = p[90:95], p[95:97]
            h = torch.nn.functional.leaky_relu(feats[b] @ w0.T + b0, 0.1)
            raw = h @ w1.T + b1  # (n, 2): [loc | scale parameter]
            torch.testing.assert_close(comp.loc[b, :, k, 0], raw[:, 0], rtol=1e-12, atol=1e-12)
            scale = 1e-3 + torch.nn.functional.softplus(raw[:, 1])
            torch.testing.assert_close(comp.scale[b, :, k, 0], scale, rtol=1e-12, atol=1e-12)


def lin_out(model: VaMoH, z: torch.Tensor, k: int) -> torch.Tensor:
    """Hypernetwork k on z, written out with explicit matrix products."""
    h = z
    n = len(model.hypernet.weights)
    for i, (w, b) in enumerate(zip(model.hypernet.weights, model.hypernet.biases)):
        h = h @ w[k].T + b[k]
        if i < n - 1:
            h = torch.nn.functional.leaky_relu(h, 0.1)
    return h


def test_prediction_is_the_mixture_of_the_components():
    model = tiny_model(logistic_moments="exact")
    ps = _image()
    q = model.encode(ps)
    pred = model.decode(q, ps.coords)
    w = pred.weights
    torch.testing.assert_close(w.sum(-1), torch.ones_like(w[..., 0]))
    torch.testing.assert_close(pred.mean, (w.unsqueeze(-1) * pred.components).sum(-2))
    # exact moments: the same as the mixture distribution's (law of total variance)
    torch.testing.assert_close(pred.mean, pred.distribution.mean)
    torch.testing.assert_close(pred.variance, pred.distribution.variance)
    k = w.argmax(-1)
    torch.testing.assert_close(pred.mode, pred.components.gather(2, k[..., None, None]).squeeze(2))
    # the latent of a Distribution is its mean
    torch.testing.assert_close(model.decode(q.mean, ps.coords).mean, pred.mean, rtol=0, atol=0)
    # posterior weights (values given) differ from the prior weights and sum to one
    post = model.decode(q, ps.coords, values=ps.values)
    torch.testing.assert_close(post.weights.sum(-1), torch.ones_like(w[..., 0]))
    assert not torch.allclose(post.weights, w)
    torch.testing.assert_close(post.components, pred.components, rtol=0, atol=0)


@pytest.mark.parametrize("with_values", [False, True])
def test_chunked_render_equals_unchunked(with_values):
    model = tiny_model()
    ps = _image(b=2, h=6, w=5)
    q = model.encode(ps)
    values = ps.values if with_values else None
    full = decode_chunked(model, q, ps.coords, None, values=values)
    for chunk in (1, 7, 29):
        part = decode_chunked(model, q, ps.coords, chunk, values=values)
        for name in ("mean", "variance", "mode", "components", "weights"):
            torch.testing.assert_close(getattr(part, name), getattr(full, name), rtol=1e-12, atol=1e-14)


def test_shared_and_per_item_coordinates_decode_alike():
    model = tiny_model()
    ps = _image(b=3)
    z = torch.randn(3, 3, dtype=torch.float64)
    shared = model.decode(z, ps.coords)
    per_item = model.decode(z, ps.coords.clone() + 0.0 * torch.rand(3, 1, 1, dtype=torch.float64))
    torch.testing.assert_close(shared.mean, per_item.mean, rtol=1e-12, atol=1e-14)
    coords = ps.coords.clone()
    coords[1] += 0.01  # really different coordinates: the per-item path
    moved = model.decode(z, coords)
    torch.testing.assert_close(moved.mean[0], shared.mean[0], rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(
        moved.mean[1], model.decode(z[1:2], coords[1:2]).mean[0], rtol=1e-12, atol=1e-14
    )


# ------------------------------------------------------------------------------------------ the ELBO


def test_closed_form_categorical_kl_equals_enumeration():
    model = tiny_model(encoder=PointConvConfig(centroids=(3, 3), neighbors=(2, 2), out_channels=(4, 4)))
    g = torch.Generator().manual_seed(3)
    ps = PointSet(
        torch.rand(1, 3, 2, generator=g, dtype=torch.float64), torch.rand(1, 3, 1, generator=g).double()
    )
    zs = torch.randn(1, 1, 3, generator=g, dtype=torch.float64)
    kl_c = model.elbo(ps, zs=zs)["kl_c"]
    feats = model.gamma(ps.coords[0])
    log_q = model.post_cat(feats, zs[0], ps.values).log_softmax(-1)[0]  # (3 points, K)
    log_p = model.prior_cat(feats, zs[0]).log_softmax(-1)[0]
    total = 0.0
    for c in itertools.product(range(3), repeat=3):  # every joint assignment C of the 3 points
        lq = sum(float(log_q[d, c[d]].detach()) for d in range(3))
        lp = sum(float(log_p[d, c[d]].detach()) for d in range(3))
        total += math.exp(lq) * (lq - lp)
    assert float(kl_c[0].detach()) == pytest.approx(total, rel=1e-12)


def test_monte_carlo_kl_z_converges_to_closed_form_for_standard_normal_prior():
    model = tiny_model(warmup_steps=10**6)  # the N(0, I) warm-up prior
    mu = torch.tensor([[1.0, -0.5, 2.0], [0.0, 0.3, -1.0]], dtype=torch.float64)
    sigma = torch.tensor([[0.5, 1.5, 0.8], [1.0, 0.2, 2.0]], dtype=torch.float64)
    q = torch.distributions.Independent(torch.distributions.Normal(mu, sigma), 1)
    torch.manual_seed(0)
    zs = q.rsample((200_000,))
    mc = model.kl_z(q, zs, step=0)
    closed = kl_normal_std(q)
    terms = q.log_prob(zs) - model.prior(0).log_prob(zs)
    se = terms.std(0) / math.sqrt(zs.shape[0])
    assert bool(((mc - closed).abs() < 4 * se).all())
    assert bool(((mc - closed).abs() / closed < 0.01).all())


def test_elbo_is_below_importance_sampled_log_likelihood():
    """log p(Y|X) >= IWAE_S >= ELBO (in expectation); estimated in float64 with many samples."""
    model = tiny_model(warmup_steps=0)  # flow prior, exact log-density by inversion
    ps = _image(b=1, h=3, w=3, seed=5)
    q = model.encode(ps)
    torch.manual_seed(0)
    # the ELBO (Eq. 16), averaged over 4000 posterior samples
    zs = q.rsample((4000,)).transpose(0, 1)  # (1, S, dz) -> one sample per replicated item
    rep = PointSet(ps.coords.expand(4000, -1, -1), ps.values.expand(4000, -1, -1))
    model.encoder._cache = None
    terms = model.elbo(rep, zs=zs.reshape(1, 4000, 3))
    elbo, elbo_se = terms["elbo"].mean(), terms["elbo"].std() / math.sqrt(4000)
    # importance sampling with q as proposal: log mean_s p(Y, z_s | X) / q(z_s)
    S = 40_000
    z = q.sample((S,))[:, 0]  # (S, dz)
    feats = model.gamma(ps.coords[0])
    comp = model._components(z, feats)
    log_pk = component_log_prob(comp, ps.values.expand(S, -1, -1))  # (S, n, K)
    log_pi = model.prior_cat(feats, z).log_softmax(-1)
    log_lik = torch.logsumexp(log_pi + log_pk, -1).sum(-1)  # c marginalised exactly
    log_w = log_lik + model.prior().log_prob(z) - q.log_prob(z.unsqueeze(1))[:, 0]
    log_px = torch.logsumexp(log_w, 0) - math.log(S)
    elbo, elbo_se, log_px = float(elbo.detach()), float(elbo_se.detach()), float(log_px.detach())
    assert elbo + 4 * elbo_se < log_px
    assert log_px - elbo < 50  # same order: the bound is not vacuous


def test_kl_z_estimators_and_their_gradients():
    ps = _image()
    # paper: MC with reparameterised samples -> gradients to the encoder and to the flow
    model = tiny_model(warmup_steps=0)
    q = model.encoder(ps)
    model.kl_z(q, q.rsample((3,)), step=5).sum().backward()
    assert model.encoder.head.weight.grad is not None and model.flow.layers[0].u.grad is not None
    # released code, flow phase: -mean log p over stop-gradient samples -> no gradient to the encoder
    model = tiny_model(warmup_steps=0, kl_z_estimator="official")
    q = model.encoder(ps)
    kl = model.kl_z(q, q.rsample((1,)), step=5)
    kl.sum().backward()
    assert model.encoder.head.weight.grad is None and model.flow.layers[0].u.grad is not None
    # ... and the analytic KL during the warm-up
    model = tiny_model(warmup_steps=100, kl_z_estimator="official")
    q = model.encoder(ps)
    torch.testing.assert_close(model.kl_z(q, q.rsample((1,)), step=5), kl_normal_std(q))


def test_every_parameter_gets_a_gradient_and_schedules_freeze_the_right_ones():
    ps = _image(b=3, h=5, w=5)
    model = tiny_model(warmup_steps=0, point_dropout=0.3).train()
    model.loss(ps, step=1)["loss"].backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or float(p.grad.abs().sum()) == 0]
    assert missing == []
    # warm-up: the flow is not used; uniform p(c) phase: the prior network is not used
    model = tiny_model(warmup_steps=10, uniform_cat_prior_steps=10).train()
    model.loss(ps, step=3)["loss"].backward()
    unused = {n.split(".")[0] for n, p in model.named_parameters() if p.grad is None}
    assert unused == {"flow", "prior_cat"}


def test_loss_reports_the_elbo_terms_consistently():
    model = tiny_model()
    ps = _image(b=3, h=5, w=5)
    torch.manual_seed(0)
    out = model.loss(ps, step=0)  # eval mode: no dropout
    torch.manual_seed(0)
    t = model.elbo(ps, step=0)
    torch.testing.assert_close(out["elbo"], t["elbo"].mean())
    torch.testing.assert_close(out["elbo"], out["recon"] - out["kl_z"] - out["kl_c"])
    torch.testing.assert_close(out["loss"], -t["elbo"].sum() / (3 * 25))  # nats per observed value
    assert float(out["kl_c"]) >= 0 and float(out["keep_rate"]) == 1.0
    err = (t["mean"] - ps.values).pow(2).mean((1, 2))
    torch.testing.assert_close(out["psnr"], (-10 * torch.log10(err + 1e-10)).mean())


@pytest.mark.filterwarnings("ignore:.*centroid counts of the layers shrink")
@pytest.mark.parametrize("target", ["all", "kept"])
def test_point_dropout_hides_points_from_the_encoder(target):
    model = tiny_model(point_dropout=0.9, dropout_target=target).train()
    seen: list[PointSet] = []
    model.encoder.register_forward_pre_hook(lambda mod, args: seen.append(args[0]))
    ps = _image(b=4, h=6, w=6)
    torch.manual_seed(0)
    rates = []
    for step in range(10):
        out = model.loss(ps, step)
        ctx = seen[-1]
        kept = int(ctx.num_observed()[0])
        # one mask for the batch; at least the first layer's 8 centroids kept (Sec. 3.3)
        assert ctx.shares_coords() and model.dropout_floor == 8 and 8 <= kept <= 36
        assert float(out["keep_rate"]) == pytest.approx(kept / 36)
        rates.append(kept / 36)
        # Algorithm 1: the ELBO covers every point of the batch; released code: the kept points only
        n_values = 4 * (36 if target == "all" else kept)
        torch.testing.assert_close(out["loss"].detach() * n_values, -out["elbo"] * 4)
    assert min(rates) < 0.8  # p ~ U(0, 0.9): some batches lose many points


def test_train_max_points_subsample_is_shared_and_deterministic_at_encode():
    model = tiny_model(train_max_points=10)
    ps = _image(b=3, h=6, w=6)
    torch.manual_seed(0)
    sub = model._limit_points(ps)
    assert sub.shares_coords() and sub.num_observed().tolist() == [10, 10, 10]
    torch.testing.assert_close(model.encode(ps).mean, model.encode(ps).mean, rtol=0, atol=0)


# ------------------------------------------------------------------------------------------- priors


def test_prior_switches_from_standard_normal_to_flow_after_warmup():
    model = tiny_model(warmup_steps=5).train()
    z = torch.randn(4, 3, dtype=torch.float64)
    std = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1)
    torch.testing.assert_close(model.prior().log_prob(z), std)
    model.loss(_image(), step=7)
    assert int(model.trained_steps) == 7 and model.flow_active()
    torch.testing.assert_close(model.prior().log_prob(z), model.flow().log_prob(z))
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    torch.testing.assert_close(model.sample_latent(5, g1), model.sample_latent(5, g2), rtol=0, atol=0)


# ------------------------------------------------------------------------------------- checkpoints


@pytest.mark.parametrize("official", [False, True])
def test_save_and_load_round_trip(tmp_path, official):
    opts = {}
    if official:  # the released code's options: PointConv on gamma(x) (a shared module), tanh logits...
        enc = PointConvConfig(
            centroids=(8, 4),
            neighbors=(4, 3),
            out_channels=(4, 4),
            weightnet_hidden=(4,),
            encoder_input="fourier",
            weightnet_activation="identity",
        )
        opts = dict(
            encoder=enc, cat_logits="tanh", likelihood_options={"scale": "fixed"}, kl_z_estimator="official"
        )
    model = tiny_model(dtype=torch.float32, warmup_steps=1, **opts).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    ps = _image(b=3, h=5, w=5).to(dtype=torch.float32)
    for step in range(3):
        opt.zero_grad()
        model.loss(ps, step)["loss"].backward()
        opt.step()
    model.eval()
    model.save_pretrained(tmp_path / "ckpt")
    loaded = VaMoH.from_pretrained(tmp_path / "ckpt")
    assert loaded.config == model.config and int(loaded.trained_steps) == 2
    a, b = model.decode(model.encode(ps), ps.coords), loaded.decode(loaded.encode(ps), ps.coords)
    for name in ("mean", "variance", "mode", "components", "weights"):
        torch.testing.assert_close(getattr(a, name), getattr(b, name), rtol=0, atol=0)
    s1 = model.sample(2, ps.coords[0], generator=torch.Generator().manual_seed(0)).mean
    s2 = loaded.sample(2, ps.coords[0], generator=torch.Generator().manual_seed(0)).mean
    torch.testing.assert_close(s1, s2, rtol=0, atol=0)


def test_pinned_regression_values():
    """Tiny seeded model, fixed input and latent: pins the whole forward computation (STYLE.md 11)."""
    model = tiny_model(seed=0)
    xs = torch.linspace(0, 1, 16, dtype=torch.float64).reshape(1, 1, 4, 4)
    ps = PointSet.from_image(torch.cat([xs, xs.flip(-1)]))
    zs = torch.linspace(-1, 1, 6, dtype=torch.float64).reshape(1, 2, 3)
    with torch.no_grad():
        t = model.elbo(ps, zs=zs)
        pred = model.decode(zs[0], ps.coords)
        got = [*t["elbo"].tolist(), float(pred.mean.sum()), float(model.encode(ps).mean.sum())]
    assert got == pytest.approx(PINNED, rel=1e-9)


PINNED = [-116.76648697119018, -97.06229510531554, 17.596508576985524, 0.06405204105475233]


# -------------------------------------------------------------------------------------- bad inputs


def test_bad_inputs_raise_clear_errors():
    model = tiny_model()
    ps = _image(b=2)
    with pytest.raises(ValueError, match="1-channel"):
        model.encode(_image(c=3))
    with pytest.raises(ValueError, match="2-D coordinates"):
        model.encode(PointSet(torch.rand(2, 16, 3).double(), torch.rand(2, 16, 1).double()))
    mask = torch.ones(2, 16, dtype=torch.bool)
    mask[1] = False
    with pytest.raises(ValueError, match=r"item\(s\) \[1\] have no observed point"):
        model.encode(ps.with_mask(mask))
    bad = ps.values.clone()
    bad[0, 3] = float("nan")
    with pytest.raises(ValueError, match="NaN or inf"):
        model.loss(ps.with_values(bad))
    with pytest.raises(TypeError, match="PointSet batches"):
        model.loss(PointSetPair(ps, ps))
    with pytest.raises(ValueError, match=r"z must have shape \(B, 3\)"):
        model.decode(torch.zeros(2, 4, dtype=torch.float64), ps.coords)
    with pytest.raises(ValueError, match="values must have shape"):
        model.decode(torch.zeros(2, 3, dtype=torch.float64), ps.coords, values=torch.zeros(2, 16, 2))
    with pytest.raises(ValueError, match="batch size 3"):
        model.decode(torch.zeros(2, 3, dtype=torch.float64), ps.coords[:1].expand(3, -1, -1))
    with pytest.raises(ValueError, match="n must be >= 1"):
        model.sample_latent(0)
    with pytest.raises(ValueError, match="cat_logits='softplus'"):
        VaMoH(VaMoHConfig(cat_logits="softplus"))
    with pytest.raises(ValueError, match="point_dropout"):
        VaMoH(VaMoHConfig(point_dropout=1.0))
    with pytest.raises(ValueError, match="unknown likelihood"):
        VaMoH(VaMoHConfig(likelihood="poisson"))


def test_region_dropout_hides_contiguous_regions_shared_by_the_batch():
    model = tiny_model(point_dropout=0.5, dropout_regions=1.0).train()
    seen: list[PointSet] = []
    model.encoder.register_forward_pre_hook(lambda mod, args: seen.append(args[0]))
    ps = _image(b=3, h=8, w=8)
    torch.manual_seed(1)
    for step in range(12):
        model.loss(ps, step)
        ctx = seen[-1]
        keep = ctx.observed[0].view(8, 8)
        assert ctx.shares_coords() and int(keep.sum()) >= model.dropout_floor
        # a region mask is a box (hidden or kept) or a half: its hidden cells span a full rectangle
        hid = ~keep
        rows, cols = hid.any(1).nonzero().flatten(), hid.any(0).nonzero().flatten()
        kept_rows, kept_cols = keep.any(1).nonzero().flatten(), keep.any(0).nonzero().flatten()
        box_hidden = bool(hid[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1].all())
        r0, r1, c0, c1 = kept_rows.min(), kept_rows.max() + 1, kept_cols.min(), kept_cols.max() + 1
        box_kept = bool(keep[r0:r1, c0:c1].all())
        assert box_hidden or box_kept
        assert 0 < int(hid.sum()) < 64


def test_dropout_floor_option_and_bad_region_rate():
    assert tiny_model(dropout_min_points=5).dropout_floor == 5
    with pytest.raises(ValueError, match="dropout_regions"):
        VaMoH(VaMoHConfig(dropout_regions=1.5))
    with pytest.raises(ValueError, match="dropout_min_points"):
        VaMoH(VaMoHConfig(dropout_min_points=0))
