_base_ = ['../_base_/models/hourglass.py']
