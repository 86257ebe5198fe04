_base_ = ['../_base_/models/vit-deit-tiny-p16.py']
