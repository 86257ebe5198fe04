_base_ = ['../_base_/models/cspdarknet53.py']
