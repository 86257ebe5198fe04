# Two commands on a fresh machine: `make demo` and `make test`. Each creates .venv when missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
ARCH := $(shell uname -m)
ifeq ($(ARCH),aarch64)
TORCH_PINS := torch==2.9.1 torchvision==0.24.1
else
TORCH_PINS := torch==2.14.1 torchvision==0.29.1
endif
STAMP := $(VENV)/.installed
DEMO_OUT ?= work_dirs/demo

.PHONY: demo test test-downstream bench venv clean-venv

venv: $(STAMP)

$(STAMP): requirements/pinned.txt requirements/runtime.txt setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q $(TORCH_PINS) -r requirements/pinned.txt
	# mmpretrain (parity tests) pins the full mmcv in its metadata; it runs on mmcv-lite.
	$(PY) -m pip install -q --no-deps mmpretrain==1.2.0
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/mmbackbones info configs/resnet/resnet50.py --input-size 224 224
	$(VENV)/bin/mmbackbones info configs/vit/vit-base-p16_224.py --input-size 224 224

test: $(STAMP)
	$(PY) -m pytest -q -n 2 tests

clean-venv:
	rm -rf $(VENV)
