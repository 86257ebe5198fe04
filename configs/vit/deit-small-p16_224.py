_base_ = ['../_base_/models/vit-deit-small-p16.py']
