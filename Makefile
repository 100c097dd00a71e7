# The README's commands. `make demo` and `make test` set everything up on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH_VERSION := 2.13.0
STAMP := $(VENV)/.installed

.PHONY: demo test docs bench lint mutation system-deps clean

# torch goes in first, pinned, so installing the package never resolves another torch build.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet torch==$(TORCH_VERSION)
	$(BIN)/pip install --quiet -e '.[dev,text,docs,pretrained]' torch==$(TORCH_VERSION)
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/transferkit demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

# The documentation (docs/, MkDocs) into site/; its examples also run in `make test`.
docs: $(STAMP)
	$(BIN)/mkdocs build --strict --site-dir site

# Real-data benchmarks (needs TRANSFERKIT_DATA); tables go to benchmarks/out/.
bench: $(STAMP) system-deps
	$(BIN)/python -m pytest -q -m slow
	$(BIN)/python benchmarks/run_all.py

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks

# Mutation testing of the mechanism modules ([tool.mutmut] in pyproject.toml), out of the default run.
# mutmut tests copies of the code under mutants/, which an editable install would shadow: it gets a
# venv of its own with the dependencies only, and finds the package through PYTHONPATH. The shallow methods'
# tests read the 16x16 digits: without TRANSFERKIT_DATA they skip and their mutants count as untested.
MUTATION_VENV := .venv-mutation
mutation:
	test -x $(MUTATION_VENV)/bin/mutmut || { $(PYTHON) -m venv $(MUTATION_VENV) && \
		$(MUTATION_VENV)/bin/pip install --quiet torch==$(TORCH_VERSION) && \
		$(MUTATION_VENV)/bin/pip install --quiet numpy scipy scikit-learn matplotlib tqdm pillow safetensors skops pandas \
		pytest hypothesis mutmut torch==$(TORCH_VERSION); }
	rm -rf mutants
	TRANSFERKIT_DATA=$${TRANSFERKIT_DATA:-../shared/data} OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 PYTHONPATH=src \
		$(MUTATION_VENV)/bin/mutmut run
	$(MUTATION_VENV)/bin/mutmut results

# Debian packages some loaders use (Fashion-MNIST; espeak-ng for spoken digits); needs root, skipped
# with a note otherwise.
DEBIAN_PACKAGES := dataset-fashion-mnist espeak-ng
system-deps:
	@missing=""; for p in $(DEBIAN_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -z "$$missing" ]; then :; \
	elif [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq $$missing; \
	else echo "note: not root; tests needing$$missing will be skipped (apt-get install$$missing)"; fi

clean:
	rm -rf $(VENV) $(MUTATION_VENV) mutants build dist site src/*.egg-info
