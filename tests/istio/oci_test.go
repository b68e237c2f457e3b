package istio

// OCI through Istio's own fetcher: the images `make oci` writes to
// dist/oci/<module>/ are pushed into an in-process registry
// (go-containerregistry's pkg/registry, as Istio's pkg/wasm tests use);
// the shipped WasmPlugin and TrafficExtension manifests, with only the
// registry host of their url replaced, go through Istio's pilot (the fake
// discovery server of pilot/test/xds, which translates WasmPlugins into
// TrafficExtensions and answers ECDS), and the extension configs a proxy
// receives go through the conversion the istio-agent runs on every ECDS
// response (pkg/wasm.MaybeConvertWasmExtensionConfig with a
// LocalFileCache, as pkg/istio-agent/xds_proxy.go does). What Envoy would
// then load is compared with dist/<module>.wasm.

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	httprbac "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	httpwasm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/wasm/v3"
	networkrbac "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/rbac/v3"
	networkwasm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/wasm/v3"
	wasmextensions "github.com/envoyproxy/go-control-plane/envoy/extensions/wasm/v3"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/anypb"
	"sigs.k8s.io/yaml"

	"istio.io/istio/pilot/test/xds"
	"istio.io/istio/pkg/monitoring/monitortest"
	"istio.io/istio/pkg/util/sets"
	"istio.io/istio/pkg/wasm"
)

// The tag and registry the shipped manifests pull the modules `make oci`
// packs (ourModules()) from.

const (
	ociTag            = "0.1.0"
	ociShippedPrefix  = "oci://ghcr.io/example/"
	ociAppNamespace   = "cf-workloads"
	ociIstioNamespace = "istio-system"
	// A digest no image has: 64 hex digits, as the CRDs require.
	ociWrongDigest = "0000000000000000000000000000000000000000000000000000000000000000"
)

// ociRegistry is an in-process OCI registry on plain HTTP.
type ociRegistry struct {
	host string
	mu   sync.Mutex
	// Requests per path, to tell a cache hit from a pull.
	requests map[string]int
}

func newOCIRegistry(t *testing.T) *ociRegistry {
	t.Helper()
	r := &ociRegistry{requests: map[string]int{}}
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.requests[req.URL.Path]++
		r.mu.Unlock()
		reg.ServeHTTP(w, req)
	}))
	t.Cleanup(s.Close)
	u, err := url.Parse(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	r.host = u.Host
	return r
}

// pulls is how many manifest requests the registry has answered for a
// repository (a pull starts with one; a cache hit makes none).
func (r *ociRegistry) pulls(repository string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for p, c := range r.requests {
		if strings.HasPrefix(p, "/v2/"+repository+"/manifests/") {
			n += c
		}
	}
	return n
}

// ociLayoutImage is the one image of dist/oci/<module>/, checked to be
// named by the tag the manifests pull.
func ociLayoutImage(t *testing.T, module string) (v1.Image, v1.Hash) {
	t.Helper()
	p, err := layout.FromPath(filepath.Join(repoRoot(t), "dist", "oci", module))
	if err != nil {
		t.Fatalf("dist/oci/%s: %v (run make oci)", module, err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 1 {
		t.Fatalf("dist/oci/%s/index.json has %d manifests, want 1", module, len(im.Manifests))
	}
	desc := im.Manifests[0]
	if got := desc.Annotations["org.opencontainers.image.ref.name"]; got != ociTag {
		t.Fatalf("dist/oci/%s names its image %q, want %q", module, got, ociTag)
	}
	img, err := idx.Image(desc.Digest)
	if err != nil {
		t.Fatal(err)
	}
	return img, desc.Digest
}

// push writes img to <host>/<repository>:<tag> and checks the registry
// reports the digest it was given: the manifest is pushed as it is.
func (r *ociRegistry) push(t *testing.T, repository, tag string, img v1.Image, digest v1.Hash) {
	t.Helper()
	ref, err := name.ParseReference(r.host + "/" + repository + ":" + tag)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	got, err := remote.Head(ref)
	if err != nil {
		t.Fatal(err)
	}
	if got.Digest != digest {
		t.Fatalf("the registry reports %s for %s, the layout %s", got.Digest, ref, digest)
	}
}

// pushDist pushes every dist/oci/<module> as <host>/example/<module>:0.1.0
// and returns the manifest digests.
func (r *ociRegistry) pushDist(t *testing.T) map[string]string {
	t.Helper()
	digests := map[string]string{}
	for _, m := range ourModules() {
		img, d := ociLayoutImage(t, m)
		r.push(t, "example/"+m, ociTag, img, d)
		digests[m] = d.Hex
	}
	return digests
}

// ociForm is one shipped WasmPlugin or TrafficExtension, or a variant.
type ociForm struct {
	file      string // under envoyfilters/
	kind      string
	name      string
	namespace string
	module    string
	doc       map[string]any
}

// wasmSpec is the object that holds url, sha256, failStrategy and type:
// the spec of a WasmPlugin, spec.wasm of a TrafficExtension.
func (f ociForm) wasmSpec(t *testing.T) map[string]any {
	t.Helper()
	spec, _ := f.doc["spec"].(map[string]any)
	if f.kind == "TrafficExtension" {
		spec, _ = spec["wasm"].(map[string]any)
	}
	if spec == nil {
		t.Fatalf("%s: no wasm spec", f.file)
	}
	return spec
}

func (f ociForm) field(t *testing.T, key string) string {
	s, _ := f.wasmSpec(t)[key].(string)
	return s
}

func (f ociForm) gateway() bool { return f.namespace == ociIstioNamespace }

// variant is a copy of f under another name, changed by edit.
func (f ociForm) variant(t *testing.T, suffix string, edit func(spec map[string]any)) ociForm {
	t.Helper()
	b, err := yaml.Marshal(f.doc)
	if err != nil {
		t.Fatal(err)
	}
	v := f
	v.doc = map[string]any{}
	if err := yaml.Unmarshal(b, &v.doc); err != nil {
		t.Fatal(err)
	}
	v.name = f.name + "-" + suffix
	v.file = f.file + " (" + suffix + ")"
	v.doc["metadata"].(map[string]any)["name"] = v.name
	edit(v.wasmSpec(t))
	return v
}

// ociShippedForms are the WasmPlugins of envoyfilters/wasmplugin/ and the
// TrafficExtensions of envoyfilters/trafficextension/, checked to pull
// oci://ghcr.io/example/<module>:0.1.0, with that host replaced by host.
func ociShippedForms(t *testing.T, host string) []ociForm {
	t.Helper()
	root := filepath.Join(repoRoot(t), "envoyfilters")
	var out []ociForm
	for _, dir := range []string{"wasmplugin", "trafficextension"} {
		files, err := filepath.Glob(filepath.Join(root, dir, "*.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		sort.Strings(files)
		for _, file := range files {
			rel := filepath.Join(dir, filepath.Base(file))
			for _, text := range yamlDocuments(readFile(t, file)) {
				doc := map[string]any{}
				if err := yaml.Unmarshal([]byte(text), &doc); err != nil {
					t.Fatalf("%s: %v", rel, err)
				}
				kind, _ := doc["kind"].(string)
				if kind != "WasmPlugin" && kind != "TrafficExtension" {
					continue
				}
				meta := doc["metadata"].(map[string]any)
				f := ociForm{file: rel, kind: kind, doc: doc}
				f.name, _ = meta["name"].(string)
				f.namespace, _ = meta["namespace"].(string)
				if f.namespace == "" {
					// As `kubectl apply -n cf-workloads` would.
					f.namespace = ociAppNamespace
					meta["namespace"] = f.namespace
				}
				spec := f.wasmSpec(t)
				u, _ := spec["url"].(string)
				rest, ok := strings.CutPrefix(u, ociShippedPrefix)
				module, tag, _ := strings.Cut(rest, ":")
				if !ok || tag != ociTag {
					t.Fatalf("%s pulls %q, not %s<module>:%s", rel, u, ociShippedPrefix, ociTag)
				}
				f.module = module
				spec["url"] = "oci://" + host + "/example/" + rest
				out = append(out, f)
			}
		}
	}
	if len(out) == 0 {
		t.Fatal("no WasmPlugin or TrafficExtension under envoyfilters/")
	}
	return out
}

// ociECDS gives the forms to Istio's discovery server and returns, per
// form, the extension config resource a selected proxy receives over ECDS
// (a TypedExtensionConfig in an Any, what the agent converts). The names
// asked for are those of the TrafficExtensions Istio selects for the proxy
// (PushContext.TrafficExtensions): a WasmPlugin's is that of the
// TrafficExtension Istio translates it into.
func ociECDS(t *testing.T, forms []ociForm) map[string]*anypb.Any {
	t.Helper()
	var docs []string
	for _, f := range forms {
		b, err := yaml.Marshal(f.doc)
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, string(b))
	}
	configs := parseConfigs(t, strings.Join(docs, "---\n"), ociAppNamespace)
	s := xds.NewFakeDiscoveryServer(t, xds.FakeOptions{Configs: configs})
	out := map[string]*anypb.Any{}
	for _, atGateway := range []bool{false, true} {
		p := sidecar()
		if atGateway {
			p = gateway()
		}
		proxy := s.SetupProxy(p.model())
		// Resource name of each form this proxy gets.
		names := map[string]string{}
		for _, ws := range s.PushContext().TrafficExtensions(proxy) {
			for _, w := range ws {
				for _, f := range forms {
					if f.gateway() != atGateway || f.namespace != w.Namespace {
						continue
					}
					own := f.kind == "TrafficExtension" && w.Name == f.name
					translated := f.kind == "WasmPlugin" && strings.HasPrefix(w.Name, f.name+"~")
					if own || translated {
						names[w.ResourceName] = f.file
					}
				}
			}
		}
		if len(names) == 0 {
			continue
		}
		wanted := []string{}
		for n := range names {
			wanted = append(wanted, n)
		}
		res := askECDS(t, s, p, wanted)
		for _, r := range res.Resources {
			ec := &core.TypedExtensionConfig{}
			if err := r.UnmarshalTo(ec); err != nil {
				t.Fatal(err)
			}
			file, ok := names[ec.Name]
			if !ok {
				t.Fatalf("ECDS sent %q, which was not asked for", ec.Name)
			}
			out[file] = r
		}
	}
	for _, f := range forms {
		if out[f.file] == nil {
			t.Fatalf("%s: Istio sends no extension config for it (selector or translation?)", f.file)
		}
	}
	return out
}

// ociConvert runs the agent's conversion on one pod's ECDS resources with
// that pod's cache (a new one for a new pod) and returns the resources
// Envoy would receive, by form.
func ociConvert(t *testing.T, cache wasm.Cache, in map[string]*anypb.Any, files []string) map[string]*anypb.Any {
	t.Helper()
	resources := make([]*anypb.Any, len(files))
	for i, f := range files {
		resources[i] = proto.Clone(in[f]).(*anypb.Any)
	}
	// The agent NACKs the whole ECDS response when this fails; with a
	// fallback filter in place of a module it does not.
	if err := wasm.MaybeConvertWasmExtensionConfig(resources, cache); err != nil {
		t.Fatalf("the agent would NACK: %v", err)
	}
	out := map[string]*anypb.Any{}
	for i, f := range files {
		out[f] = resources[i]
	}
	return out
}

// ociCache is a new pod's module cache, with the agent's options
// (pilot/cmd/pilot-agent/options/agent.go) and the test registries listed
// in InsecureRegistries, as WASM_INSECURE_REGISTRIES would list them (for
// the agent that only skips TLS verification, pkg/wasm.NewImageFetcher).
// The registries speak plain HTTP: go-containerregistry uses http for a
// loopback address (name.Registry.Scheme), and Istio's fetcher retries
// any registry on http when it answers https with http (PrepareFetch).
func ociCache(t *testing.T, registries ...*ociRegistry) *wasm.LocalFileCache {
	t.Helper()
	hosts := sets.New[string]()
	for _, r := range registries {
		hosts.Insert(r.host)
	}
	c := wasm.NewLocalFileCache(t.TempDir(), wasm.Options{InsecureRegistries: hosts})
	t.Cleanup(c.Cleanup)
	return c
}

// ociUnpack unpacks an Any into m.
func ociUnpack(t *testing.T, a *anypb.Any, m proto.Message) {
	t.Helper()
	if err := a.UnmarshalTo(m); err != nil {
		t.Fatalf("%s: %v", a.TypeUrl, err)
	}
}

// ociWasm is the Wasm filter config an extension config holds: HTTP or
// network, whichever it is; nil if it holds no Wasm.
func ociWasm(t *testing.T, a *anypb.Any) (*core.TypedExtensionConfig, *wasmextensions.PluginConfig) {
	t.Helper()
	ec := &core.TypedExtensionConfig{}
	if err := a.UnmarshalTo(ec); err != nil {
		t.Fatal(err)
	}
	h, n := &httpwasm.Wasm{}, &networkwasm.Wasm{}
	switch {
	case ec.TypedConfig.MessageIs(h):
		ociUnpack(t, ec.TypedConfig, h)
		return ec, h.Config
	case ec.TypedConfig.MessageIs(n):
		ociUnpack(t, ec.TypedConfig, n)
		return ec, n.Config
	}
	return ec, nil
}

// The fallbacks of pkg/wasm/convert.go (createHTTPDefaultFilter,
// createNetworkDefaultFilter), spelled out: an RBAC filter with no rules
// allows everything; one with empty rules (action ALLOW, no policy, so
// nothing is allowed) denies everything.
var (
	ociAllowHTTP = &httprbac.RBAC{RulesStatPrefix: "wasm-default-allow"}
	ociDenyHTTP  = &httprbac.RBAC{Rules: &rbacv3.RBAC{}, RulesStatPrefix: "wasm-default-deny"}
	ociAllowTCP  = &networkrbac.RBAC{StatPrefix: "wasm-default-allow"}
	ociDenyTCP   = &networkrbac.RBAC{Rules: &rbacv3.RBAC{}, StatPrefix: "wasm-default-deny"}
)

// ociFallback checks that got is the RBAC filter Istio puts in place of a
// module it could not fetch, named as the extension config was, and that
// it allows (FAIL_OPEN) or denies (anything else) everything.
func ociFallback(t *testing.T, f ociForm, pilot, got *anypb.Any) {
	t.Helper()
	want, _ := ociWasm(t, pilot)
	ec, w := ociWasm(t, got)
	if w != nil {
		t.Errorf("%s: Envoy would get the module %v, want an RBAC fallback", f.file, w.GetVmConfig().GetCode())
		return
	}
	if ec.Name != want.Name {
		t.Errorf("%s: the fallback is named %q, want %q", f.file, ec.Name, want.Name)
	}
	allow := f.field(t, "failStrategy") == "FAIL_OPEN"
	var wantRBAC, gotRBAC proto.Message
	if f.field(t, "type") == "NETWORK" {
		wantRBAC, gotRBAC = ociDenyTCP, &networkrbac.RBAC{}
		if allow {
			wantRBAC = ociAllowTCP
		}
	} else {
		wantRBAC, gotRBAC = ociDenyHTTP, &httprbac.RBAC{}
		if allow {
			wantRBAC = ociAllowHTTP
		}
	}
	if !ec.TypedConfig.MessageIs(gotRBAC) {
		t.Errorf("%s: Envoy would get %s, want %T", f.file, ec.TypedConfig.TypeUrl, wantRBAC)
		return
	}
	ociUnpack(t, ec.TypedConfig, gotRBAC)
	if !proto.Equal(gotRBAC, wantRBAC) {
		t.Errorf("%s (failStrategy %q): Envoy would get %v, want %v", f.file, f.field(t, "failStrategy"), gotRBAC, wantRBAC)
		return
	}
	t.Logf("%s (%s, failStrategy %q): %s %s {%v}", f.file, f.field(t, "type"), f.field(t, "failStrategy"), ec.Name, ec.TypedConfig.TypeUrl, gotRBAC)
}

// ociModule checks that got loads dist/<module>.wasm from a local file
// and is otherwise the config pilot sent, less the agent's own variables.
func ociModule(t *testing.T, f ociForm, pilot, got *anypb.Any) {
	t.Helper()
	_, sent := ociWasm(t, pilot)
	ec, w := ociWasm(t, got)
	if w == nil {
		t.Errorf("%s: Envoy would get %s in place of the module", f.file, ec.TypedConfig.TypeUrl)
		return
	}
	file := w.GetVmConfig().GetCode().GetLocal().GetFilename()
	if file == "" {
		t.Errorf("%s: the module is not a local file: %v", f.file, w.GetVmConfig().GetCode())
		return
	}
	loaded, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	want := readFile(t, filepath.Join(repoRoot(t), "dist", f.module+".wasm"))
	if !bytes.Equal(loaded, []byte(want)) {
		t.Errorf("%s: Envoy would load %d bytes from %s, not dist/%s.wasm (%d bytes)", f.file, len(loaded), file, f.module, len(want))
	} else {
		t.Logf("%s: %s loads dist/%s.wasm (%d bytes) from %s, failure_policy %s",
			f.file, ec.Name, f.module, len(loaded), filepath.Base(file), w.FailurePolicy)
	}
	for k := range w.GetVmConfig().GetEnvironmentVariables().GetKeyValues() {
		if strings.HasPrefix(k, "ISTIO_META_") {
			t.Errorf("%s: the agent's variable %s reaches Envoy", f.file, k)
		}
	}
	// Nothing else changes: name, root id, plugin configuration, failure policy.
	sentRest := proto.Clone(sent).(*wasmextensions.PluginConfig)
	gotRest := proto.Clone(w).(*wasmextensions.PluginConfig)
	sentRest.Vm, gotRest.Vm = nil, nil
	if !proto.Equal(sentRest, gotRest) {
		t.Errorf("%s: the conversion changed more than the code: %v", f.file, cmp.Diff(sentRest, gotRest, protocmp.Transform()))
	}
	if sent.GetVmConfig().GetCode().GetRemote().GetHttpUri().GetUri() != f.field(t, "url") ||
		sent.GetVmConfig().GetCode().GetRemote().GetSha256() != f.field(t, "sha256") {
		t.Errorf("%s: pilot sent %v, not the manifest's url and sha256", f.file, sent.GetVmConfig().GetCode())
	}
}

// ociPods groups the forms as pods get them: one pod per directory and
// proxy kind (a user applies wasmplugin/ or trafficextension/, not both).
func ociPods(forms []ociForm) map[string][]string {
	pods := map[string][]string{}
	for _, f := range forms {
		key := strings.Split(f.file, "/")[0]
		if f.gateway() {
			key += " gateway"
		}
		pods[key] = append(pods[key], f.file)
	}
	return pods
}

// TestOCIShippedForms: every shipped form, pulled by Istio's agent from a
// registry holding dist/oci/*, gives Envoy exactly dist/<module>.wasm.
func TestOCIShippedForms(t *testing.T) {
	metrics := monitortest.New(t)
	r := newOCIRegistry(t)
	digests := r.pushDist(t)
	forms := ociShippedForms(t, r.host)
	modules := sets.New[string]()
	var stale []string
	for _, f := range forms {
		modules.Insert(f.module)
		if got := f.field(t, "sha256"); got != digests[f.module] {
			stale = append(stale, fmt.Sprintf("%s pins %s, dist/oci/%s is %s", f.file, got, f.module, digests[f.module]))
		}
	}
	if len(stale) > 0 {
		t.Fatalf("manifests and dist/oci disagree (make manifests builds both):\n%s", strings.Join(stale, "\n"))
	}
	if !modules.Equals(sets.New(ourModules()...)) {
		t.Errorf("the forms pull %v, want every module %v", sets.SortedList(modules), ourModules())
	}
	ecds := ociECDS(t, forms)
	_, byFile := ociFiles(forms)
	pods := ociPods(forms)
	for _, pod := range slices.Sorted(maps.Keys(pods)) {
		got := ociConvert(t, ociCache(t, r), ecds, pods[pod])
		for _, file := range pods[pod] {
			ociModule(t, byFile[file], ecds[file], got[file])
		}
	}
	metrics.Assert("wasm_remote_fetch_count", map[string]string{"result": "success"}, monitortest.AtLeast(float64(len(ourModules()))))
	metrics.Assert("wasm_config_conversion_count", map[string]string{"result": "success"}, monitortest.AtLeast(float64(len(forms))))
}

// ociFiles are the forms' files.
func ociFiles(forms []ociForm) ([]string, map[string]ociForm) {
	files := []string{}
	byFile := map[string]ociForm{}
	for _, f := range forms {
		files = append(files, f.file)
		byFile[f.file] = f
	}
	return files, byFile
}

// ociStrategyVariants add, to the shipped forms, the failure strategies
// they do not ship: FAIL_CLOSE and FAIL_RELOAD for a NETWORK module, and
// no failStrategy for either type.
func ociStrategyVariants(t *testing.T, forms []ociForm) []ociForm {
	t.Helper()
	out := append([]ociForm{}, forms...)
	for _, f := range forms {
		if f.file != "wasmplugin/tap_tcp.yaml" && f.file != "wasmplugin/l7_policy.yaml" {
			continue
		}
		for _, strategy := range []string{"FAIL_OPEN", "FAIL_CLOSE", "FAIL_RELOAD", ""} {
			if strategy == f.field(t, "failStrategy") {
				continue
			}
			suffix := strings.ToLower(strings.ReplaceAll(strategy, "_", "-"))
			if strategy == "" {
				suffix = "no-strategy"
			}
			out = append(out, f.variant(t, suffix, func(spec map[string]any) {
				if strategy == "" {
					delete(spec, "failStrategy")
				} else {
					spec["failStrategy"] = strategy
				}
			}))
		}
	}
	return out
}

// ociCheckFallbacks converts the forms in one pod and checks that each
// got its fallback, and that every strategy and type was covered.
func ociCheckFallbacks(t *testing.T, r *ociRegistry, forms []ociForm) {
	t.Helper()
	ecds := ociECDS(t, forms)
	files, byFile := ociFiles(forms)
	got := ociConvert(t, ociCache(t, r), ecds, files)
	covered := sets.New[string]()
	for _, file := range files {
		f := byFile[file]
		ociFallback(t, f, ecds[file], got[file])
		covered.Insert(f.field(t, "type") + " " + f.field(t, "failStrategy"))
	}
	for _, typ := range []string{"HTTP", "NETWORK"} {
		for _, strategy := range []string{"FAIL_OPEN", "FAIL_CLOSE", "FAIL_RELOAD", ""} {
			if !covered.Contains(typ + " " + strategy) {
				t.Errorf("no form of type %s with failStrategy %q", typ, strategy)
			}
		}
	}
}

// TestOCIWrongDigest: with a sha256 that is not the image's manifest
// digest, the agent puts Istio's RBAC fallback in place of the module:
// allow-all for FAIL_OPEN, deny-all otherwise, FAIL_RELOAD included. The
// shipped forms pin the sha256 of the .wasm file itself (the mistake
// tools/oci/README.md warns of), the strategy variants a digest no image
// has.
func TestOCIWrongDigest(t *testing.T) {
	metrics := monitortest.New(t)
	r := newOCIRegistry(t)
	r.pushDist(t)
	forms := ociShippedForms(t, r.host)
	for _, f := range forms {
		sum := sha256.Sum256([]byte(readFile(t, filepath.Join(repoRoot(t), "dist", f.module+".wasm"))))
		f.wasmSpec(t)["sha256"] = hex.EncodeToString(sum[:])
	}
	shipped := len(forms)
	forms = ociStrategyVariants(t, forms)
	for _, f := range forms[shipped:] {
		f.wasmSpec(t)["sha256"] = ociWrongDigest
	}
	ociCheckFallbacks(t, r, forms)
	metrics.Assert("wasm_remote_fetch_count", map[string]string{"result": "checksum_mismatched"}, monitortest.AtLeast(float64(len(ourModules()))))
	metrics.Assert("wasm_config_conversion_count", map[string]string{"result": "fetch_failure"}, monitortest.AtLeast(float64(len(forms))))
}

// TestOCIMissingImage: a registry that does not hold the image (the
// manifest request fails) gives the same fallbacks.
func TestOCIMissingImage(t *testing.T) {
	metrics := monitortest.New(t)
	r := newOCIRegistry(t) // nothing pushed
	forms := ociStrategyVariants(t, ociShippedForms(t, r.host))
	ociCheckFallbacks(t, r, forms)
	metrics.Assert("wasm_remote_fetch_count", map[string]string{"result": "manifest_failure"}, monitortest.AtLeast(float64(len(ourModules()))))
	metrics.Assert("wasm_config_conversion_count", map[string]string{"result": "fetch_failure"}, monitortest.AtLeast(float64(len(forms))))
}

// TestOCIRepushedTag: what a pod's module cache does across a release,
// with wasmplugin/l7_policy.yaml (FAIL_CLOSE) and, standing in for a new
// build of it, the cf_headers image. A new tag and a new sha256 together
// move every pod, and the old tag still serves a rollback. A manifest
// applied before its image is pushed replaces even a running module with
// deny-all. A tag pushed again under an unchanged sha256 splits the
// fleet: pods that pulled before keep the old module (from their cache,
// without asking the registry, imagePullPolicy Always or not) while new
// pods fail the digest check and deny everything.
func TestOCIRepushedTag(t *testing.T) {
	metrics := monitortest.New(t)
	r := newOCIRegistry(t)
	oldImg, oldDigest := ociLayoutImage(t, "l7_policy")
	newImg, newDigest := ociLayoutImage(t, "cf_headers")
	r.push(t, "example/l7_policy", ociTag, oldImg, oldDigest)
	r.push(t, "example/l7_policy", "0.2.0", newImg, newDigest)

	var base ociForm
	for _, f := range ociShippedForms(t, r.host) {
		if f.file == "wasmplugin/l7_policy.yaml" {
			base = f
		}
	}
	if base.doc == nil || base.field(t, "failStrategy") != "FAIL_CLOSE" {
		t.Fatal("wasmplugin/l7_policy.yaml with failStrategy FAIL_CLOSE is gone")
	}
	old := base.variant(t, "old", func(spec map[string]any) { spec["sha256"] = oldDigest.Hex })
	oldAlways := base.variant(t, "old-always", func(spec map[string]any) {
		spec["sha256"] = oldDigest.Hex
		spec["imagePullPolicy"] = "Always"
	})
	next := base.variant(t, "new", func(spec map[string]any) {
		spec["url"] = strings.TrimSuffix(spec["url"].(string), ":"+ociTag) + ":0.2.0"
		spec["sha256"] = newDigest.Hex
	})
	next.module = "cf_headers"
	early := base.variant(t, "early", func(spec map[string]any) {
		spec["url"] = strings.TrimSuffix(spec["url"].(string), ":"+ociTag) + ":0.3.0"
		spec["sha256"] = newDigest.Hex
	})
	ecds := ociECDS(t, []ociForm{old, oldAlways, next, early})
	pulls := func() int { return r.pulls("example/l7_policy") }

	// A pod pulls the old release.
	podA := ociCache(t, r)
	got := ociConvert(t, podA, ecds, []string{old.file, oldAlways.file})
	ociModule(t, old, ecds[old.file], got[old.file])
	ociModule(t, oldAlways, ecds[oldAlways.file], got[oldAlways.file])

	// A manifest applied before its image is pushed (tag 0.3.0): the pod
	// running the old module gets deny-all in its place.
	ociFallback(t, early, ecds[early.file], ociConvert(t, podA, ecds, []string{early.file})[early.file])

	// The manifest moves to the new tag and its sha256: that pod and a
	// new one load the new module.
	ociModule(t, next, ecds[next.file], ociConvert(t, podA, ecds, []string{next.file})[next.file])
	ociModule(t, next, ecds[next.file], ociConvert(t, ociCache(t, r), ecds, []string{next.file})[next.file])
	// Rolled back, a new pod gets the old module: the old tag is intact.
	ociModule(t, old, ecds[old.file], ociConvert(t, ociCache(t, r), ecds, []string{old.file})[old.file])

	// The old tag pushed again with the new build, the manifest unchanged.
	r.push(t, "example/l7_policy", ociTag, newImg, newDigest)
	before := pulls()
	got = ociConvert(t, podA, ecds, []string{old.file, oldAlways.file})
	ociModule(t, old, ecds[old.file], got[old.file])
	ociModule(t, oldAlways, ecds[oldAlways.file], got[oldAlways.file])
	if pulls() != before {
		t.Errorf("the pod that had the module asked the registry %d times", pulls()-before)
	}
	got = ociConvert(t, ociCache(t, r), ecds, []string{old.file})
	ociFallback(t, old, ecds[old.file], got[old.file])
	if pulls() == before {
		t.Error("the new pod did not ask the registry")
	}
	metrics.Assert("wasm_remote_fetch_count", map[string]string{"result": "checksum_mismatched"}, monitortest.AtLeast(1))
}
