_base_ = ['../_base_/models/cspresnext50.py']
