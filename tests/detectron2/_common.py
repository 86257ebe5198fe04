"""Helpers of the detectron2 tier: tiny detection batches and a randomised ResNet."""
import torch
from torch.nn.modules.batchnorm import _BatchNorm


def randomize_norms_(model, seed=0):
    """Non-trivial norm statistics (a fresh model's would hide norms that failed to load)."""
    from detectron2.layers import FrozenBatchNorm2d as D2Frozen

    from mmbackbones.models.layers import FrozenBatchNorm2d
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (_BatchNorm, FrozenBatchNorm2d, D2Frozen)):
                m.weight.copy_(torch.rand(m.weight.shape, generator=gen) + 0.5)
                m.bias.copy_(torch.rand(m.bias.shape, generator=gen) - 0.5)
                m.running_mean.copy_(torch.rand(m.running_mean.shape, generator=gen) - 0.5)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)
    return model


def detection_batch(size=96, num_images=2, with_masks=False, seed=0):
    """detectron2's model input: a list of ``{'image', 'height', 'width', 'instances'}``."""
    from detectron2.structures import BitMasks, Boxes, Instances
    gen = torch.Generator().manual_seed(seed)
    batch = []
    for i in range(num_images):
        image = torch.rand(3, size, size, generator=gen) * 255
        boxes = torch.tensor([[8.0, 10.0, 60.0, 70.0], [30.0, 20.0, 90.0, 80.0]])
        inst = Instances((size, size))
        inst.gt_boxes = Boxes(boxes)
        inst.gt_classes = torch.tensor([1, 3 + i])
        if with_masks:
            masks = torch.zeros(2, size, size, dtype=torch.bool)
            for j, (x0, y0, x1, y1) in enumerate(boxes.long().tolist()):
                masks[j, y0:y1, x0:x1] = True
            inst.gt_masks = BitMasks(masks)
        batch.append(dict(image=image, height=size, width=size, instances=inst))
    return batch
