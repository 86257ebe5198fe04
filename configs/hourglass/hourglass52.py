# one stack (Hourglass-52)
_base_ = ['../_base_/models/hourglass.py']
model = dict(backbone=dict(num_stacks=1, out_indices=(0, )))
