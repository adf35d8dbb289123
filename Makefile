# skydeck: `make console` and `make test` set everything up on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# checkov lives in a virtual environment of its own: its pins must not move the project's.
CHECKOV_VENV ?= .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed
# the AWS CLI a rehearsed fleet host uses (the AMI has its own): its botocore pin must not move the project's
AWSCLI_VENV ?= .venv-awscli
AWSCLI_STAMP := $(AWSCLI_VENV)/.installed

.PHONY: setup console test check lint bench bench-hour bench-original original docs clean rehearse-fleet rehearse-gpu-build

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch is pinned: 2.13.0 is the CPU build this machine has on disk (GPU hosts use their AMI's CUDA build).
	$(BIN)/python -m pip install --quiet -e '.[dev,executor]' 'torch==2.13.0'
	touch $(STAMP)

# the project's modules compiled as pip compiles an installed package's (an editable install is not):
# where PYTHONDONTWRITEBYTECODE is set, every command would otherwise compile them again (a third of
# a short command's time); a module edited since is compiled again here
setup: $(STAMP)
	@$(BIN)/python -m compileall -q -j 0 backend cli tui lambda_src gpu_executor > /dev/null

$(CHECKOV_STAMP):
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet 'checkov==3.3.30'
	touch $(CHECKOV_STAMP)

$(AWSCLI_STAMP):
	$(PYTHON) -m venv $(AWSCLI_VENV)
	$(AWSCLI_VENV)/bin/python -m pip install --quiet 'awscli==1.46.3'
	touch $(AWSCLI_STAMP)

console: setup
	$(BIN)/skydeck local up
	$(BIN)/skydeck console

lint: setup $(CHECKOV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/python -m tests.type_check
	$(BIN)/cfn-lint stacks/*.yaml
	# every check passes or is skipped in the template with its reason (Metadata.checkov.skip)
	$(CHECKOV_VENV)/bin/checkov --directory stacks --framework cloudformation --compact --quiet --skip-download

test: lint $(AWSCLI_STAMP)
	$(BIN)/pytest

# the inner loop: ruff, the import contracts, the type check and every test not marked slow
check: setup
	@start=$$(date +%s); \
	$(BIN)/ruff check . && \
	$(BIN)/lint-imports && \
	$(BIN)/python -m tests.type_check && \
	$(BIN)/pytest -q -m "not slow"; \
	status=$$?; echo "make check: $$(( $$(date +%s) - start )) s"; exit $$status

# a fleet host's boot on this machine, against its own local cloud: one that serves a job, one that fails
rehearse-fleet: setup $(AWSCLI_STAMP)
	$(BIN)/python -m tests.fleet_rehearsal

# svox2 built as a fleet host builds it, nvcc only in NVIDIA's wheels, no GPU (about 20 min and 6 GB; not in make test)
rehearse-gpu-build: setup
	$(BIN)/python -m tests.gpu_build_rehearsal

bench: setup
	$(BIN)/python benchmarks/cli_bench.py
	$(BIN)/python benchmarks/console_bench.py
	$(BIN)/python benchmarks/local_cloud_bench.py
	$(BIN)/python benchmarks/durability_bench.py
	$(BIN)/python benchmarks/replay_bench.py
	$(BIN)/python benchmarks/fuzz_bench.py
	$(BIN)/python benchmarks/load_bench.py
	$(BIN)/python benchmarks/sdsinf_bench.py
	$(BIN)/python benchmarks/plenoxels_bench.py

# the first hour's work (stacks, two trainings, seven SDS-Inf runs), then two restarts timed (about 20 min)
bench-hour: setup
	$(BIN)/python benchmarks/hour_bench.py

# SDS-Inf-Code at the commit of its published resources, in a git-ignored folder (never committed)
ORIGINAL ?= third_party/SDS-Inf-Code
ORIGINAL_COMMIT = eee16f97af70d3b78de2773504eb5ff3cb10b05a
original:
	test -d $(ORIGINAL)/.git || git clone https://github.com/SDS-Inf/SDS-Inf-Code $(ORIGINAL)
	git -C $(ORIGINAL) checkout -q $(ORIGINAL_COMMIT)

# the original deployed as Lambda functions on a local cloud beside skydeck's, one payload to each, and
# the files both write compared column by column: Queue, Object and Serial (about 10 min)
bench-original: setup
	$(BIN)/python benchmarks/sdsinf_vs_original.py --original $(ORIGINAL) --variant queue
	$(BIN)/python benchmarks/sdsinf_vs_original.py --original $(ORIGINAL) --variant object
	$(BIN)/python benchmarks/sdsinf_vs_original.py --original $(ORIGINAL) --variant serial

docs: setup
	$(BIN)/python -m cli.reference docs/cli.md

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) $(AWSCLI_VENV) .pytest_cache .ruff_cache *.egg-info
