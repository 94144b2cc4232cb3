# The two commands of README.md. Both create .venv (Python >= 3.11) and install what they need.
#   make demo   install everything and run the offline demo (Mini-Taskonomy, config/demo.yaml)
#               and its HTML report; DEMO_CONFIG=config/demo-ci.yaml runs the CI-size universe
#   make test   install the test extras and run the whole test suite
PYTHON ?= python3
VENV   ?= .venv
CORES  ?= 2
# CPU build of PyTorch; an unpinned torch would pull several GB of CUDA packages.
TORCH_SPEC  ?= torch==2.13.0
TORCH_INDEX ?=
BIN := $(VENV)/bin

.PHONY: demo test install install-test report clean-demo

$(BIN)/python:
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "tasksim needs Python >= 3.11"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e ".[cluster]"
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e ".[test,cluster]"
	touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

DEMO_CONFIG ?= config/demo.yaml
# The report goes into the configuration's results_dir.
DEMO_RESULTS = $(shell sed -n 's/^results_dir: *//p' $(DEMO_CONFIG))
# Offline: the Taskonomy ground truth comes from ../shared/taskonomy where it exists beside the checkout.
DEMO_ARGS = --configfile $(DEMO_CONFIG) $(if $(wildcard ../shared/taskonomy/SHA256SUMS),--config 'taxonomy={"groundtruth_source": "../shared/taskonomy"}')

demo: install
	$(BIN)/snakemake --cores $(CORES) $(DEMO_ARGS)
	$(BIN)/snakemake --cores $(CORES) $(DEMO_ARGS) --report $(DEMO_RESULTS)/report.html
	@echo "demo done: $(DEMO_RESULTS)/ (report: $(DEMO_RESULTS)/report.html)"

# Two pytest-xdist workers, one test file per worker at a time, long files first
# (tests/conftest.py); TEST_WORKERS=0 runs the suite in this process.
TEST_WORKERS ?= 2
test: install-test
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest $(if $(filter-out 0,$(TEST_WORKERS)),-n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder) $(PYTEST_ARGS)

report: install
	$(BIN)/snakemake --cores $(CORES) --report report.html

clean-demo:
	rm -rf data/demo results/demo data/demo-ci results/demo-ci
