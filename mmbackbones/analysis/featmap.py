"""``mmbackbones show``: every output stage, side by side with the input.

Each ``(C, H, W)`` map is reduced over its channels (``REDUCTIONS``): by default its first three
principal components drawn as RGB (regions the network represents alike share a colour), or the
L2 norm over channels (how strongly each position responds), or the mean. The mean alone can
show nothing: after a LayerNorm (ViT, ConvNeXt, Swin) the channel mean of every position is zero
by design, so that panel would be rounding noise.

The picture has a fixed size so scripts (and tests) can rely on it: ``n = 1 + number of outputs``
panels of ``panel x panel`` pixels with ``MARGIN`` pixels around each, a title band above and a
caption band below::

    width  = n * panel + (n + 1) * MARGIN
    height = TITLE + panel + CAPTION + 2 * MARGIN
"""
import os
from typing import Optional, Sequence, Tuple

from ..utils.optional import require
from .common import (IMAGENET_MEAN, IMAGENET_STD, CLIError, as_tuple, build_from_config,
                     default_input_size, load_backbone_config, output_names,
                     weights_label)

MARGIN = 8
TITLE = 40
CAPTION = 24
DPI = 100
REDUCTIONS = {
    'pca': 'RGB: top 3 principal components of channels',
    'norm': 'L2 norm over channels (bright: high)',
    'mean': 'mean over channels (bright: high)',
}


def figure_size(num_outputs: int, panel: int) -> Tuple[int, int]:
    """``(width, height)`` in pixels of the picture for ``num_outputs`` stages."""
    n = num_outputs + 1
    return n * panel + (n + 1) * MARGIN, TITLE + panel + CAPTION + 2 * MARGIN


def _normalization(cfg):
    """mean/std (0..255 scale) and RGB order from ``model.data_preprocessor`` when present."""
    pre = None
    model = cfg.get('model')
    if isinstance(model, dict):
        pre = model.get('data_preprocessor')
    pre = pre or cfg.get('data_preprocessor') or {}
    mean = tuple(pre.get('mean', IMAGENET_MEAN))
    std = tuple(pre.get('std', IMAGENET_STD))
    return mean, std


def load_image(path: str, size: Sequence[int], channels: int = 3):
    """``(pil_image_resized, tensor_0_255)``: the image resized to ``size`` (H, W)."""
    import numpy as np
    import torch
    require('PIL', 'reading the image')
    from PIL import Image, UnidentifiedImageError

    if not os.path.isfile(path):
        raise FileNotFoundError(f'image not found: {path}')
    try:
        image = Image.open(path)
        image.load()
    except (UnidentifiedImageError, OSError) as e:
        raise CLIError(f'cannot read image {path}: {e}') from None
    if channels not in (1, 3):
        raise CLIError(f'show needs a backbone with 1 or 3 input channels; got {channels}')
    image = image.convert('L' if channels == 1 else 'RGB')
    height, width = int(size[0]), int(size[1])
    image = image.resize((width, height), Image.BILINEAR)
    array = np.asarray(image, dtype=np.float32)
    if array.ndim == 2:
        array = array[..., None]
    tensor = torch.from_numpy(array.copy()).permute(2, 0, 1)[None]
    return image, tensor


def reduce_channels(fmap, reduce: str = 'pca'):
    """A ``(C, H, W)`` tensor -> an ``(H, W)`` array (``norm``, ``mean``) or ``(H, W, 3)`` array
    (``pca``: the projections on the first three principal components of the C-dim vectors,
    each scaled to 0..1; fewer than 3 components are padded with zeros)."""
    import torch

    fmap = fmap.detach().float().cpu()
    if reduce == 'mean':
        return fmap.mean(dim=0).numpy()
    if reduce == 'norm':
        return fmap.norm(dim=0).numpy()
    if reduce != 'pca':
        raise ValueError(f'reduce must be one of {", ".join(REDUCTIONS)}; got {reduce!r}')
    c, h, w = fmap.shape
    vectors = fmap.reshape(c, h * w).T
    vectors = vectors - vectors.mean(dim=0, keepdim=True)
    rgb = torch.zeros(h * w, 3)
    if h * w > 1 and c > 0:
        _, _, v = torch.linalg.svd(vectors, full_matrices=False)
        k = min(3, v.shape[0])
        rgb[:, :k] = vectors @ v[:k].T
    low, high = rgb.min(dim=0).values, rgb.max(dim=0).values
    rgb = (rgb - low) / torch.where(high > low, high - low, torch.ones_like(high))
    return rgb.reshape(h, w, 3).numpy()


def stage_maps(model, x, reduce: str = 'pca'):
    """Per output: ``(name, channels, map_or_None, shape)``; the map is
    :func:`reduce_channels` of the first image's output."""
    import torch

    with torch.no_grad():
        outputs = as_tuple(model(x))
    names = output_names(model, outputs)
    maps = []
    for name, out in zip(names, outputs):
        shape = tuple(out.shape)
        if out.dim() == 4:
            maps.append((name, shape[1], reduce_channels(out[0], reduce), shape))
        else:  # e.g. a class token (N, C): nothing spatial to draw
            maps.append((name, shape[1] if out.dim() > 1 else None, None, shape))
    return maps


def _fit(parts, width: int) -> str:
    """Join caption parts while they fit the picture width (about 7 px per character)."""
    limit = max(10, width // 7)
    text = ''
    for part in filter(None, parts):
        candidate = f'{text} | {part}' if text else part
        if len(candidate) > limit:
            break
        text = candidate
    if not text and parts and parts[0]:
        text = parts[0][:limit - 1] + '\u2026'
    return text


def render(image, maps, strides: Sequence[int], out_path: str, panel: int = 256,
           cmap: str = 'viridis', title: Optional[str] = None,
           reduce: str = 'pca') -> Tuple[int, int]:
    """Draw the input and each stage map into ``out_path`` (PNG); returns its pixel size."""
    matplotlib = require('matplotlib', 'drawing feature maps')
    matplotlib.use('Agg', force=True)
    import matplotlib.pyplot as plt
    import numpy as np

    width, height = figure_size(len(maps), panel)
    fig = plt.figure(figsize=(width / DPI, height / DPI), dpi=DPI)
    fig.patch.set_facecolor('white')
    bottom = (CAPTION + MARGIN) / height
    panel_w, panel_h = panel / width, panel / height
    panels = [('input', f'{image.size[1]}x{image.size[0]}', np.asarray(image), None)]
    for i, (name, channels, fmap, shape) in enumerate(maps):
        stride = strides[i] if i < len(strides) else None
        if fmap is not None:
            detail = f'{channels} ch' + (f', /{stride}' if stride else '') + \
                f', {shape[2]}x{shape[3]}'
        else:
            detail = 'output ' + 'x'.join(map(str, shape))
        panels.append((name, detail, fmap, True))
    for i, (name, detail, data, is_map) in enumerate(panels):
        left = (MARGIN + i * (panel + MARGIN)) / width
        ax = fig.add_axes([left, bottom, panel_w, panel_h])
        ax.set_xticks([])
        ax.set_yticks([])
        if data is None:
            ax.text(0.5, 0.5, 'no spatial map\n(a vector per image,\ne.g. a class token)',
                    ha='center', va='center', fontsize=max(5, min(9, panel // 24)))
        elif is_map and data.ndim == 3:  # already RGB in 0..1
            ax.imshow(data, interpolation='nearest', aspect='auto')
        elif is_map:
            low, high = float(data.min()), float(data.max())
            scaled = (data - low) / (high - low) if high > low else np.zeros_like(data)
            ax.imshow(scaled, cmap=cmap, vmin=0, vmax=1, interpolation='nearest', aspect='auto')
        else:
            ax.imshow(data, cmap='gray' if data.ndim == 2 else None, interpolation='bilinear',
                      aspect='auto')
        ax.set_title(f'{name}\n{detail}', fontsize=9, pad=4)
    caption = _fit([title or '', REDUCTIONS[reduce]], width)
    fig.text(0.5, (MARGIN / 2) / height, caption, ha='center', va='bottom', fontsize=8)
    fig.savefig(out_path, dpi=DPI, format='png', facecolor='white')
    plt.close(fig)
    return width, height


def show(config: str, image_path: str, out_path: str, input_size: Optional[Sequence[int]] = None,
         cfg_options: Optional[dict] = None, panel: int = 256, device: str = 'cpu',
         seed: int = 0, checkpoint: Optional[str] = None, checkpoint_strict: bool = True,
         reduce: str = 'pca') -> dict:
    """Build the backbone, run it on the image and write the picture; returns what was drawn."""
    import torch

    if reduce not in REDUCTIONS:
        raise CLIError(f'--reduce must be one of {", ".join(REDUCTIONS)}; got {reduce!r}')
    if panel < 32 or panel > 2048:
        raise CLIError(f'--panel-size must be between 32 and 2048 pixels; got {panel}')
    _, backbone_cfg = load_backbone_config(config, cfg_options)
    size = tuple(input_size) if input_size else default_input_size(backbone_cfg)
    channels = backbone_cfg.get('in_channels', 3)
    image, pixels = load_image(image_path, size, channels if channels in (1, 3) else 3)
    cfg, backbone_cfg, model = build_from_config(config, cfg_options, seed, checkpoint,
                                                 checkpoint_strict)
    if pixels.shape[1] != (getattr(model, 'in_channels', None) or 3):
        raise CLIError(f'show needs a backbone with 1 or 3 input channels; this one has '
                       f'in_channels={model.in_channels}')
    mean, std = _normalization(cfg)
    if len(mean) != pixels.shape[1]:
        mean, std = mean[:1] * pixels.shape[1], std[:1] * pixels.shape[1]
    x = (pixels - torch.tensor(mean).view(1, -1, 1, 1)) / torch.tensor(std).view(1, -1, 1, 1)
    model.to(device)
    maps = stage_maps(model, x.to(device), reduce)
    strides = tuple(getattr(model, 'out_strides', ()) or ())
    weights = weights_label(backbone_cfg, checkpoint and os.path.basename(checkpoint), seed)
    title = f'{type(model).__name__} ({os.path.basename(config)}, {weights})'
    from ..utils.fileio import atomic_output

    with atomic_output(out_path) as tmp:  # never a half-written picture
        width, height = render(image, maps, strides, tmp, panel=panel, title=title,
                               reduce=reduce)
    return dict(output=out_path, width=width, height=height,
                stages=[dict(name=n, channels=c, shape=list(s)) for n, c, _, s in maps])
