"""A short training run under mmengine's Runner, as mmdet/mmseg users train."""
import torch
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch.utils.data import DataLoader, Dataset

from mmbackbones import build_backbone


class TinyClassifier(BaseModel):
    def __init__(self, backbone):
        super().__init__()
        self.backbone = build_backbone(backbone)
        self.head = torch.nn.Linear(self.backbone.out_channels[-1], 3)

    def forward(self, inputs, labels=None, mode='tensor'):
        feats = self.backbone(inputs)[-1].mean((2, 3))
        logits = self.head(feats)
        if mode == 'loss':
            return dict(loss=torch.nn.functional.cross_entropy(logits, labels))
        return logits


class RandomImages(Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, index):
        g = torch.Generator().manual_seed(index)
        return dict(inputs=torch.randn(3, 32, 32, generator=g), labels=index % 3)


def test_runner_trains_and_checkpoints(tmp_path):
    model = TinyClassifier(dict(type='ResNet', depth=18, out_indices=(1,), frozen_stages=0))
    model.init_weights()  # the Runner's own call is then a no-op, so the snapshot stays valid
    before = model.backbone.layer1[0].conv1.weight.detach().clone()
    stem_before = model.backbone.conv1.weight.detach().clone()
    runner = Runner(
        model=model, work_dir=str(tmp_path),
        train_dataloader=DataLoader(RandomImages(), batch_size=2, shuffle=False),
        train_cfg=dict(by_epoch=False, max_iters=2, val_interval=100),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=2, by_epoch=False),
                           logger=dict(type='LoggerHook', interval=1)),
        env_cfg=dict(dist_cfg=dict(backend='gloo')))
    runner.train()
    assert not torch.equal(before, model.backbone.layer1[0].conv1.weight)
    assert torch.equal(stem_before, model.backbone.conv1.weight)  # frozen stem untouched
    assert all(p.grad is None for p in model.backbone.conv1.parameters())
    assert (tmp_path / 'iter_2.pth').exists()
    # The runner's checkpoint (meta, message_hub, optimizer state) loads through our safe loader.
    reloaded = TinyClassifier(dict(
        type='ResNet', depth=18, out_indices=(1,),
        init_cfg=dict(type='Pretrained', checkpoint=str(tmp_path / 'iter_2.pth'),
                      prefix='backbone')))
    reloaded.backbone.init_weights()
    for a, b in zip(model.backbone.state_dict().values(), reloaded.backbone.state_dict().values()):
        assert torch.equal(a, b)
