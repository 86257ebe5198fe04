"""MAEViT (mmpretrain's MAE pre-training encoder on our ViT): signature, keys, the sine-cosine
init, the plain and the masked forward equal to mmpretrain's on the same weights and noise.

mmseg's MAE (BEiT's network) is tested in test_beit.py and tests/downstream/test_beit_parity.py."""
import inspect

import pytest
import torch

from mmbackbones import build_backbone
from mmbackbones.models.backbones.mae import MAEViT, sincos_pos_embed_2d
from tests.parity import perturb_

ARCH = dict(embed_dims=32, num_layers=2, num_heads=4, feedforward_channels=64)


def _theirs_class():
    pytest.importorskip('mmpretrain', reason='mmpretrain is needed for parity tests')
    from mmpretrain.models.selfsup.mae import MAEViT as Theirs
    return Theirs


def test_signature_is_mmpretrains():
    theirs = inspect.signature(_theirs_class().__init__).parameters
    ours = inspect.signature(MAEViT.__init__).parameters
    assert list(ours) == list(theirs)
    for name, param in theirs.items():
        assert ours[name].default == param.default, name


@pytest.mark.parametrize('img_size', [32, 40])
def test_init_keys_and_outputs_equal_mmpretrains(img_size):
    theirs = _theirs_class()(arch=ARCH, img_size=img_size, patch_size=8)
    theirs.init_weights()
    ours = MAEViT(arch=ARCH, img_size=img_size, patch_size=8)
    ours.init_weights()
    assert torch.equal(ours.pos_embed, theirs.pos_embed)
    assert not ours.pos_embed.requires_grad
    assert list(ours.state_dict()) == list(theirs.state_dict())
    perturb_(theirs)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    theirs.eval()
    ours.eval()
    x = torch.randn(2, 3, img_size, img_size)
    with torch.no_grad():
        torch.testing.assert_close(ours(x, mask=None)[0], theirs(x, mask=None)[0])
        torch.manual_seed(3)
        expected = theirs(x)
        torch.manual_seed(3)
        got = ours(x)
    keep = int((img_size // 8) ** 2 * 0.25)
    assert got[0].shape == (2, 1 + keep, 32) and got[1].shape == (2, (img_size // 8) ** 2)
    for e, g in zip(expected, got):
        torch.testing.assert_close(g, e)


def test_sincos_table_and_arguments():
    table = sincos_pos_embed_2d((2, 3), 8)
    assert table.shape == (1, 7, 8) and torch.equal(table[0, 0], torch.zeros(8))
    with pytest.raises(ValueError, match='divisible by 4'):
        sincos_pos_embed_2d((2, 2), 6)
    with pytest.raises(ValueError, match='mask_ratio'):
        MAEViT(arch=ARCH, img_size=32, patch_size=8, mask_ratio=1.5)
    assert type(build_backbone(dict(type='mmcls.MAEViT', arch=ARCH, img_size=32,
                                    patch_size=8))) is MAEViT


def test_masked_forward_takes_any_input_size():
    """The masked (pre-training) forward resizes the position embedding to the input's grid,
    as the plain forward does; at the built size it is the table itself."""
    import torch

    from mmbackbones import build_backbone
    model = build_backbone(dict(type='MAEViT', arch=dict(embed_dims=32, num_layers=1,
                                                         num_heads=2, feedforward_channels=64),
                                img_size=32, patch_size=8, mask_ratio=0.75)).eval()
    tokens, mask, ids_restore = model(torch.randn(2, 3, 48, 40))
    assert tokens.shape == (2, 1 + (6 * 5) // 4, 32)  # 30 patches, a quarter kept, + class
    assert mask.shape == ids_restore.shape == (2, 30) and int(mask.sum()) == 2 * (30 - 7)
