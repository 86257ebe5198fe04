# The runtime part of an mmdet 3.x config: mmdet's registries are the default scope, so
# unscoped types (RetinaNet, FPN, RetinaHead, ...) are mmdet's.
default_scope = 'mmdet'
env_cfg = dict(cudnn_benchmark=False, mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
               dist_cfg=dict(backend='nccl'))
log_level = 'INFO'
load_from = None
resume = False
