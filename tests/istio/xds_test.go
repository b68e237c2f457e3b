package istio

// How a proxy sees our manifests: Istio's own in-process discovery server
// (pilot/test/xds) is given the Kubernetes objects of testdata/cluster.yaml
// and one form's Istio configuration, and a sidecar (or the ingress gateway)
// asks it for listeners over ADS, then for the extension configs those
// listeners reference (ECDS), as Envoy does.

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"sigs.k8s.io/yaml"

	"istio.io/istio/pilot/pkg/config/kube/crd"
	"istio.io/istio/pilot/pkg/model"
	v3 "istio.io/istio/pilot/pkg/xds/v3"
	"istio.io/istio/pilot/test/xds"
	"istio.io/istio/pkg/config"
	"istio.io/istio/pkg/config/constants"
	"istio.io/istio/pkg/config/mesh"
)

const (
	appNamespace = "cf-workloads"
	appGUID      = "6f1b5a3e-2f7c-4d3a-9a61-0c2b8d4e5f70"
	// The Istio version the proxies announce: the release this master
	// snapshot precedes is 1.31; 1.30 is the oldest with TrafficExtension.
	proxyVersion = "1.30.0"
)

// What every run has beside the form: a Gateway, so that the ingress gateway
// has a listener, and the policies that make Istio add its own filters to
// the app's chains (JWT authentication, RBAC), so that our filters' places
// among them show.
const baseConfig = `apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata:
  name: jwt
  namespace: cf-workloads
spec:
  selector:
    matchLabels:
      app: my-app
  jwtRules:
  - issuer: https://uaa.example.com/oauth/token
    # Inline (a throwaway public key): a jwksUri would make istiod fetch it.
    jwks: '{"keys":[{"kty":"RSA","e":"AQAB","kid":"test","n":"tjqHmTdmtZFPw8fKxtGLxAXD_GvzGUVyxU5URY82yIE0PwNZ-X1nYfKosbk-dVrKsyxI2lDdlasvQwRF_xnLDCjJfqeRM3b_X8EHMVidTtls6zDZuqgJxL998aMavQePq4o599-YLul5nf06s5UMHDGUj1CanF8SwOAvdvUYSX0"}]}'
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: allow-mesh
  namespace: cf-workloads
spec:
  selector:
    matchLabels:
      app: my-app
  action: ALLOW
  rules:
  - from:
    - source:
        namespaces: ["cf-workloads", "istio-system"]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: apps
  namespace: istio-system
spec:
  selector:
    istio: ingressgateway
  servers:
  - port:
      number: 80
      name: http
      protocol: HTTP
    hosts:
    - "*"
`

// repoRoot is the project's root, two levels above this module.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// parseConfigs reads Istio objects as Istio's own CRD conversion does,
// with its schema validation, and puts objects without a namespace into
// `namespace` (as `kubectl apply -n` would). Unknown kinds fail the test.
func parseConfigs(t *testing.T, text, namespace string) []config.Config {
	t.Helper()
	configs, unknown, err := crd.ParseInputs(withNamespace(t, text, namespace))
	if err != nil {
		t.Fatalf("Istio refuses the configuration: %v", err)
	}
	if len(unknown) > 0 {
		kinds := []string{}
		for _, u := range unknown {
			kinds = append(kinds, u.Kind)
		}
		t.Fatalf("kinds Istio does not know: %v", kinds)
	}
	now := time.Now()
	for i := range configs {
		configs[i].CreationTimestamp = now
	}
	return configs
}

// withNamespace puts `namespace` into every object that names none, as the
// API server does before the admission webhook validates it (validation
// reads the namespace: exportTo ".", for one).
func withNamespace(t *testing.T, text, namespace string) string {
	t.Helper()
	var docs []string
	for _, doc := range yamlDocuments(text) {
		obj := map[string]any{}
		if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
			t.Fatalf("not YAML: %v", err)
		}
		if len(obj) == 0 {
			continue
		}
		meta, _ := obj["metadata"].(map[string]any)
		if meta == nil {
			t.Fatalf("an object without metadata: %s", doc)
		}
		if ns, _ := meta["namespace"].(string); ns == "" {
			meta["namespace"] = namespace
		}
		b, err := yaml.Marshal(obj)
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, string(b))
	}
	return strings.Join(docs, "---\n")
}

// yamlDocuments splits a multi-document YAML stream.
func yamlDocuments(text string) []string {
	var docs []string
	current := []string{}
	for _, line := range strings.Split(text, "\n") {
		if strings.TrimRight(line, " ") == "---" {
			docs = append(docs, strings.Join(current, "\n"))
			current = current[:0]
			continue
		}
		current = append(current, line)
	}
	return append(docs, strings.Join(current, "\n"))
}

// proxy is who asks: a sidecar of the app pod or the ingress gateway.
type proxy struct {
	id       string
	metadata model.NodeMetadata
}

func sidecar() proxy {
	return proxy{
		id: "sidecar~10.40.0.5~my-app-0." + appNamespace + "~" + appNamespace + ".svc.cluster.local",
		metadata: model.NodeMetadata{
			ClusterID:    constants.DefaultClusterName,
			Namespace:    appNamespace,
			IstioVersion: proxyVersion,
			Labels: map[string]string{
				"app":                       "my-app",
				"cloudfoundry.org/app_guid": appGUID,
				"security.istio.io/tlsMode": "istio",
			},
		},
	}
}

func gateway() proxy {
	return proxy{
		id: "router~10.40.0.9~istio-ingressgateway-0.istio-system~istio-system.svc.cluster.local",
		metadata: model.NodeMetadata{
			ClusterID:    constants.DefaultClusterName,
			Namespace:    "istio-system",
			IstioVersion: proxyVersion,
			Labels:       map[string]string{"istio": "ingressgateway"},
		},
	}
}

// discovered is what one proxy received: its listeners and the extension
// configs they reference, each as Envoy would get them on the wire.
type discovered struct {
	listeners  []*listener.Listener
	extensions map[string]*core.TypedExtensionConfig
	// Bytes of the listener and ECDS responses' resources.
	listenerBytes, extensionBytes int
}

// discover runs Istio's discovery server on `configs` and asks it as `p`.
func discover(t *testing.T, configs []config.Config, p proxy) discovered {
	t.Helper()
	root := repoRoot(t)
	all := append(parseConfigs(t, baseConfig, "istio-system"), configs...)
	// As Istio's chart installs it: Prometheus metrics for every workload
	// (the istio.stats filters).
	m := mesh.DefaultMeshConfig()
	m.DefaultProviders.Metrics = []string{"prometheus"}
	s := xds.NewFakeDiscoveryServer(t, xds.FakeOptions{
		MeshConfig:             m,
		Configs:                all,
		KubernetesObjectString: readFile(t, filepath.Join(root, "tests/istio/testdata/cluster.yaml")),
	})
	ads := s.ConnectADS().WithID(p.id).WithMetadata(p.metadata).WithTimeout(20 * time.Second)
	lds := ads.RequestResponseAck(t, &discovery.DiscoveryRequest{TypeUrl: v3.ListenerType})
	out := discovered{extensions: map[string]*core.TypedExtensionConfig{}}
	// Each name a filter asks ECDS for, with the types it accepts.
	names := map[string][]string{}
	for _, r := range lds.Resources {
		out.listenerBytes += len(r.Value)
		l := &listener.Listener{}
		if err := r.UnmarshalTo(l); err != nil {
			t.Fatal(err)
		}
		out.listeners = append(out.listeners, l)
		for n, types := range discoveryNames(t, l) {
			names[n] = types
		}
	}
	if len(names) == 0 {
		return out
	}
	wanted := []string{}
	for n := range names {
		wanted = append(wanted, n)
	}
	res := askECDS(t, s, p, wanted)
	for _, r := range res.Resources {
		out.extensionBytes += len(r.Value)
		ec := &core.TypedExtensionConfig{}
		if err := r.UnmarshalTo(ec); err != nil {
			t.Fatal(err)
		}
		out.extensions[ec.Name] = ec
	}
	for _, n := range wanted {
		ec := out.extensions[n]
		if ec == nil {
			t.Fatalf("the listeners reference extension config %q, which ECDS did not send", n)
		}
		if !slices.Contains(names[n], ec.GetTypedConfig().GetTypeUrl()) {
			t.Fatalf("extension config %q is a %s, which its filters do not accept (%v)", n, ec.GetTypedConfig().GetTypeUrl(), names[n])
		}
	}
	return out
}

// askECDS asks Istio's discovery server for extension configs as `p`.
func askECDS(t *testing.T, s *xds.FakeDiscoveryServer, p proxy, names []string) *discovery.DiscoveryResponse {
	t.Helper()
	sort.Strings(names)
	ads := s.ConnectADS().WithID(p.id).WithMetadata(p.metadata).WithTimeout(20 * time.Second)
	return ads.RequestResponseAck(t, &discovery.DiscoveryRequest{
		TypeUrl:       v3.ExtensionConfigurationType,
		ResourceNames: names,
	})
}

// model is the model.Proxy Istio makes of a proxy's node ID and metadata.
func (p proxy) model() *model.Proxy {
	md := p.metadata
	out := &model.Proxy{ID: p.id, Type: model.SidecarProxy, ConfigNamespace: md.Namespace, Labels: md.Labels, Metadata: &md}
	if strings.HasPrefix(p.id, "router~") {
		out.Type = model.Router
	}
	return out
}

// httpManager is a chain's HTTP connection manager, if it has one.
func httpManager(t *testing.T, f *listener.Filter) *hcm.HttpConnectionManager {
	t.Helper()
	if f.GetTypedConfig() == nil {
		return nil
	}
	m := &hcm.HttpConnectionManager{}
	if f.GetTypedConfig().MessageIs(m) {
		if err := f.GetTypedConfig().UnmarshalTo(m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	return nil
}

// discoveryNames are the ECDS names a listener's filters refer to, each
// with the types of configuration its filter accepts.
func discoveryNames(t *testing.T, l *listener.Listener) map[string][]string {
	out := map[string][]string{}
	for _, c := range chains(l) {
		for _, f := range c.Filters {
			if cd := f.GetConfigDiscovery(); cd != nil {
				out[f.Name] = cd.TypeUrls
			}
			if m := httpManager(t, f); m != nil {
				for _, h := range m.HttpFilters {
					if cd := h.GetConfigDiscovery(); cd != nil {
						out[h.Name] = cd.TypeUrls
					}
				}
			}
		}
	}
	return out
}

func chains(l *listener.Listener) []*listener.FilterChain {
	all := append([]*listener.FilterChain{}, l.FilterChains...)
	if l.DefaultFilterChain != nil {
		all = append(all, l.DefaultFilterChain)
	}
	return all
}

// chain is one filter chain as the tests compare it.
type chain struct {
	Listener  string   `json:"listener"`
	Chain     string   `json:"chain"`
	Port      uint32   `json:"port,omitempty"`
	Transport string   `json:"transport,omitempty"`
	Network   []string `json:"network"`
	HTTP      []string `json:"http,omitempty"`
}

func (c chain) String() string {
	return fmt.Sprintf("%s/%s (port %d, %s): network %v http %v", c.Listener, c.Chain, c.Port, c.Transport, c.Network, c.HTTP)
}

// summary lists every chain's filters by name.
func summary(t *testing.T, d discovered) []chain {
	var out []chain
	for _, l := range d.listeners {
		for _, c := range chains(l) {
			s := chain{Listener: l.Name, Chain: c.Name, Network: []string{}}
			if m := c.GetFilterChainMatch(); m != nil {
				if m.GetDestinationPort() != nil {
					s.Port = m.GetDestinationPort().GetValue()
				}
				s.Transport = m.TransportProtocol
			}
			for _, f := range c.Filters {
				s.Network = append(s.Network, f.Name)
				if m := httpManager(t, f); m != nil {
					s.HTTP = []string{}
					for _, h := range m.HttpFilters {
						s.HTTP = append(s.HTTP, h.Name)
					}
				}
			}
			out = append(out, s)
		}
	}
	return out
}

// holding are the chains with a filter whose name contains `name`.
func holding(chains []chain, name string) []chain {
	var out []chain
	for _, c := range chains {
		if indexOf(c.Network, name) >= 0 || indexOf(c.HTTP, name) >= 0 {
			out = append(out, c)
		}
	}
	return out
}

// indexOf is the position of the first filter whose name contains `part`.
func indexOf(filters []string, part string) int {
	for i, f := range filters {
		if strings.Contains(f, part) {
			return i
		}
	}
	return -1
}

// typedConfig unpacks an Any into m.
func typedConfig(t *testing.T, a *anypb.Any, m proto.Message) {
	t.Helper()
	if err := a.UnmarshalTo(m); err != nil {
		t.Fatalf("%s: %v", a.TypeUrl, err)
	}
}

// istioVersion is the istio.io/istio version go.mod pins.
func istioVersion(t *testing.T) string {
	t.Helper()
	for _, line := range strings.Split(readFile(t, filepath.Join(repoRoot(t), "tests/istio/go.mod")), "\n") {
		fields := strings.Fields(line)
		if len(fields) == 2 && fields[0] == "istio.io/istio" {
			return fields[1]
		}
	}
	t.Fatal("go.mod pins no istio.io/istio")
	return ""
}
