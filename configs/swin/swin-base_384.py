# Swin-B fine-tuned at 384 px (mmpretrain's swin-base_16xb64_in1k-384px): window 12. A window-7
# checkpoint still loads: its relative position bias tables are resized on load.
_base_ = ['../_base_/models/swin-base.py']
model = dict(backbone=dict(img_size=384, window_size=12))
