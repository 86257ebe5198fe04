"""Pieces of key renaming that several converters share (not a converter: no ``is_*``).

* :func:`rename_prefix`: the first ``(old, new)`` pair whose ``old`` begins a key part;
* :func:`join_q_kv` / :func:`split_in_proj`: PVT-style attention, a query projection and a
  key-value projection (``attn.q`` + ``attn.kv``) <-> ``nn.MultiheadAttention``'s joined
  ``in_proj_weight|bias`` (rows: query, then key and value);
* :func:`linear_as_conv1x1`: a ``Linear`` weight ``(out, in)`` -> a 1x1 conv ``(out, in, 1, 1)``.
"""
from typing import Dict, Iterable, Mapping, Optional, Tuple

import torch


def rename_prefix(name: str, pairs: Iterable[Tuple[str, str]],
                  default: Optional[str] = None) -> Optional[str]:
    """``new + name[len(old):]`` for the first ``(old, new)`` with ``name.startswith(old)``;
    ``default`` when no pair matches (``None``: the caller says what that means)."""
    return next((new + name[len(old):] for old, new in pairs if name.startswith(old)), default)


def join_q_kv(pending: Mapping[Tuple[str, str], Dict[str, torch.Tensor]], source: str
              ) -> Dict[str, torch.Tensor]:
    """``{(prefix, 'weight'|'bias'): {'q': t, 'kv': t}}`` -> ``{prefix + 'attn.attn.in_proj_*':
    cat(q, kv)}``; ``KeyError`` naming the block when one half is missing (never half a
    projection)."""
    out = {}
    for (prefix, kind), parts in pending.items():
        if set(parts) != {'q', 'kv'}:
            raise KeyError(f'{source} state dict: {prefix} has only some of the query/key-value '
                           f'{kind}s')
        out[f'{prefix}attn.attn.in_proj_{kind}'] = torch.cat([parts['q'], parts['kv']])
    return out


def split_in_proj(head: str, kind: str, value: torch.Tensor) -> Dict[str, torch.Tensor]:
    """The way back: ``in_proj_{kind}`` rows -> ``{head}attn.q.{kind}`` (the first third) and
    ``{head}attn.kv.{kind}`` (the rest)."""
    c = value.shape[0] // 3
    q, kv = value.split([c, 2 * c])
    return {f'{head}attn.q.{kind}': q, f'{head}attn.kv.{kind}': kv}


def linear_as_conv1x1(value: torch.Tensor) -> torch.Tensor:
    """A ``Linear`` weight ``(out, in)`` as a 1x1 conv weight; anything else unchanged."""
    return value.reshape(*value.shape, 1, 1) if value.dim() == 2 else value
