# Res2Net-50 26w x 4s (timm's res2net50_26w_4s): the base as is.
_base_ = ['../_base_/models/res2net50-w26-s4.py']
