# No neck.in_channels to edit: the backbone is mmbackbones' BackboneWithNeck, whose FPN takes
# in_channels='auto' from the timm model, and the detector's own neck is dropped. Swap model_name
# for any timm model and nothing else changes. Our FPN has mmdet's parameter names, so the
# checkpoint keys are backbone.backbone.* and backbone.neck.*.
_base_ = ['../_base_/models/retinanet_r50_fpn.py']

model = dict(
    backbone=dict(
        _delete_=True,
        type='mmbackbones.BackboneWithNeck',
        backbone=dict(type='TIMMBackbone', model_name='resnet50d', pretrained=False,
                      out_indices=(2, 3, 4)),
        neck=dict(type='FPN', in_channels='auto', out_channels=256,
                  add_extra_convs='on_input', num_outs=5)),
    neck=None)
