// Package deploy holds meshsession's deployment files: the Dockerfiles
// (sessionsvc, demo app, the plugin's OCI image), the Kubernetes and Istio
// manifests as a kustomize base with overlays (kustomize/), and the Grafana
// dashboard and Prometheus alert rules (monitoring/). It has no code; its
// tests render the overlays with kustomize's Go API (what `kubectl apply -k`
// runs), decode every object strictly into the Kubernetes (k8s.io/api) and
// Istio (istio.io/api) types, run the README's commands from a clean cluster,
// and check docker-compose.yml, envoy.yaml and the monitoring files for
// consistency with the code (Docker, Kubernetes and Istio are not available
// where the tests run).
package deploy
