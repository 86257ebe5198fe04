"""What the ``mmbackbones`` command-line tools compute: inspection, FLOPs, memory, benchmarks,
feature-map pictures, ONNX export.

Each module returns plain data (dicts, lists, numbers) and leaves printing to ``mmbackbones.cli``.
Heavy libraries (torch, matplotlib, onnx, timm) are imported inside the functions that need them,
so importing this package stays cheap.
"""
