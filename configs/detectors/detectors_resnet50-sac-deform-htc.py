# The first backbone of mmdet's DetectoRS HTC (detectors_htc-r50_1x_coco, box AP 49.1): deformable
# SAC in stages 2-4, ConvAWS convs, output_img=True (the image goes first among the outputs, the
# RFP neck reads it), frozen stem and stage 1 and eval-mode BN as the detector trained it. The
# RFP neck's second backbone (rfp_inplanes=256) is another part of that file (neck.rfp_modules.0.).
# Needs the full mmcv (compiled deformable conv).
_base_ = ['./detectors_resnet50-sac-deform.py']
model = dict(backbone=dict(output_img=True, frozen_stages=1, norm_eval=True))
