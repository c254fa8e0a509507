# The filter as an OCI image for Istio's WasmPlugin (spec.url: oci://...).
# Istio's image format ("compat" variant): a single layer holding plugin.wasm.
#
#   make plugin   # builds ./plugin.wasm (with the poll_oneoff build-time fix)
#   docker build -f deploy/plugin.Dockerfile -t <registry>/meshsession-plugin:<version> .
#   docker push <registry>/meshsession-plugin:<version>
FROM scratch
COPY plugin.wasm ./plugin.wasm
