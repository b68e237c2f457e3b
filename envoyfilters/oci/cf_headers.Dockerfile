# The OCI image Istio's WasmPlugin pulls: the module alone, as plugin.wasm.
# From the repository root, after `make build`:
#   docker build -f envoyfilters/oci/cf_headers.Dockerfile -t ghcr.io/example/cf_headers:0.1.0 .
FROM scratch
COPY dist/cf_headers.wasm ./plugin.wasm
