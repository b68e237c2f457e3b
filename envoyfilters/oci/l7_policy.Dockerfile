# The OCI image Istio's WasmPlugin pulls: the module alone, as plugin.wasm.
# From the repository root, after `make build`:
#   docker build -f envoyfilters/oci/l7_policy.Dockerfile -t ghcr.io/example/l7_policy:0.1.0 .
FROM scratch
COPY dist/l7_policy.wasm ./plugin.wasm
