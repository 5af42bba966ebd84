"""The shared patch tokenizer and pre-LN Transformer encoder (TransINR / IPC / locality-aware INR)."""

import pytest
import torch
import torch.nn.functional as F
from ginr_helpers import sphere_views, tiny_encoder
from torch import nn

from inrgen.data.points import PointSet
from inrgen.nn.transformer import EncoderConfig, TransformerBlock, TransformerEncoder


@pytest.mark.parametrize(
    "size, patch, pad, per_axis",
    [
        ((178, 178), 9, 1, 20),  # CelebA / FFHQ / ImageNette 178: 400 tokens
        ((256, 256), 16, 0, 16),  # FFHQ 256: 256 tokens
        ((512, 512), 32, 0, 16),  # FFHQ 512: 256 tokens
        ((1024, 1024), 48, 16, 22),  # FFHQ 1024: 484 tokens (1056 = 22 * 48)
        ((128, 128), 8, 0, 16),  # one ShapeNet view: 256 tokens
    ],
)
def test_token_counts_of_the_paper_sizes(size, patch, pad, per_axis):
    cfg = EncoderConfig(
        image_size=size, patch_size=patch, padding=pad, width=4, depth=1, heads=1, mlp_dim=4, num_latents=2
    )
    assert cfg.num_tokens == per_axis**2
    tok = TransformerEncoder(cfg).tokenizer
    with torch.no_grad():
        out = tok(torch.rand(1, 1, 3, *size))
    assert out.shape == (1, per_axis**2, 4)


def test_multiview_token_count_is_256_per_view():
    cfg = EncoderConfig(
        in_channels=9, image_size=(128, 128), patch_size=8, padding=0, num_views=3, input_kind="rays",
        width=4, depth=1, heads=1, mlp_dim=4, num_latents=2,
    )  # fmt: skip
    assert cfg.num_tokens == 3 * 256


def test_patch_tokens_equal_an_independent_unfold():
    """Token (r, c) = W_tok (zero-padded patch at rows 9r.., cols 9c.., channel-major) + b + pos[20 r + c]."""
    torch.manual_seed(0)
    cfg = EncoderConfig(
        in_channels=3, image_size=(178, 178), patch_size=9, padding=1, width=5, depth=1, heads=1, mlp_dim=4,
        num_latents=1,
    )  # fmt: skip
    tok = TransformerEncoder(cfg).tokenizer.double()
    img = torch.rand(2, 3, 178, 178, dtype=torch.float64)
    out = tok(img.unsqueeze(1))
    padded = F.pad(img, (1, 1, 1, 1))
    for r, c in [(0, 0), (0, 19), (7, 3), (19, 19)]:
        patch = padded[:, :, 9 * r : 9 * r + 9, 9 * c : 9 * c + 9].reshape(2, -1)
        expect = patch @ tok.proj.weight.t() + tok.proj.bias + tok.pos[0, r * 20 + c]
        torch.testing.assert_close(out[:, r * 20 + c], expect)
    # the border patch sees the zero padding: its first row/column contributes nothing
    assert padded[:, :, 0].abs().sum() == 0


def test_block_equals_reference_prenorm_block():
    """x + MHA(LN1 x) then + MLP(LN2 x), checked against torch.nn.MultiheadAttention with copied weights."""
    torch.manual_seed(0)
    d, h = 12, 3
    blk = TransformerBlock(d, h, 20, dropout=0.0).double().eval()
    ref = nn.MultiheadAttention(d, h, batch_first=True, dtype=torch.float64)
    with torch.no_grad():
        ref.in_proj_weight.copy_(torch.cat([blk.attn.q.weight, blk.attn.k.weight, blk.attn.v.weight]))
        ref.in_proj_bias.copy_(torch.cat([blk.attn.q.bias, blk.attn.k.bias, blk.attn.v.bias]))
        ref.out_proj.weight.copy_(blk.attn.out.weight)
        ref.out_proj.bias.copy_(blk.attn.out.bias)
    x = torch.randn(2, 7, d, dtype=torch.float64)
    y = blk.norm1(x)
    x1 = x + ref(y, y, y, need_weights=False)[0]
    w1, w2 = blk.mlp[0], blk.mlp[2]
    expect = x1 + w2(F.gelu(w1(blk.norm2(x1))))
    torch.testing.assert_close(blk(x), expect)


def test_outputs_are_the_learnable_positions_and_data_order_free():
    """The R outputs are read at the learnable positions: permuting the data tokens (patches together with
    their positional embeddings) leaves them unchanged (attention is permutation equivariant)."""
    torch.manual_seed(0)
    enc = TransformerEncoder(tiny_encoder(num_latents=5)).double().eval()
    img = torch.rand(3, 1, 1, 12, 12, dtype=torch.float64)
    z = enc.forward_pixels(img)
    assert z.shape == (3, 5, 16)
    tokens = enc.tokenizer(img)
    perm = torch.randperm(tokens.shape[1])
    x = torch.cat([tokens[:, perm], enc.latents.expand(3, -1, -1)], 1)
    for blk in enc.blocks:
        x = blk(x)
    torch.testing.assert_close(x[:, -5:], z)
    # and they do depend on the data
    assert (enc.forward_pixels(img.flip(-1)) - z).abs().max() > 1e-3


def test_residual_dropout_only_in_training():
    torch.manual_seed(0)
    enc = TransformerEncoder(tiny_encoder(dropout=0.5))
    ps = PointSet.from_image(torch.rand(2, 1, 12, 12))
    enc.train()
    assert (enc(ps) - enc(ps)).abs().max() > 1e-4
    enc.eval()
    torch.testing.assert_close(enc(ps), enc(ps))


def test_unobserved_pixels_enter_as_zeros():
    torch.manual_seed(0)
    enc = TransformerEncoder(tiny_encoder()).double().eval()
    img = torch.rand(1, 1, 12, 12, dtype=torch.float64)
    mask = torch.rand(1, 144) > 0.5
    masked = PointSet.from_image(img).with_mask(mask)
    zeroed = PointSet.from_image(img * mask.reshape(1, 1, 12, 12))
    torch.testing.assert_close(enc(masked), enc(zeroed))


def test_views_without_poses_and_wrong_inputs_raise():
    enc = TransformerEncoder(tiny_encoder())
    with pytest.raises(ValueError, match="not divisible into 5-px patches.*padding"):
        tiny_encoder(patch_size=5)
    with pytest.raises(ValueError, match="built for 1-channel"):
        enc(PointSet.from_image(torch.rand(1, 3, 12, 12)))
    with pytest.raises(ValueError, match="built for 12x12"):
        enc(PointSet.from_image(torch.rand(1, 1, 16, 16)))
    with pytest.raises(ValueError, match="regular grid"):
        enc(PointSet(torch.rand(1, 144, 2), torch.rand(1, 144, 1)))
    imgs, poses, K = sphere_views(1, 2, size=12)
    views = PointSet.from_views(imgs, poses, K)
    with pytest.raises(ValueError, match="built for images"):
        TransformerEncoder(tiny_encoder(in_channels=3))(views)
    venc = TransformerEncoder(tiny_encoder(in_channels=9, input_kind="rays", num_views=2))
    assert venc(views).shape == (1, 8, 16)
    # views without camera poses: plain images stacked as a (V, H, W) grid
    flat = PointSet.from_volume(imgs[:, :, :].transpose(1, 2))
    with pytest.raises(ValueError, match="without camera poses"):
        venc(flat)
    # wrong coordinate dimension (e.g. 3-D ray directions only)
    bad = PointSet(views.coords[..., :3], views.values, grid_shape=views.grid_shape, kind="rays")
    with pytest.raises(ValueError, match="6-D Plücker"):
        venc(bad)
    with pytest.raises(ValueError, match="values \\+ 6 Plücker"):
        venc(PointSet.from_views(imgs[:, :, :1], poses, K))
    with pytest.raises(ValueError, match="1 to 2 views"):
        venc(PointSet.from_views(*sphere_views(1, 3, size=12)))
    with pytest.raises(ValueError, match="in_channels must be the value channels \\+ 6"):
        tiny_encoder(in_channels=3, input_kind="rays")
