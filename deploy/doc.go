// Package deploy holds meshsession's deployment files: the Dockerfiles
// (sessionsvc, demo app, the plugin's OCI image), the Istio manifests
// (istio/) and the Kubernetes manifests (k8s/). It has no code; its tests
// check these files, and docker-compose.yml at the repository root,
// structurally and for consistency with envoy.yaml (Docker, Kubernetes and
// Istio are not available where the tests run).
package deploy
