# The OCI image Istio's WasmPlugin pulls: the module alone, as plugin.wasm.
# From the repository root, after `make build`:
#   docker build -f envoyfilters/oci/peer_metadata.Dockerfile -t ghcr.io/example/peer_metadata:0.1.0 .
FROM scratch
COPY dist/peer_metadata.wasm ./plugin.wasm
