# The OCI image Istio's WasmPlugin pulls: the module alone, as plugin.wasm.
# From the repository root, after `make build`:
#   docker build -f envoyfilters/oci/suite.Dockerfile -t ghcr.io/example/suite:0.1.0 .
FROM scratch
COPY dist/suite.wasm ./plugin.wasm
