# The same network written the detectron2/detrex way (Detectron2ResNet returns a dict).
# stem/stages dicts are the keyword arguments of BasicStem and make_resnet_stages
# (mmbackbones.integrations.detectron2; parameter names are detectron2's).
# Equivalent OpenMMLab spelling: resnet50-caffe-frozenbn_frozen1.py.
_base_ = ['../_base_/models/resnet50.py']
model = dict(
    backbone=dict(
        _delete_=True,
        type='Detectron2ResNet',
        stem=dict(in_channels=3, out_channels=64, norm='FrozenBN'),
        stages=dict(depth=50, stride_in_1x1=True, norm='FrozenBN', res5_dilation=1),
        out_features=['res2', 'res3', 'res4', 'res5'],
        freeze_at=2))
