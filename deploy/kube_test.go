package deploy_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	extensionsv1alpha1 "istio.io/api/extensions/v1alpha1"
	networkingv1 "istio.io/api/networking/v1"
	securityv1 "istio.io/api/security/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingk8s "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// kubeKinds are the Kubernetes kinds the deploy files may use, decoded
// into k8s.io/api's own types.
var kubeKinds = map[string]func() any{
	"v1/Namespace":                       func() any { return &corev1.Namespace{} },
	"v1/ServiceAccount":                  func() any { return &corev1.ServiceAccount{} },
	"v1/Secret":                          func() any { return &corev1.Secret{} },
	"v1/ConfigMap":                       func() any { return &corev1.ConfigMap{} },
	"v1/Service":                         func() any { return &corev1.Service{} },
	"apps/v1/Deployment":                 func() any { return &appsv1.Deployment{} },
	"apps/v1/StatefulSet":                func() any { return &appsv1.StatefulSet{} },
	"policy/v1/PodDisruptionBudget":      func() any { return &policyv1.PodDisruptionBudget{} },
	"networking.k8s.io/v1/NetworkPolicy": func() any { return &networkingk8s.NetworkPolicy{} },
}

// istioKinds are the Istio custom resources (CRDs installed with Istio),
// whose spec is decoded into istio.io/api's protos.
var istioKinds = map[string]func() proto.Message{
	"networking.istio.io/v1/DestinationRule":     func() proto.Message { return &networkingv1.DestinationRule{} },
	"networking.istio.io/v1/Gateway":             func() proto.Message { return &networkingv1.Gateway{} },
	"networking.istio.io/v1/VirtualService":      func() proto.Message { return &networkingv1.VirtualService{} },
	"security.istio.io/v1/PeerAuthentication":    func() proto.Message { return &securityv1.PeerAuthentication{} },
	"security.istio.io/v1/AuthorizationPolicy":   func() proto.Message { return &securityv1.AuthorizationPolicy{} },
	"security.istio.io/v1/RequestAuthentication": func() proto.Message { return &securityv1.RequestAuthentication{} },
	"extensions.istio.io/v1alpha1/WasmPlugin":    func() proto.Message { return &extensionsv1alpha1.WasmPlugin{} },
}

// clusterScoped kinds have no namespace.
var clusterScoped = map[string]bool{"Namespace": true, "ClusterRole": true, "ClusterRoleBinding": true}

func typeKey(o obj) string {
	av, _ := o["apiVersion"].(string)
	k, _ := o["kind"].(string)
	return av + "/" + k
}

// strictJSON decodes js into v, refusing unknown fields (what the API
// server's strict field validation, kubectl's default, refuses).
func strictJSON(js []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return fmt.Errorf("trailing data")
	}
	return nil
}

// istioEnvelope is a custom resource's outer shape.
type istioEnvelope struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              json.RawMessage `json:"spec"`
}

// validateObject decodes one manifest strictly into its API type: the
// Kubernetes types for built-in kinds, istio.io/api protos for Istio's
// (unknown fields, wrong types and unknown enum values fail). It returns
// the decoded value (a k8s.io/api pointer, or the Istio spec message).
func validateObject(o obj) (any, error) {
	key := typeKey(o)
	js, err := json.Marshal(o)
	if err != nil {
		return nil, err
	}
	name, _ := get2(o, "metadata", "name").(string)
	where := key + " " + name
	if name == "" {
		return nil, fmt.Errorf("%s: metadata.name is empty", where)
	}
	if mk := kubeKinds[key]; mk != nil {
		v := mk()
		if err := strictJSON(js, v); err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		return v, nil
	}
	if mk := istioKinds[key]; mk != nil {
		var env istioEnvelope
		if err := strictJSON(js, &env); err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		m := mk()
		if err := protojson.Unmarshal(env.Spec, m); err != nil {
			return nil, fmt.Errorf("%s: spec does not match %s: %w", where, m.ProtoReflect().Descriptor().FullName(), err)
		}
		return m, nil
	}
	return nil, fmt.Errorf("%s: kind not covered by the validation (add its API type to kubeKinds or istioKinds)", where)
}

// get2 walks mappings without failing (nil when absent).
func get2(v any, path ...string) any {
	for _, p := range path {
		m, ok := v.(obj)
		if !ok {
			return nil
		}
		v = m[p]
	}
	return v
}

func nsOf(o obj) string {
	s, _ := get2(o, "metadata", "namespace").(string)
	return s
}

func nameOf(o obj) string {
	s, _ := get2(o, "metadata", "name").(string)
	return s
}

// podTemplate returns a workload's pod template (Deployment, StatefulSet).
func podTemplate(o obj) (obj, bool) {
	switch o["kind"] {
	case "Deployment", "StatefulSet":
		t, ok := get2(o, "spec", "template").(obj)
		return t, ok
	}
	return nil, false
}

// selects reports whether every label of sel is on labels.
func selects(sel obj, labels obj) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// workloadsSelected lists the workloads in ns whose pods carry sel's labels.
func workloadsSelected(docs []obj, ns string, sel obj) []obj {
	var out []obj
	for _, d := range docs {
		if nsOf(d) != ns {
			continue
		}
		if tpl, ok := podTemplate(d); ok {
			if labels, _ := get2(tpl, "metadata", "labels").(obj); selects(sel, labels) {
				out = append(out, d)
			}
		}
	}
	return out
}

// findObj returns the object of kind/ns/name, or nil.
func findObj(docs []obj, kind, ns, name string) obj {
	for _, d := range docs {
		if d["kind"] == kind && nsOf(d) == ns && nameOf(d) == name {
			return d
		}
	}
	return nil
}

// secretValue returns a Secret's key, decoding data (base64) or stringData.
func secretValue(t *testing.T, s obj, key string) (string, bool) {
	t.Helper()
	if sd, ok := get2(s, "stringData", key).(string); ok {
		return sd, true
	}
	if _, ok := get2(s, "data", key).(string); ok {
		var sec corev1.Secret
		js, err := json.Marshal(s)
		require.NoError(t, err)
		require.NoError(t, json.Unmarshal(js, &sec)) // base64 decoded by the API type
		return string(sec.Data[key]), true
	}
	return "", false
}

// principal is the mTLS identity Istio gives a workload's service account.
func principal(trustDomain, ns, sa string) string {
	return trustDomain + "/ns/" + ns + "/sa/" + sa
}

func serviceAccountOf(w obj) string {
	tpl, _ := podTemplate(w)
	if sa, _ := get2(tpl, "spec", "serviceAccountName").(string); sa != "" {
		return sa
	}
	return "default"
}

func fqdn(ns, name string) string { return name + "." + ns + ".svc.cluster.local" }
