# The OCI image Istio's WasmPlugin pulls: the module alone, as plugin.wasm.
# From the repository root, after `make build`:
#   docker build -f envoyfilters/oci/tap_http.Dockerfile -t ghcr.io/example/tap_http:0.1.0 .
FROM scratch
COPY dist/tap_http.wasm ./plugin.wasm
