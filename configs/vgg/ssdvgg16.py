# mmdet's SSD300 backbone: VGG-16 with ceil-mode pools and fc6/fc7 (conv4_3's ReLU at stride 8
# with 512 channels, fc7's at stride 16 with 1024), the weights of open-mmlab://vgg16_caffe
model = dict(
    backbone=dict(
        type='SSDVGG',
        depth=16,
        with_last_pool=False,
        ceil_mode=True,
        out_indices=(3, 4),
        out_feature_indices=(22, 34)))
