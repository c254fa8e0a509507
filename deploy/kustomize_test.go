package deploy_test

import (
	"encoding/base64"
	"encoding/json"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	pluginconfig "github.com/meshsession/meshsession/plugin/core/config"
)

const (
	overlayDev        = "deploy/kustomize/overlays/dev"
	overlayProduction = "deploy/kustomize/overlays/production"
	productionEnv     = overlayProduction + "/sessionsvc.env"
	trustDomain       = "cluster.local" // Istio's default
)

// preexisting namespaces on a cluster with Istio installed.
var preexisting = map[string]bool{"default": true, "kube-system": true, "kube-public": true, "istio-system": true}

// renderOverlay renders an overlay; production first gets its
// sessionsvc.env from the example, as the README has the user do.
func renderOverlay(t *testing.T, dir string) []obj {
	t.Helper()
	fs := memRepo(t)
	if dir == overlayProduction {
		copyFile(t, fs, productionEnv+".example", productionEnv)
	}
	return kustomize(t, fs, dir)
}

func copyFile(t *testing.T, fs filesys.FileSystem, from, to string) {
	t.Helper()
	data, err := fs.ReadFile("/repo/" + from)
	require.NoError(t, err, "cp %s", from)
	require.NoError(t, fs.WriteFile("/repo/"+to, data))
}

// typedPodSpec decodes a workload's pod template.
func typedPodSpec(t *testing.T, w obj) (corev1.PodTemplateSpec, obj) {
	t.Helper()
	v, err := validateObject(w)
	require.NoError(t, err)
	switch d := v.(type) {
	case *appsv1.Deployment:
		return d.Spec.Template, labelsObj(d.Spec.Selector.MatchLabels)
	case *appsv1.StatefulSet:
		return d.Spec.Template, labelsObj(d.Spec.Selector.MatchLabels)
	}
	t.Fatalf("%s is not a workload", typeKey(w))
	return corev1.PodTemplateSpec{}, nil
}

// checkCoherent validates every object against its API type and checks
// that the set holds together the way a cluster needs it to: selectors
// select, references resolve, pods are locked down. ownNS are the
// namespaces whose workloads the set itself deploys (a WasmPlugin in
// another namespace protects the user's own app).
func checkCoherent(t *testing.T, docs []obj) {
	t.Helper()
	for _, d := range docs {
		_, err := validateObject(d)
		require.NoError(t, err)
		if !clusterScoped[d["kind"].(string)] {
			assert.NotEmpty(t, nsOf(d), "%s %s: no namespace", typeKey(d), nameOf(d))
		}
	}
	hasWorkloads := map[string]bool{}
	for _, d := range docs {
		if _, ok := podTemplate(d); ok {
			hasWorkloads[nsOf(d)] = true
		}
	}
	for _, d := range docs {
		kind, ns, name := d["kind"].(string), nsOf(d), nameOf(d)
		where := kind + " " + ns + "/" + name
		switch kind {
		case "Deployment", "StatefulSet":
			checkWorkload(t, docs, d)
		case "Service":
			sel, _ := get2(d, "spec", "selector").(obj)
			ws := workloadsSelected(docs, ns, sel)
			require.NotEmpty(t, ws, "%s: selects no workload", where)
			tpl, _ := typedPodSpec(t, ws[0])
			var svc corev1.Service
			js, _ := json.Marshal(d)
			require.NoError(t, json.Unmarshal(js, &svc))
			for _, p := range svc.Spec.Ports {
				assert.True(t, containerHasPort(tpl.Spec, p.TargetPort), "%s: targetPort %s not in the pods", where, p.TargetPort.String())
				assert.True(t, strings.HasPrefix(p.Name, "http") || strings.HasPrefix(p.Name, "tcp"), "%s: port name %q: Istio selects the protocol by name", where, p.Name)
			}
		case "PodDisruptionBudget", "NetworkPolicy":
			path := []string{"spec", "selector", "matchLabels"}
			if kind == "NetworkPolicy" {
				path = []string{"spec", "podSelector", "matchLabels"}
			}
			sel, _ := get2(d, path...).(obj)
			assert.NotEmpty(t, workloadsSelected(docs, ns, sel), "%s: selects no workload", where)
		case "PeerAuthentication", "AuthorizationPolicy", "RequestAuthentication", "WasmPlugin":
			sel, _ := get2(d, "spec", "selector", "matchLabels").(obj)
			require.NotEmpty(t, sel, "%s: no selector: it would apply to the whole namespace", where)
			if hasWorkloads[ns] {
				assert.NotEmpty(t, workloadsSelected(docs, ns, sel), "%s: selects no workload", where)
			}
		}
	}
}

func containerHasPort(ps corev1.PodSpec, p intstr.IntOrString) bool {
	for _, c := range ps.Containers {
		for _, cp := range c.Ports {
			if (p.Type == intstr.String && cp.Name == p.StrVal) || (p.Type == intstr.Int && cp.ContainerPort == p.IntVal) {
				return true
			}
		}
	}
	return false
}

// checkWorkload: selector, non-root, probes, resources, and every Secret
// and ServiceAccount it names exists in its namespace (with the key).
func checkWorkload(t *testing.T, docs []obj, w obj) {
	t.Helper()
	ns := nsOf(w)
	where := w["kind"].(string) + " " + ns + "/" + nameOf(w)
	tpl, sel := typedPodSpec(t, w)
	for k, v := range sel {
		assert.Equal(t, v, tpl.Labels[k], "%s: selector %s must match the pod labels", where, k)
	}
	ps := tpl.Spec
	require.NotNil(t, ps.SecurityContext, "%s: pod securityContext", where)
	assert.True(t, ps.SecurityContext.RunAsNonRoot != nil && *ps.SecurityContext.RunAsNonRoot, "%s: runAsNonRoot", where)
	assert.True(t, ps.SecurityContext.RunAsUser != nil && *ps.SecurityContext.RunAsUser > 0, "%s: numeric non-root runAsUser", where)
	if ps.ServiceAccountName != "" {
		assert.NotNil(t, findObj(docs, "ServiceAccount", ns, ps.ServiceAccountName), "%s: ServiceAccount %s", where, ps.ServiceAccountName)
	}
	for _, c := range ps.Containers {
		cw := where + " container " + c.Name
		assert.NotNil(t, c.ReadinessProbe, "%s: readinessProbe", cw)
		assert.NotNil(t, c.LivenessProbe, "%s: livenessProbe", cw)
		for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			assert.Contains(t, c.Resources.Requests, res, "%s: requests.%s", cw, res)
			assert.Contains(t, c.Resources.Limits, res, "%s: limits.%s", cw, res)
		}
		require.NotNil(t, c.SecurityContext, "%s: securityContext", cw)
		assert.False(t, c.SecurityContext.AllowPrivilegeEscalation == nil || *c.SecurityContext.AllowPrivilegeEscalation, "%s: allowPrivilegeEscalation false", cw)
		require.NotNil(t, c.SecurityContext.Capabilities, "%s: capabilities", cw)
		assert.Contains(t, c.SecurityContext.Capabilities.Drop, corev1.Capability("ALL"), "%s: drop ALL capabilities", cw)
		for _, p := range []*corev1.Probe{c.ReadinessProbe, c.LivenessProbe} {
			if p != nil && p.HTTPGet != nil {
				assert.True(t, containerHasPort(corev1.PodSpec{Containers: []corev1.Container{c}}, p.HTTPGet.Port), "%s: probe port %s", cw, p.HTTPGet.Port.String())
			}
		}
		for _, e := range c.Env {
			if e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
				continue
			}
			ref := e.ValueFrom.SecretKeyRef
			optional := ref.Optional != nil && *ref.Optional
			s := findObj(docs, "Secret", ns, ref.Name)
			if s == nil {
				assert.True(t, optional, "%s: env %s: no Secret %s in %s", cw, e.Name, ref.Name, ns)
				continue
			}
			_, ok := secretValue(t, s, ref.Key)
			assert.True(t, ok || optional, "%s: env %s: Secret %s has no key %s", cw, e.Name, ref.Name, ref.Key)
		}
		for _, ef := range c.EnvFrom {
			if ef.SecretRef != nil {
				assert.NotNil(t, findObj(docs, "Secret", ns, ef.SecretRef.Name), "%s: envFrom Secret %s", cw, ef.SecretRef.Name)
			}
		}
	}
}

// resolvedEnv returns a container's environment with Secret references
// resolved from the rendered Secrets.
func resolvedEnv(t *testing.T, docs []obj, w obj, container string) obj {
	t.Helper()
	tpl, _ := typedPodSpec(t, w)
	env := obj{}
	for _, c := range tpl.Spec.Containers {
		if c.Name != container {
			continue
		}
		for _, e := range c.Env {
			switch {
			case e.ValueFrom == nil:
				env[e.Name] = e.Value
			case e.ValueFrom.SecretKeyRef != nil:
				ref := e.ValueFrom.SecretKeyRef
				if s := findObj(docs, "Secret", nsOf(w), ref.Name); s != nil {
					if v, ok := secretValue(t, s, ref.Key); ok {
						env[e.Name] = v
					}
				}
			}
		}
		return env
	}
	t.Fatalf("no container %s", container)
	return nil
}

func TestKustomizeOverlaysValidate(t *testing.T) {
	for _, dir := range []string{overlayDev, overlayProduction} {
		t.Run(dir, func(t *testing.T) {
			docs := renderOverlay(t, dir)
			checkCoherent(t, docs)

			k := readDocs(t, dir+"/kustomization.yaml")[0]
			assert.Equal(t, "legacy", getStr(t, k, "sortOptions", "order"), "apply order must not depend on kubectl's default")

			svc := findObj(docs, "Deployment", "meshsession", "sessionsvc")
			require.NotNil(t, svc)
			for _, kind := range []string{"Service", "PodDisruptionBudget", "NetworkPolicy", "ServiceAccount", "PeerAuthentication", "DestinationRule"} {
				assert.NotNil(t, findObj(docs, kind, "meshsession", "sessionsvc"), "%s sessionsvc", kind)
			}
			env := resolvedEnv(t, docs, svc, "sessionsvc")
			for _, k := range []string{"DATABASE_URL", "MESHSESSION_INTERNAL_KEY", "ADMIN_TOKEN", "SESSION_ENCRYPTION_KEY"} {
				assert.NotEmpty(t, env[k], "sessionsvc %s: resolved from the Secret", k)
			}
			tpl, _ := typedPodSpec(t, svc)
			for _, e := range tpl.Spec.Containers[0].Env {
				if strings.Contains(e.Name, "KEY") || strings.Contains(e.Name, "TOKEN") || strings.Contains(e.Name, "SECRET") || e.Name == "DATABASE_URL" {
					assert.NotNil(t, e.ValueFrom, "env %s: by reference to a Secret, never inline", e.Name)
					assert.Empty(t, e.Value, "env %s: by reference to a Secret, never inline", e.Name)
				}
			}
			assert.True(t, strings.HasPrefix(env["DATABASE_URL"].(string), "postgres://"), "PostgreSQL: several replicas share it")

			checkMeshPolicies(t, docs)
		})
	}
}

// checkMeshPolicies: the WasmPlugins reach sessionsvc by Istio's cluster
// name, carry no signing secret, read the payload Istio's jwt_authn
// writes; a RequestAuthentication verifies tokens for each; only their
// identities may call the internal API.
func checkMeshPolicies(t *testing.T, docs []obj) {
	t.Helper()
	service := findObj(docs, "Service", "meshsession", "sessionsvc")
	require.NotNil(t, service)
	port := getNum(t, service, "spec", "ports", 0, "port")
	cluster := "outbound|" + itoa(port) + "||" + fqdn("meshsession", "sessionsvc")

	dr := findObj(docs, "DestinationRule", "meshsession", "sessionsvc")
	assert.Equal(t, fqdn("meshsession", "sessionsvc"), getStr(t, dr, "spec", "host"))
	assert.Equal(t, "ISTIO_MUTUAL", getStr(t, dr, "spec", "trafficPolicy", "tls", "mode"))
	assert.Equal(t, "STRICT", getStr(t, findObj(docs, "PeerAuthentication", "meshsession", "sessionsvc"), "spec", "mtls", "mode"))

	ap := findObj(docs, "AuthorizationPolicy", "meshsession", "sessionsvc-internal-api")
	require.NotNil(t, ap, "the internal API's AuthorizationPolicy")
	assert.Equal(t, "DENY", getStr(t, ap, "spec", "action"))
	rules := getList(t, ap, "spec", "rules")
	require.Len(t, rules, 1)
	allowed := strs(t, getList(t, rules[0], "from", 0, "source", "notPrincipals"))
	paths := strs(t, getList(t, rules[0], "to", 0, "operation", "paths"))
	assert.Equal(t, []string{"/internal/*"}, paths, "every internal route, any version")

	var plugins int
	for _, w := range docs {
		if w["kind"] != "WasmPlugin" {
			continue
		}
		plugins++
		ns := nsOf(w)
		raw := getObj(t, w, "spec", "pluginConfig")
		pc, err := pluginconfig.Parse(pluginConfigJSON(t, raw))
		require.NoError(t, err, "pluginConfig must be accepted by the plugin's parser")
		assert.Equal(t, cluster, pc.Cluster, "Istio's cluster name for the sessionsvc Service")
		assert.Equal(t, fqdn("meshsession", "sessionsvc"), pc.Authority)
		assert.Equal(t, pluginconfig.ModeJWTAuthnMetadata, pc.Verify.Mode, "recommended: Istio verifies, the plugin reads the payload")
		assert.Empty(t, pc.Verify.Secret, "no signing secret in a WasmPlugin")
		assert.Equal(t, "envoy.filters.http.jwt_authn", pc.Verify.MetadataNamespace)
		assert.Equal(t, "payload", pc.Verify.MetadataKey, "istiod's EnvoyJwtFilterPayload")
		assert.Equal(t, 1, pc.TrustedProxyHops, "behind the ingress gateway")
		assert.Regexp(t, `^oci://[^/]+/.+/meshsession-plugin:[\w.-]+$`, getStr(t, w, "spec", "url"))
		assert.Equal(t, "AUTHZ", getStr(t, w, "spec", "phase"), "after jwt_authn")
		assert.Equal(t, "FAIL_CLOSE", getStr(t, w, "spec", "failStrategy"))

		sel := getObj(t, w, "spec", "selector", "matchLabels")
		var ra obj
		for _, d := range docs {
			if d["kind"] == "RequestAuthentication" && nsOf(d) == ns && selects(getObj(t, d, "spec", "selector", "matchLabels"), sel) {
				ra = d
			}
		}
		require.NotNil(t, ra, "WasmPlugin %s/%s: no RequestAuthentication for the same workloads", ns, nameOf(w))
		rule := getList(t, ra, "spec", "jwtRules")[0]
		assert.Equal(t, true, get(t, rule, "forwardOriginalToken"), "the plugin and the app need the token")
		cookies := strs(t, getList(t, rule, "fromCookies"))
		assert.Contains(t, cookies, pc.TokenCookie, "Istio must verify the cookie the plugin reads")

		ws := workloadsSelected(docs, ns, sel)
		if len(ws) == 0 {
			// The user's own app: its identity must be the one listed.
			found := false
			for _, p := range allowed {
				found = found || strings.HasPrefix(p, trustDomain+"/ns/"+ns+"/sa/")
			}
			assert.True(t, found, "AuthorizationPolicy: no principal in namespace %s", ns)
		}
		for _, wl := range ws {
			assert.Contains(t, allowed, principal(trustDomain, ns, serviceAccountOf(wl)),
				"the sidecar of %s runs the plugin: it must be allowed on the internal API", nameOf(wl))
		}
	}
	assert.Positive(t, plugins, "no WasmPlugin")
}

func itoa(n int) string { return strconv.Itoa(n) }

func labelsObj(m map[string]string) obj {
	o := obj{}
	for k, v := range m {
		o[k] = v
	}
	return o
}

func base64URL(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func readRepoFile(p string) (string, error) {
	b, err := os.ReadFile(repoPath(p))
	return string(b), err
}

// TestKustomizeDev: the dev overlay's demo values agree with envoy.yaml
// and docker-compose.yml, sessionsvc accepts its environment, and it finds
// its database.
func TestKustomizeDev(t *testing.T) {
	ec, envoyPlugin := loadEnvoy(t)
	docs := renderOverlay(t, overlayDev)
	svcDep := findObj(docs, "Deployment", "meshsession", "sessionsvc")
	env := resolvedEnv(t, docs, svcDep, "sessionsvc")
	cfg := parseSessionsvcEnv(t, env)
	assert.Equal(t, "json", cfg.LogFormat)

	t.Run("plugin config mirrors envoy.yaml", func(t *testing.T) {
		wp := findObj(docs, "WasmPlugin", "demo", "meshsession")
		require.NotNil(t, wp)
		assert.Equal(t, ec.Wasm.RootID, getStr(t, wp, "spec", "pluginName"), "pluginName is the root_id, as in envoy.yaml")
		raw := getObj(t, wp, "spec", "pluginConfig")
		pc, err := pluginconfig.Parse(pluginConfigJSON(t, raw))
		require.NoError(t, err)
		assert.Equal(t, cfg.InternalKey, pc.InternalKey, "internal key: WasmPlugin vs Secret")
		var envoyRaw map[string]any
		require.NoError(t, json.Unmarshal([]byte(ec.Wasm.Configuration), &envoyRaw))
		notVerify := func(ps []string) []string {
			return slices.DeleteFunc(ps, func(p string) bool { return strings.HasPrefix(p, "verify") })
		}
		assert.Equal(t, notVerify(keyPaths("", envoyRaw)), notVerify(keyPaths("", raw)), "pluginConfig fields vs envoy.yaml configuration")
		assert.Equal(t, envoyPlugin.Login, pc.Login)
		assert.Equal(t, envoyPlugin.Refresh, pc.Refresh)
		assert.Equal(t, envoyPlugin.Logout, pc.Logout)
		assert.Equal(t, envoyPlugin.SyncInterval, pc.SyncInterval)
		assert.Equal(t, envoyPlugin.InternalKey, pc.InternalKey, "the same demo key as envoy.yaml and compose")
	})

	t.Run("demo app and Istio verify the same tokens", func(t *testing.T) {
		demo := findObj(docs, "Deployment", "demo", "demoapp")
		require.NotNil(t, demo)
		denv := resolvedEnv(t, docs, demo, "demoapp")
		assert.Equal(t, cfg.JWTSecret, denv["JWT_SECRET"], "app and sessionsvc share the JWT secret")
		assert.Equal(t, cfg.JWTIssuer, denv["JWT_ISSUER"])
		ra := findObj(docs, "RequestAuthentication", "demo", "demoapp")
		rule := getList(t, ra, "spec", "jwtRules")[0]
		assert.Equal(t, denv["JWT_ISSUER"], getStr(t, rule, "issuer"), "Istio accepts the app's issuer")
		var jwks struct {
			Keys []struct{ Kty, Alg, K string }
		}
		require.NoError(t, json.Unmarshal([]byte(getStr(t, rule, "jwks")), &jwks))
		require.Len(t, jwks.Keys, 1)
		assert.Equal(t, "oct", jwks.Keys[0].Kty)
		assert.Equal(t, "HS256", jwks.Keys[0].Alg)
		assert.Equal(t, base64URL(denv["JWT_SECRET"].(string)), jwks.Keys[0].K, "the inline JWKS holds the app's HS256 key")
		tpl, _ := typedPodSpec(t, demo)
		assert.Contains(t, tpl.Annotations["proxy.istio.io/config"], "wasmcustom.", "the plugin's stats reach Prometheus")
	})

	t.Run("database", func(t *testing.T) {
		u, err := url.Parse(cfg.DatabaseURL)
		require.NoError(t, err)
		pgSvc := findObj(docs, "Service", "meshsession", "postgres")
		require.NotNil(t, pgSvc, "the dev overlay brings its PostgreSQL")
		assert.Equal(t, fqdn("meshsession", "postgres"), u.Hostname())
		assert.Equal(t, itoa(getNum(t, pgSvc, "spec", "ports", 0, "port")), u.Port())
		pg := findObj(docs, "StatefulSet", "meshsession", "postgres")
		require.NotNil(t, pg)
		tpl, _ := typedPodSpec(t, pg)
		secretName := tpl.Spec.Containers[0].EnvFrom[0].SecretRef.Name
		s := findObj(docs, "Secret", "meshsession", secretName)
		require.NotNil(t, s)
		user, _ := secretValue(t, s, "POSTGRES_USER")
		pw, _ := secretValue(t, s, "POSTGRES_PASSWORD")
		db, _ := secretValue(t, s, "POSTGRES_DB")
		upw, _ := u.User.Password()
		assert.Equal(t, user, u.User.Username())
		assert.Equal(t, pw, upw)
		assert.Equal(t, "/"+db, u.Path)
	})

	t.Run("gateway mirrors envoy.yaml", func(t *testing.T) {
		gw := findObj(docs, "Gateway", "demo", "meshsession")
		vs := findObj(docs, "VirtualService", "demo", "meshsession")
		require.NotNil(t, gw)
		require.NotNil(t, vs)
		assert.Contains(t, strs(t, getList(t, vs, "spec", "gateways")), nameOf(gw))
		demoSvc := findObj(docs, "Service", "demo", "demoapp")
		sessSvc := findObj(docs, "Service", "meshsession", "sessionsvc")
		targets := map[string]struct {
			host string
			port int
		}{
			"sessionsvc": {fqdn("meshsession", "sessionsvc"), getNum(t, sessSvc, "spec", "ports", 0, "port")},
			"app":        {fqdn("demo", "demoapp"), getNum(t, demoSvc, "spec", "ports", 0, "port")},
		}
		routes := getList(t, vs, "spec", "http")
		require.Len(t, routes, len(ec.Routes), "one VirtualService route per envoy.yaml route")
		for i, r := range ec.Routes {
			vr := routes[i].(obj)
			if r.Prefix != "/" {
				assert.Equal(t, r.Prefix, getStr(t, vr, "match", 0, "uri", "prefix"), "route %d", i)
			} else {
				_, hasMatch := vr["match"]
				assert.False(t, hasMatch, "route %d: the catch-all has no match", i)
			}
			want := targets[r.Cluster]
			assert.Equal(t, want.host, getStr(t, vr, "route", 0, "destination", "host"), "route %d", i)
			assert.Equal(t, want.port, getNum(t, vr, "route", 0, "destination", "port", "number"), "route %d", i)
		}
	})
}

// TestKustomizeProduction: nothing secret in the repository's production
// files; the example environment names what the policies expect.
func TestKustomizeProduction(t *testing.T) {
	k := readDocs(t, overlayProduction+"/kustomization.yaml")[0]
	for _, g := range getList(t, k, "secretGenerator") {
		_, literal := g.(obj)["literals"]
		assert.False(t, literal, "production secrets come from sessionsvc.env, not literals")
	}
	ignore, err := readRepoFile(".gitignore")
	require.NoError(t, err)
	assert.Contains(t, strings.Fields(ignore), "/"+productionEnv, "sessionsvc.env must never be committed")

	docs := renderOverlay(t, overlayProduction)
	svcDep := findObj(docs, "Deployment", "meshsession", "sessionsvc")
	env := resolvedEnv(t, docs, svcDep, "sessionsvc")
	ra := findObj(docs, "RequestAuthentication", "my-app", "my-app")
	require.NotNil(t, ra)
	rule := getList(t, ra, "spec", "jwtRules")[0]
	_, inline := rule.(obj)["jwks"]
	assert.False(t, inline, "production: keys from the issuer's jwksUri, no inline key")
	assert.Equal(t, env["JWKS_URL"], getStr(t, rule, "jwksUri"), "sessionsvc and Istio verify with the same keys")
	assert.Equal(t, env["JWT_ISSUER"], getStr(t, rule, "issuer"))
	assert.Nil(t, findObj(docs, "StatefulSet", "meshsession", "postgres"), "no development database in production")
	ns := findObj(docs, "Namespace", "", "my-app")
	require.NotNil(t, ns)
	assert.Equal(t, "true", getStr(t, ns, "metadata", "labels", "meshsession.io/client"), "allowed through sessionsvc's NetworkPolicy")
	assert.Equal(t, "enabled", getStr(t, ns, "metadata", "labels", "istio-injection"))
}

// TestValidationIsStrict: the API-type validation refuses what the API
// server would (so the overlays' passing means something).
func TestValidationIsStrict(t *testing.T) {
	docs := renderOverlay(t, overlayDev)
	clone := func(o obj) obj {
		js, _ := json.Marshal(o)
		var c obj
		require.NoError(t, json.Unmarshal(js, &c))
		return c
	}
	for _, tt := range []struct {
		name   string
		kind   string
		mutate func(o obj)
		want   string
	}{
		{"unknown field", "Deployment", func(o obj) { o["spec"].(obj)["replica"] = 2 }, "replica"},
		{"wrong type", "Deployment", func(o obj) { o["spec"].(obj)["replicas"] = "two" }, "replicas"},
		{"bad quantity", "Deployment", func(o obj) {
			c := getObj(t, o, "spec", "template", "spec", "containers", 0, "resources", "limits")
			c["memory"] = "lots"
		}, "quantities"},
		{"container typo", "Deployment", func(o obj) { getObj(t, o, "spec", "template", "spec", "containers", 0)["imagePullPolicyy"] = "Always" }, "imagePullPolicyy"},
		{"istio typo", "WasmPlugin", func(o obj) { o["spec"].(obj)["failStratgy"] = "FAIL_CLOSE" }, "failStratgy"},
		{"istio bad enum", "WasmPlugin", func(o obj) { o["spec"].(obj)["phase"] = "AUTHX" }, "AUTHX"},
		{"istio metadata typo", "AuthorizationPolicy", func(o obj) { o["metadata"].(obj)["namspace"] = "x" }, "namspace"},
		{"istio wrong type", "AuthorizationPolicy", func(o obj) { o["spec"].(obj)["action"] = 3.5 }, "action"},
		{"unknown kind", "Service", func(o obj) { o["kind"] = "Servic" }, "not covered"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var o obj
			for _, d := range docs {
				if d["kind"] == tt.kind {
					o = clone(d)
					break
				}
			}
			require.NotNil(t, o, tt.kind)
			_, err := validateObject(o)
			require.NoError(t, err, "before the mutation")
			tt.mutate(o)
			_, err = validateObject(o)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}
