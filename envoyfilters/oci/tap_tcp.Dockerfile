# The OCI image Istio's WasmPlugin pulls: the module alone, as plugin.wasm.
# From the repository root, after `make build`:
#   docker build -f envoyfilters/oci/tap_tcp.Dockerfile -t ghcr.io/example/tap_tcp:0.1.0 .
FROM scratch
COPY dist/tap_tcp.wasm ./plugin.wasm
