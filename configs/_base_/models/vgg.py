# VGG-16 as a backbone (mmpretrain's VGG and ImageNet weights): the last stage, 512 channels at
# stride 32; num_classes=-1 leaves mmpretrain's classifier out (its checkpoint's classifier.* is
# ignored on load). Derived configs set `depth` and, for the BN models, `norm_cfg` (default None).
model = dict(
    backbone=dict(
        type='VGG',
        depth=16,
        num_classes=-1,
        out_indices=(4, ),
        frozen_stages=-1,
        norm_eval=False))
