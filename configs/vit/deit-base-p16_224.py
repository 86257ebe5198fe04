_base_ = ['../_base_/models/vit-deit-base-p16.py']
