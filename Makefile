# Three commands on a fresh machine: `make demo`, `make test` and `make docs`. Each creates .venv
# when missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
ARCH := $(shell uname -m)
# 64-bit ARM is `aarch64` on Linux and `arm64` on macOS.
ifneq ($(filter aarch64 arm64,$(ARCH)),)
TORCH_PINS := torch==2.9.1 torchvision==0.24.1
else
TORCH_PINS := torch==2.14.1 torchvision==0.29.1
endif
STAMP := $(VENV)/.installed
DEMO_OUT ?= work_dirs/demo

.PHONY: demo test docs test-downstream test-detectron2 bench venv clean-venv

venv: $(STAMP)

$(STAMP): requirements/pinned.txt requirements/runtime.txt setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q $(TORCH_PINS) -r requirements/pinned.txt
	# mmpretrain (parity tests) pins the full mmcv in its metadata; it runs on mmcv-lite.
	$(PY) -m pip install -q --no-deps mmpretrain==1.2.0
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/mmbackbones info configs/resnet/resnet50.py --input-size 224 224 --neck mmdet
	$(VENV)/bin/mmbackbones info configs/vit/vit-base-p16_224.py --input-size 224 224
	@mkdir -p $(DEMO_OUT)
	$(VENV)/bin/mmbackbones show configs/resnet/resnet50.py demo/demo.png -o $(DEMO_OUT)/resnet50.png
	$(VENV)/bin/mmbackbones show configs/vit/vit-base-p16_224.py demo/demo.png -o $(DEMO_OUT)/vit-base-p16_224.png --cfg-options model.backbone.out_type=featmap 'model.backbone.out_indices=(2,5,8,11)'
	@echo "feature-map pictures: $(abspath $(DEMO_OUT))/resnet50.png $(abspath $(DEMO_OUT))/vit-base-p16_224.png"

test: $(STAMP)
	$(PY) -m pytest -q -n 2 tests

# The documentation site (Sphinx + MyST, docs/conf.py) into docs/_build/html: the pinned toolchain
# of requirements/docs.txt goes into .venv (the build runs the models it documents, with the
# tests' torch/timm); offline, warnings are errors. The reference pages are generated at build
# time by docs/_ext/mmbdocs.py.
DOCS_STAMP := $(VENV)/.docs-installed

$(DOCS_STAMP): $(STAMP) requirements/docs.txt
	$(PY) -m pip install -q -r requirements/docs.txt
	touch $(DOCS_STAMP)

docs: $(DOCS_STAMP)
	MPLBACKEND=Agg $(PY) -m sphinx -b html -W --keep-going -q docs docs/_build/html
	@echo "documentation: $(abspath docs/_build/html/index.html)"

# Every benchmark script, then one table of each backbone against its anchor (JSON in
# benchmarks/results/). BENCH_ARGS=--full for the long runs.
bench: $(STAMP)
	$(PY) benchmarks/run_all.py $(BENCH_ARGS)

# Optional downstream tier: real mmdet/mmseg models on our backbones, in its own venv with the
# full mmcv (compiled ops) from ../shared/wheels. Skips with a reason when that wheel is absent.
DS_VENV := .venv-downstream
DS_PY := $(DS_VENV)/bin/python
DS_STAMP := $(DS_VENV)/.installed
MMCV_WHEEL := $(firstword $(wildcard ../shared/wheels/mmcv-2.1.0-cp311-cp311-linux_$(ARCH).whl))

$(DS_STAMP): requirements/downstream.txt setup.py
	test -x $(DS_PY) || $(PYTHON) -m venv $(DS_VENV)
	$(DS_PY) -m pip install -q $(TORCH_PINS)
	# The full mmcv replaces mmcv-lite here; --no-deps keeps pip from rebuilding it from source.
	$(DS_PY) -m pip uninstall -q -y mmcv-lite || true
	$(DS_PY) -m pip install -q --no-deps $(MMCV_WHEEL)
	$(DS_PY) -m pip install -q $(TORCH_PINS) -r requirements/downstream.txt
	# mmdet's ReID models subclass mmpretrain's ImageClassifier (the shipped ReID/tracking configs)
	$(DS_PY) -m pip install -q --no-deps mmpretrain==1.2.0
	$(DS_PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $(DS_STAMP)

test-downstream:
ifeq ($(MMCV_WHEEL),)
	@echo "SKIP test-downstream: no ../shared/wheels/mmcv-2.1.0-cp311-cp311-linux_$(ARCH).whl (mmdet/mmseg need the full mmcv with compiled ops; see ../shared/wheels/README.md)"
else
	$(MAKE) $(DS_STAMP)
	$(DS_PY) -m pytest -q -rs tests/downstream
endif

# Optional detectron2/detrex tier: real detectron2 and detrex (not on PyPI; built wheels and the
# detrex source archive for projects/ in ../shared/wheels) in .venv-detectron2. Skips with a reason
# when those files are absent.
D2_VENV := .venv-detectron2
D2_PY := $(D2_VENV)/bin/python
D2_STAMP := $(D2_VENV)/.installed
D2_WHEEL := $(firstword $(wildcard ../shared/wheels/detectron2-0.6-cp311-cp311-linux_$(ARCH).whl))
DETREX_WHEEL := $(firstword $(wildcard ../shared/wheels/detrex-0.3.0-cp311-cp311-linux_$(ARCH).whl))
DETREX_SRC := $(firstword $(wildcard ../shared/wheels/detrex-*.tar.gz))

$(D2_STAMP): requirements/detectron2.txt requirements/pinned.txt setup.py
	test -x $(D2_PY) || $(PYTHON) -m venv $(D2_VENV)
	$(D2_PY) -m pip install -q $(TORCH_PINS) -r requirements/pinned.txt
	$(D2_PY) -m pip install -q --no-deps $(D2_WHEEL) $(DETREX_WHEEL)
	$(D2_PY) -m pip install -q $(TORCH_PINS) -r requirements/detectron2.txt
	$(D2_PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $(D2_STAMP)

test-detectron2:
ifeq ($(and $(D2_WHEEL),$(DETREX_WHEEL)),)
	@echo "SKIP test-detectron2: no detectron2/detrex wheels in ../shared/wheels (neither is on PyPI; see ../shared/wheels/README.md)"
else
	$(MAKE) $(D2_STAMP)
	DETREX_SRC_TAR=$(abspath $(DETREX_SRC)) $(D2_PY) -m pytest -q -rs tests/detectron2
endif

clean-venv:
	rm -rf $(VENV)
