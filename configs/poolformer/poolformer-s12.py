_base_ = ['../_base_/models/poolformer-s12.py']
