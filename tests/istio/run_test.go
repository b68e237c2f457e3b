package istio

// Istio's configuration run in Envoy: the sidecar's inbound listener and
// extension configs as Istio's discovery server generates them for every
// way we ship (runForms: the WasmPlugin and TrafficExtension forms of our
// modules together, their images pulled by Istio's agent code from an
// in-process registry; the EnvoyFilter forms together, and the suite's;
// what tap.sh applies, its module over ECDS), run in upstream Envoy 1.40
// with only the filters istio-proxy has and upstream Envoy does not
// removed. HTTP/1.1 and HTTP/2, over mTLS with certificates Istio's CA code
// issues and in plain text (PERMISSIVE), must get what our own harness
// (tests/*.rs) gets where our filters run: l7_policy's verdicts, the CF
// headers, the peer identity and the tap records; and Istio's RBAC's
// answers where it runs first, by each form's order. The checks report
// what they find (problems): TestRunChecksCatchAMissingFilter shows they
// bite, and TestRunTapNeverStopsTraffic runs tap.sh's extension config
// refused and never delivered, with and without its default config.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	accesslogfile "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/file/v3"
	httpwasm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/wasm/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	networkwasm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/wasm/v3"
	upstreamhttp "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"istio.io/istio/pilot/pkg/networking/util"
	"istio.io/istio/pkg/wasm"
)

// istioProxyOnly are the filters Istio generates that exist in istio-proxy
// (istio/proxy's own Envoy build) and not in upstream Envoy: Envoy 1.40
// refuses each ("Didn't find a registered implementation"), which
// TestRunEnvoyRefusesWhatIsStripped shows one by one. A filter is stripped
// only when both its name and its configuration's type are these.
var istioProxyOnly = []struct {
	name, level, typeURL string
}{
	// TCP metadata exchange (istio/proxy source/extensions/filters/network/metadata_exchange).
	{"istio.metadata_exchange", "network", "type.googleapis.com/envoy.tcp.metadataexchange.config.MetadataExchange"},
	// HTTP peer metadata (istio/proxy source/extensions/filters/http/peer_metadata).
	{"istio.metadata_exchange", "http", "type.googleapis.com/io.istio.http.peer_metadata.Config"},
	// Istio's telemetry (istio/proxy source/extensions/filters/http/istio_stats), TCP and HTTP.
	{"istio.stats", "network", "type.googleapis.com/stats.PluginConfig"},
	{"istio.stats", "http", "type.googleapis.com/stats.PluginConfig"},
	// The ALPN override of the outbound listeners (istio/proxy source/extensions/filters/http/alpn).
	{"istio.alpn", "http", "type.googleapis.com/istio.envoy.config.filter.http.alpn.v2alpha1.FilterConfig"},
}

// configType is the type of a filter's configuration, looking through a
// TypedStruct (udpa or xds), as Envoy does to find the filter's factory.
func configType(a *anypb.Any) string {
	if a == nil {
		return ""
	}
	m, err := a.UnmarshalNew()
	if err != nil {
		return a.TypeUrl
	}
	r := m.ProtoReflect()
	switch r.Descriptor().FullName() {
	case "udpa.type.v1.TypedStruct", "xds.type.v3.TypedStruct":
		return r.Get(r.Descriptor().Fields().ByName("type_url")).String()
	}
	return a.TypeUrl
}

func istioProxyOnlyFilter(name, level string, typed *anypb.Any) bool {
	t := configType(typed)
	for _, f := range istioProxyOnly {
		if f.name == name && f.level == level && f.typeURL == t {
			return true
		}
	}
	return false
}

// stripped is one filter taken out.
type stripped struct {
	listener, chain, level, name, typeURL string
}

func (s stripped) kind() string { return s.level + " " + s.name + " " + s.typeURL }

// stripIstioProxyOnly returns copies of the listeners without the
// istioProxyOnly filters, and what it took out.
func stripIstioProxyOnly(t *testing.T, full []*listener.Listener) ([]*listener.Listener, []stripped) {
	t.Helper()
	var out []*listener.Listener
	var gone []stripped
	for _, l := range full {
		l = proto.Clone(l).(*listener.Listener)
		for _, c := range chains(l) {
			var kept []*listener.Filter
			for _, f := range c.Filters {
				if istioProxyOnlyFilter(f.Name, "network", f.GetTypedConfig()) {
					gone = append(gone, stripped{l.Name, c.Name, "network", f.Name, configType(f.GetTypedConfig())})
					continue
				}
				if m := httpManager(t, f); m != nil {
					var http []*hcm.HttpFilter
					for _, h := range m.HttpFilters {
						if istioProxyOnlyFilter(h.Name, "http", h.GetTypedConfig()) {
							gone = append(gone, stripped{l.Name, c.Name, "http", h.Name, configType(h.GetTypedConfig())})
							continue
						}
						http = append(http, h)
					}
					if len(http) != len(m.HttpFilters) {
						m.HttpFilters = http
						a, err := anypb.New(m)
						if err != nil {
							t.Fatal(err)
						}
						f.ConfigType = &listener.Filter_TypedConfig{TypedConfig: a}
					}
				}
				kept = append(kept, f)
			}
			c.Filters = kept
		}
		out = append(out, l)
	}
	return out, gone
}

// runSidecar is the app's sidecar as the other tests have it, with the
// labels cf-for-k8s gives an app's pods (testdata/cluster.yaml's pod has
// only the app GUID): cf_headers' identity_from node_labels reads them from
// the node metadata, which the agent fills with the pod's labels. No
// selector in our forms or the base configuration looks at them.
func runSidecar() proxy {
	p := sidecar()
	p.metadata.Labels["cloudfoundry.org/process_type"] = "web"
	p.metadata.Labels["cloudfoundry.org/org_guid"] = "04a73274-9280-4b99-9abc-e44e3ff4a74e"
	p.metadata.Labels["cloudfoundry.org/space_guid"] = "8d18b884-729c-4239-9b88-39c4964a3f86"
	return p
}

// runForm is one form run in Envoy, with what must come of it there.
type runForm struct {
	form
	// Istio's HTTP RBAC ("rbac") and our HTTP filters (by module), in the
	// order the app's HTTP chains run them, as TestPlacement places them
	// (testdata/placement.golden.json): the run checks the generated
	// chains against it, and derives every expected answer from it (the
	// first filter that denies a request answers it; the ones before it
	// ran, the ones after it did not). Without a filter of ours the run
	// sends no HTTP.
	order []string
	// The tap is the first HTTP filter of each chain Istio generated,
	// before Istio's metadata exchange (tap.sh's INSERT_FIRST).
	tapFirst bool
	// tap_tcp sits before port 9000's tcp_proxy.
	tcpTap bool
	// Where the taps' records come back: "" the access logs' files under
	// /etc/istio/proxy/ (tap_http.jsonl, tap_tcp.jsonl), rewritten to the
	// run's directory; otherwise the tag tap.sh's logs route prefixes them
	// with on Envoy's stdout (/dev/stdout, kept: it is the container log
	// tap.sh reads with `kubectl logs`).
	tag string
	// The time between requests, so that the tap's rate limit records
	// every one.
	pace time.Duration
	// The tap's extension config does not load (TestRunTapNeverStopsTraffic):
	// the tap stays where Istio put it (checkHTTPOrder), but its default
	// config, an RBAC filter without rules, runs in its place; nothing is
	// recorded, and every answer is what the form's other filters give.
	untapped bool
}

// tcpTapped: a tap records the TCP connection to 9000.
func (rf runForm) tcpTapped() bool { return rf.tcpTap && !rf.untapped }

// runForms are the forms run in Envoy, each with the filters that carry
// the tap records to the test:
//   - the WasmPlugin and TrafficExtension forms of the modules together
//     (the suite and the gateway forms left out), with their -records
//     EnvoyFilters;
//   - the EnvoyFilter forms of the modules together, and the suite's with
//     tap_tcp's: right before the router, so after Istio's RBAC;
//   - what tap.sh applies for HTTP (its tap first in the chain) and for
//     --tcp 9000, with its default --records logs.
func runForms(t *testing.T) []runForm {
	t.Helper()
	var out []runForm
	for _, f := range togetherForms(t) {
		out = append(out, runForm{form: f, order: pluginOrder(), tcpTap: true})
	}
	shipped := map[string]form{}
	for _, f := range shippedForms(t) {
		shipped[f.name] = f
	}
	together := func(name string, files ...string) form {
		var texts []string
		for _, file := range files {
			f, ok := shipped[file]
			if !ok {
				t.Fatalf("no form %s under envoyfilters/", file)
			}
			texts = append(texts, f.yaml)
		}
		return form{name: name, yaml: strings.Join(texts, "\n---\n"), namespace: appNamespace}
	}
	out = append(out,
		// Each INSERT_BEFORE the router, in their priorities' order (the
		// list's), after Istio's RBAC.
		runForm{form: together("envoyfilters/*.yaml", envoyFilterFiles()...),
			order: append([]string{"rbac"}, filterNames(httpFilters())...), tcpTap: true},
		runForm{form: together("envoyfilters/suite.yaml+tap_tcp.yaml", "suite.yaml", "tap_tcp.yaml"),
			order: []string{"rbac", "suite"}, tcpTap: true},
	)
	for _, args := range [][]string{{}, {"--tcp", "9000"}} {
		f := form{name: strings.TrimSpace("tap.sh " + strings.Join(args, " ")), yaml: tapSh(t, args...), namespace: appNamespace}
		tag := tapShTag.FindString(f.yaml)
		if tag == "" {
			t.Fatalf("%s: no tap.sh/<run> tag in its access log", f.name)
		}
		rf := runForm{form: f, tag: tag}
		if len(args) == 0 {
			// INSERT_FIRST. tap.sh's default --rate 5: bursts of 5, then 5 a
			// second (records past it are counted rate_limited).
			rf.order, rf.tapFirst, rf.pace = []string{"tap_http", "rbac"}, true, 220*time.Millisecond
		} else {
			rf.order, rf.tcpTap = []string{"rbac"}, true
		}
		out = append(out, rf)
	}
	return out
}

// The tag of a tap.sh run's records in the sidecar's log.
var tapShTag = regexp.MustCompile(`tap\.sh/[0-9]+-[0-9]+-[0-9]+`)

// generated is what a sidecar receives for one form: every listener, and
// the extension configs after the agent's Wasm conversion (module code a
// local file, or inline bytes as an EnvoyFilter gave them), by name, with
// the module each loads.
type generated struct {
	listeners  []*listener.Listener
	extensions map[string]*anypb.Any
	modules    map[string]string
}

// generate runs Istio's discovery server on the form, its images (if it
// pulls any) pulled from an in-process registry holding dist/oci
// (oci_test.go), and converts the ECDS resources as the agent does before
// Envoy sees them.
func generate(t *testing.T, f form) generated {
	t.Helper()
	text := f.yaml
	var r *ociRegistry
	if strings.Contains(text, ociShippedPrefix) {
		r = newOCIRegistry(t)
		r.pushDist(t)
		text = strings.ReplaceAll(text, ociShippedPrefix, "oci://"+r.host+"/example/")
		if strings.Contains(text, ociShippedPrefix) || !strings.Contains(text, r.host) {
			t.Fatalf("%s pulls nothing from %s", f.name, ociShippedPrefix)
		}
	}
	d := discover(t, parseConfigs(t, text, f.namespace), runSidecar())
	g := generated{listeners: d.listeners, extensions: map[string]*anypb.Any{}, modules: map[string]string{}}
	var names []string
	var resources []*anypb.Any
	for n, ec := range d.extensions {
		a, err := anypb.New(ec)
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, n)
		resources = append(resources, a)
		_, w := ociWasm(t, a)
		if w == nil {
			t.Fatalf("%s: extension config %s holds no Wasm", f.name, n)
		}
		if uri := w.GetVmConfig().GetCode().GetRemote().GetHttpUri().GetUri(); uri != "" {
			rest, ok := "", false
			if r != nil {
				rest, ok = strings.CutPrefix(uri, "oci://"+r.host+"/example/")
			}
			if !ok {
				t.Fatalf("%s: extension config %s pulls %q", f.name, n, uri)
			}
			g.modules[n], _, _ = strings.Cut(rest, ":")
		} else {
			// An EnvoyFilter's EXTENSION_CONFIG (tap.sh): the module inline.
			g.modules[n] = w.RootId
		}
	}
	var registries []*ociRegistry
	if r != nil {
		registries = append(registries, r)
	}
	if err := wasm.MaybeConvertWasmExtensionConfig(resources, ociCache(t, registries...)); err != nil {
		t.Fatalf("the agent would NACK: %v", err)
	}
	for i, n := range names {
		_, w := ociWasm(t, resources[i])
		code := w.GetVmConfig().GetCode().GetLocal()
		got := string(code.GetInlineBytes())
		if file := code.GetFilename(); file != "" {
			got = readFile(t, file)
		}
		if got == "" {
			t.Fatalf("%s: the agent gives Envoy %s no module (image digest and manifest disagree? make build oci manifests)", f.name, n)
		}
		if got != readFile(t, filepath.Join(repoRoot(t), "dist", g.modules[n]+".wasm")) {
			t.Fatalf("%s: %s loads a module other than dist/%s.wasm", f.name, n, g.modules[n])
		}
		g.extensions[n] = resources[i]
	}
	return g
}

func byName(t *testing.T, ls []*listener.Listener, name string) *listener.Listener {
	t.Helper()
	for _, l := range ls {
		if l.Name == name {
			return l
		}
	}
	t.Fatalf("no listener %s", name)
	return nil
}

// TestRunStripsOnlyIstioProxyFilters: the reduced configuration is the
// full one less exactly the istio-proxy-only filters, every one of which
// Istio generated, and nothing else changed.
func TestRunStripsOnlyIstioProxyFilters(t *testing.T) {
	for _, f := range runForms(t) {
		t.Run(f.name, func(t *testing.T) {
			g := generate(t, f.form)
			reduced, gone := stripIstioProxyOnly(t, g.listeners)
			if len(reduced) != len(g.listeners) {
				t.Fatalf("%d listeners, %d reduced", len(g.listeners), len(reduced))
			}
			stripNames := map[string]bool{}
			for _, k := range istioProxyOnly {
				stripNames[k.name] = true
			}
			// By name alone, independently of the types: what is gone is
			// every filter of those names and nothing else.
			full, less := summary(t, discovered{listeners: g.listeners}), summary(t, discovered{listeners: reduced})
			if len(full) != len(less) {
				t.Fatalf("%d chains, %d reduced", len(full), len(less))
			}
			without := func(names []string) []string {
				out := []string{}
				for _, n := range names {
					if !stripNames[n] {
						out = append(out, n)
					}
				}
				return out
			}
			removed := 0
			for i := range full {
				want := full[i]
				want.Network, want.HTTP = without(full[i].Network), nil
				if full[i].HTTP != nil {
					want.HTTP = without(full[i].HTTP)
				}
				removed += len(full[i].Network) + len(full[i].HTTP) - len(want.Network) - len(want.HTTP)
				if want.String() != less[i].String() {
					t.Errorf("chain %d:\n full    %s\n reduced %s\n want    %s", i, full[i], less[i], want)
				}
			}
			if removed != len(gone) {
				t.Errorf("%d filters of those names in the configuration, %d stripped", removed, len(gone))
			}
			// Every kind stripped was generated, and only those kinds.
			kinds := map[string]int{}
			for _, s := range gone {
				kinds[s.kind()]++
			}
			for _, k := range istioProxyOnly {
				key := k.level + " " + k.name + " " + k.typeURL
				if kinds[key] == 0 {
					t.Errorf("Istio generated no %s", key)
				}
				delete(kinds, key)
			}
			if len(kinds) > 0 {
				t.Errorf("stripped kinds not in the list: %v", kinds)
			}
			// Nothing else changed: each reduced listener equals the full
			// one with those filters deleted from its chains.
			for i, l := range g.listeners {
				want := proto.Clone(l).(*listener.Listener)
				for _, c := range chains(want) {
					var kept []*listener.Filter
					for _, fl := range c.Filters {
						if stripNames[fl.Name] {
							continue
						}
						if m := httpManager(t, fl); m != nil {
							var http []*hcm.HttpFilter
							for _, h := range m.HttpFilters {
								if !stripNames[h.Name] {
									http = append(http, h)
								}
							}
							if len(http) != len(m.HttpFilters) {
								m.HttpFilters = http
								a, _ := anypb.New(m)
								fl.ConfigType = &listener.Filter_TypedConfig{TypedConfig: a}
							}
						}
						kept = append(kept, fl)
					}
					c.Filters = kept
				}
				if !equalListeners(t, want, reduced[i]) {
					t.Errorf("listener %s changed beyond the stripped filters", l.Name)
				}
			}
			// Our filters are all still there.
			ourCount := func(cs []chain) int {
				n := 0
				for _, c := range cs {
					n += len(ourFilters(c))
				}
				return n
			}
			if ourCount(full) != ourCount(less) || ourCount(less) == 0 {
				t.Errorf("our filters: %d in the full configuration, %d reduced", ourCount(full), ourCount(less))
			}
			counts := map[string]map[string]int{}
			for _, s := range gone {
				key := s.level + " " + s.name
				if counts[key] == nil {
					counts[key] = map[string]int{}
				}
				counts[key][s.listener]++
			}
			keys := make([]string, 0, len(counts))
			for k := range counts {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				t.Logf("stripped %s: %v", k, counts[k])
			}
		})
	}
}

// equalListeners compares two listeners field by field, the HTTP
// connection managers unpacked (packed Any bytes may differ in order).
func equalListeners(t *testing.T, a, b *listener.Listener) bool {
	t.Helper()
	unpack := func(l *listener.Listener) *listener.Listener {
		l = proto.Clone(l).(*listener.Listener)
		for _, c := range chains(l) {
			for _, f := range c.Filters {
				if m := httpManager(t, f); m != nil {
					b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
					if err != nil {
						t.Fatal(err)
					}
					f.GetTypedConfig().Value = b
				}
			}
		}
		return l
	}
	return proto.Equal(unpack(a), unpack(b))
}

// The app's ports as Istio's per-port chains match them (cluster.yaml's
// Service: 80 -> 8080, 8081, 9000).
var appPorts = []uint32{8080, 8081, 9000}

// runSetup is one form's reduced virtualInbound ready to run: the
// secrets and extension configs in files, the app behind its clusters.
type runSetup struct {
	dir        string
	ip         string
	inbound    *listener.Listener   // full, as Istio generated it
	reduced    *listener.Listener   // what runs
	all        []*listener.Listener // every listener of the sidecar, full
	app        string
	tcpEcho    string
	workload   workloadCert
	ca         *meshCA
	ecdsFiles  map[string]string
	extensions map[string]*anypb.Any
	modules    map[string]string // by extension config name
	// What Envoy must make of each extension config (by name; "" loaded):
	// "refused" (rejected: config_fail) or "undelivered" (never sent:
	// asked for, neither loaded nor failed). checkLoaded.
	ecdsWant map[string]string
	// The control plane of the extension configs left to ADS (ecdsFiles
	// "" for them): the bootstrap's ads_config.
	ads *silentControlPlane
	// An access log of each request's response code and flags
	// (run/flags.log) added to every HTTP connection manager.
	flagsLog bool
}

const workloadID = "spiffe://cluster.local/ns/cf-workloads/sa/default"

func setupRun(t *testing.T, f form) *runSetup {
	t.Helper()
	return setupGenerated(t, generate(t, f))
}

// setupGenerated: as setupRun, from what the discovery server generated
// (which it leaves as it is).
func setupGenerated(t *testing.T, g generated) *runSetup {
	t.Helper()
	reduced, _ := stripIstioProxyOnly(t, g.listeners)
	s := &runSetup{
		dir:        t.TempDir(),
		inbound:    byName(t, g.listeners, "virtualInbound"),
		reduced:    byName(t, reduced, "virtualInbound"),
		all:        g.listeners,
		app:        startApp(t),
		tcpEcho:    startTCPEcho(t),
		ca:         newMeshCA(t),
		ecdsFiles:  map[string]string{},
		extensions: g.extensions,
		modules:    g.modules,
		ecdsWant:   map[string]string{},
	}
	s.ip = loopbackIP(t, appPorts)
	// The pod's service account is `default` (cluster.yaml).
	s.workload = s.ca.issue(t, workloadID)
	for _, dir := range []string{"sds", "ecds"} {
		if err := os.MkdirAll(filepath.Join(s.dir, dir), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, secret := range sdsSecrets(s.workload, s.ca.root) {
		writeDiscoveryFile(t, filepath.Join(s.dir, "sds", secret.Name+".json"), secret)
	}
	names := make([]string, 0, len(g.extensions))
	for n := range g.extensions {
		names = append(names, n)
	}
	sort.Strings(names)
	for i, n := range names {
		file := filepath.Join(s.dir, "ecds", fmt.Sprintf("%d.json", i))
		writeDiscoveryAny(t, file, g.extensions[n])
		s.ecdsFiles[n] = file
	}
	return s
}

// bootstrap writes dir/<name>/envoy.pb: the node Istio generated the
// configuration for, admin on 127.0.0.1, `l` rewritten for loopback as
// the only listener, and the clusters Istio would send over CDS that the
// inbound chains name (the app's, and the passthrough and blackhole ones,
// empty: no test traffic goes there). Binary protobuf, as Envoy receives
// xDS: a configuration type Envoy does not know is refused by the filter
// that needs it, not by the parser (envoy.json beside it, where it can be
// written, is for reading). With s.ads, the extension configs left to ADS
// are asked of it (the bootstrap's ads_config, its cluster `xds-grpc` as
// Istio's bootstrap names it); with s.flagsLog, each HTTP connection
// manager also logs each request's response code and flags to
// <name>/flags.log.
func (s *runSetup) bootstrap(t *testing.T, name string, l *listener.Listener) (string, rewrites) {
	t.Helper()
	dir := filepath.Join(s.dir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	l = proto.Clone(l).(*listener.Listener)
	rw := loopbackRewrite(t, l, s.ip, appPorts, dir, filepath.Join(s.dir, "sds"), s.ecdsFiles, filepath.Join(repoRoot(t), "dist"))
	if (rw.ads > 0) != (s.ads != nil) {
		t.Fatalf("%d extension configs left to ADS, control plane %v", rw.ads, s.ads)
	}
	if s.flagsLog {
		flags := &accesslogfile.FileAccessLog{
			Path: filepath.Join(dir, "flags.log"),
			AccessLogFormat: &accesslogfile.FileAccessLog_LogFormat{LogFormat: &core.SubstitutionFormatString{
				Format: &core.SubstitutionFormatString_TextFormatSource{TextFormatSource: &core.DataSource{
					Specifier: &core.DataSource_InlineString{InlineString: "%REQ(X-CASE)% %RESPONSE_CODE% %RESPONSE_FLAGS%\n"},
				}},
			}},
		}
		a, err := anypb.New(flags)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		if err := visitAll(l.ProtoReflect(), func(m proto.Message) {
			if m, ok := m.(*hcm.HttpConnectionManager); ok {
				m.AccessLog = append(m.AccessLog, &accesslogv3.AccessLog{
					Name: "envoy.access_loggers.file", ConfigType: &accesslogv3.AccessLog_TypedConfig{TypedConfig: a},
				})
				n++
			}
		}); err != nil || n == 0 {
			t.Fatalf("flags log added to %d connection managers: %v", n, err)
		}
	}
	p := runSidecar()
	b, err := json.Marshal(p.metadata)
	if err != nil {
		t.Fatal(err)
	}
	metadata := &structpb.Struct{}
	if err := protojson.Unmarshal(b, metadata); err != nil {
		t.Fatal(err)
	}
	socket := func(addr string) *core.Address {
		host, port, _ := net.SplitHostPort(addr)
		n, _ := strconv.Atoi(port)
		return &core.Address{Address: &core.Address_SocketAddress{SocketAddress: &core.SocketAddress{
			Address: host, PortSpecifier: &core.SocketAddress_PortValue{PortValue: uint32(n)},
		}}}
	}
	static := func(name, addr string) *cluster.Cluster {
		c := &cluster.Cluster{
			Name:                 name,
			ClusterDiscoveryType: &cluster.Cluster_Type{Type: cluster.Cluster_STATIC},
			ConnectTimeout:       durationpb.New(5 * time.Second),
			LoadAssignment:       &endpoint.ClusterLoadAssignment{ClusterName: name},
		}
		if addr != "" {
			c.LoadAssignment.Endpoints = []*endpoint.LocalityLbEndpoints{{LbEndpoints: []*endpoint.LbEndpoint{{
				HostIdentifier: &endpoint.LbEndpoint_Endpoint{Endpoint: &endpoint.Endpoint{Address: socket(addr)}},
			}}}}
		}
		return c
	}
	boot := &bootstrapv3.Bootstrap{
		Node:  &core.Node{Id: p.id, Cluster: "my-app." + appNamespace, Metadata: metadata},
		Admin: &bootstrapv3.Admin{Address: socket("127.0.0.1:0")},
		StaticResources: &bootstrapv3.Bootstrap_StaticResources{
			Listeners: []*listener.Listener{l},
			Clusters: []*cluster.Cluster{
				static("inbound|8080||", s.app),
				static("inbound|8081||", s.app),
				static("inbound|9000||", s.tcpEcho),
				static("InboundPassthroughCluster", ""),
				static("BlackHoleCluster", ""),
			},
		},
	}
	if s.ads != nil {
		xds := static("xds-grpc", s.ads.addr)
		h2, err := anypb.New(&upstreamhttp.HttpProtocolOptions{
			UpstreamProtocolOptions: &upstreamhttp.HttpProtocolOptions_ExplicitHttpConfig_{ExplicitHttpConfig: &upstreamhttp.HttpProtocolOptions_ExplicitHttpConfig{
				ProtocolConfig: &upstreamhttp.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{Http2ProtocolOptions: &core.Http2ProtocolOptions{}},
			}},
		})
		if err != nil {
			t.Fatal(err)
		}
		xds.TypedExtensionProtocolOptions = map[string]*anypb.Any{"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": h2}
		boot.StaticResources.Clusters = append(boot.StaticResources.Clusters, xds)
		boot.DynamicResources = &bootstrapv3.Bootstrap_DynamicResources{AdsConfig: &core.ApiConfigSource{
			ApiType:             core.ApiConfigSource_GRPC,
			TransportApiVersion: core.ApiVersion_V3,
			GrpcServices: []*core.GrpcService{{TargetSpecifier: &core.GrpcService_EnvoyGrpc_{
				EnvoyGrpc: &core.GrpcService_EnvoyGrpc{ClusterName: "xds-grpc"},
			}}},
		}}
	}
	out, err := proto.Marshal(boot)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "envoy.pb")
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
	if text, err := (protojson.MarshalOptions{Multiline: true}).Marshal(boot); err == nil {
		_ = os.WriteFile(filepath.Join(dir, "envoy.json"), text, 0o644)
	}
	return path, rw
}

// clientALPN is what an Istio client sidecar offers for HTTP/1.1 and
// HTTP/2, read from the istio.alpn filter Istio generated for this
// sidecar's outbound HTTP listener (0.0.0.0_80).
func (s *runSetup) clientALPN(t *testing.T) (h1, h2 []string) {
	t.Helper()
	for _, l := range s.all {
		for _, c := range chains(l) {
			for _, f := range c.Filters {
				m := httpManager(t, f)
				if m == nil {
					continue
				}
				for _, h := range m.HttpFilters {
					if h.Name != "istio.alpn" {
						continue
					}
					b, err := protojson.Marshal(h.GetTypedConfig())
					if err != nil {
						t.Fatal(err)
					}
					var cfg struct {
						AlpnOverride []struct {
							UpstreamProtocol string   `json:"upstreamProtocol"`
							AlpnOverride     []string `json:"alpnOverride"`
						} `json:"alpnOverride"`
					}
					if err := json.Unmarshal(b, &cfg); err != nil {
						t.Fatal(err)
					}
					for _, o := range cfg.AlpnOverride {
						switch o.UpstreamProtocol {
						case "HTTP11":
							h1 = o.AlpnOverride
						case "HTTP2":
							h2 = o.AlpnOverride
						}
					}
					if h1 != nil && h2 != nil {
						return h1, h2
					}
				}
			}
		}
	}
	t.Fatal("no istio.alpn filter with HTTP11 and HTTP2 overrides in the sidecar's outbound listeners")
	return nil, nil
}

// TestRunEnvoyRefusesWhatIsStripped: Envoy 1.40 accepts the reduced
// virtualInbound and refuses the full one; put back alone, each stripped
// kind is refused with its type named. istio.alpn, which only outbound
// listeners have, is put into the inbound HTTP chains before the router.
func TestRunEnvoyRefusesWhatIsStripped(t *testing.T) {
	bin := envoyBinary(t)
	f := runForms(t)[0].form
	s := setupRun(t, f)
	config, _ := s.bootstrap(t, "reduced", s.reduced)
	if out := validateEnvoy(t, bin, config); out != "" {
		t.Fatalf("Envoy refuses the reduced configuration:\n%s", tail(out, 20))
	}
	config, _ = s.bootstrap(t, "full", s.inbound)
	if out := validateEnvoy(t, bin, config); out == "" || !strings.Contains(out, "Didn't find a registered implementation") {
		t.Fatalf("Envoy does not refuse the full configuration as expected:\n%s", tail(out, 20))
	} else {
		t.Logf("full: %s", refusal(out))
	}
	var alpn *hcm.HttpFilter
	for _, l := range s.all {
		for _, c := range chains(l) {
			for _, fl := range c.Filters {
				if m := httpManager(t, fl); m != nil {
					for _, h := range m.HttpFilters {
						if h.Name == "istio.alpn" {
							alpn = h
						}
					}
				}
			}
		}
	}
	if alpn == nil {
		t.Fatal("no istio.alpn in the outbound listeners")
	}
	for i, k := range istioProxyOnly {
		// The reduced listener with only this kind put back.
		l := proto.Clone(s.inbound).(*listener.Listener)
		for _, c := range chains(l) {
			var kept []*listener.Filter
			for _, fl := range c.Filters {
				if istioProxyOnlyFilter(fl.Name, "network", fl.GetTypedConfig()) && (k.level != "network" || k.name != fl.Name) {
					continue
				}
				if m := httpManager(t, fl); m != nil {
					var http []*hcm.HttpFilter
					for _, h := range m.HttpFilters {
						if istioProxyOnlyFilter(h.Name, "http", h.GetTypedConfig()) && (k.level != "http" || k.name != h.Name) {
							continue
						}
						if h.Name == "envoy.filters.http.router" && k.name == "istio.alpn" {
							http = append(http, alpn)
						}
						http = append(http, h)
					}
					m.HttpFilters = http
					a, _ := anypb.New(m)
					fl.ConfigType = &listener.Filter_TypedConfig{TypedConfig: a}
				}
				kept = append(kept, fl)
			}
			c.Filters = kept
		}
		config, _ := s.bootstrap(t, fmt.Sprintf("restored-%d", i), l)
		out := validateEnvoy(t, bin, config)
		want := strings.TrimPrefix(k.typeURL, "type.googleapis.com/")
		if out == "" || !strings.Contains(out, want) {
			t.Errorf("%s %s put back: Envoy does not refuse it naming %s:\n%s", k.level, k.name, want, tail(out, 10))
			continue
		}
		t.Logf("%s %s: %s", k.level, k.name, refusal(out))
	}
}

// refusal is the line of Envoy's output that says why.
func refusal(out string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "Didn't find") {
			if i := strings.Index(l, "Didn't find"); i >= 0 {
				return l[i:]
			}
		}
	}
	return tail(out, 3)
}

// A request in TestRunInEnvoy and what must come of it.
type runCase struct {
	name   string
	who    string // key of the callers, "" for plain text
	h2     bool
	method string
	// Namespace and workload the x-envoy-peer-metadata claims.
	claimNS, claimWorkload string
	// The caller's certificate's URI SAN ("" in plain text), and
	// peer_metadata's verdict and the workload it passes on when it runs.
	principal string
	verified  string
	workload  string
	// From the form's order (runForm.outcome): what answers, "app",
	// "l7_policy" (403 Access denied) or "rbac" (Istio's
	// AuthorizationPolicy, 403 RBAC: access denied); and which of the
	// order's filters ran on the request.
	by  string
	ran map[string]bool
	// The tap wrote a record of it (runForm.recorded).
	recorded bool
}

// outcome runs a request through the form's order as Envoy runs the
// chain. Istio's RBAC (the base configuration's AuthorizationPolicy)
// admits principals of cf-workloads and istio-system only; l7_policy (the
// shipped rules: GET and HEAD) denies any other method. The first that
// denies answers; the filters after it do not run.
func (rf runForm) outcome(c runCase) (string, map[string]bool) {
	ran := map[string]bool{}
	for _, f := range rf.order {
		parts := []string{f}
		if f == "suite" {
			parts = suiteParts()
		}
		for _, p := range parts {
			if p == "tap_http" && rf.untapped {
				// Its default config, which lets everything through, ran.
				continue
			}
			ran[p] = true
			switch p {
			case "rbac":
				if !strings.HasPrefix(c.principal, "spiffe://cluster.local/ns/cf-workloads/") &&
					!strings.HasPrefix(c.principal, "spiffe://cluster.local/ns/istio-system/") {
					return "rbac", ran
				}
			case "l7_policy":
				if c.method != "GET" && c.method != "HEAD" {
					return "l7_policy", ran
				}
			}
		}
	}
	return "app", ran
}

// recorded: the tap writes a record of every request of its chain,
// including one answered by a filter before it (Istio's RBAC, in the
// EnvoyFilter forms and the suite's): the record is made in the log phase,
// and Envoy runs a Wasm filter's log callback for every stream of the
// chain, creating its context then if the request never reached it
// (source/extensions/common/wasm/context.cc, Context::log). So the tap's
// place decides what it saw of the request on the way (bodies, and the
// headers of filters that answered before it), not which requests have a
// record; the run shows the order itself (checkHTTPOrder).
func (rf runForm) recorded() bool {
	return !rf.untapped && (slices.Contains(rf.order, "tap_http") || slices.Contains(rf.order, "suite"))
}

// runCases are the requests every form with an HTTP filter of ours gets;
// see tests/istio/README.md for what each shows.
func runCases(rf runForm) []runCase {
	cases := []runCase{
		{name: "mesh-h1", who: "caller", method: "GET", claimNS: appNamespace, claimWorkload: "caller",
			verified: "true", principal: callerID, workload: "caller"},
		{name: "mesh-h2", who: "caller", h2: true, method: "GET", claimNS: appNamespace, claimWorkload: "caller",
			verified: "true", principal: callerID, workload: "caller"},
		{name: "mesh-post-h1", who: "caller", method: "POST", claimNS: appNamespace, claimWorkload: "caller",
			verified: "true", principal: callerID, workload: "caller"},
		{name: "mesh-post-h2", who: "caller", h2: true, method: "POST", claimNS: appNamespace, claimWorkload: "caller",
			verified: "true", principal: callerID, workload: "caller"},
		// The gateway's certificate with a claim of the app's namespace:
		// Istio's RBAC lets istio-system in, peer_metadata passes on only
		// the principal.
		{name: "spoofed-claim-h1", who: "gateway", method: "GET", claimNS: appNamespace, claimWorkload: "caller",
			verified: "false", principal: gatewayID},
		{name: "other-namespace-h2", who: "other", h2: true, method: "GET", claimNS: "other", claimWorkload: "client",
			verified: "true", principal: otherID, workload: "client"},
		{name: "plaintext-h1", method: "GET", claimNS: appNamespace, claimWorkload: "caller",
			verified: "false", workload: "caller"},
		{name: "plaintext-h2", h2: true, method: "GET", claimNS: appNamespace, claimWorkload: "caller",
			verified: "false", workload: "caller"},
		{name: "plaintext-post-h1", method: "POST", verified: "false"},
	}
	for i := range cases {
		cases[i].by, cases[i].ran = rf.outcome(cases[i])
		cases[i].recorded = rf.recorded()
	}
	return cases
}

// The app's CF identity, from the pod labels (runSidecar).
var cfIdentity = map[string]string{
	"cf-app-id":           appGUID,
	"cf-app-process-type": "web",
	"cf-organization-id":  "04a73274-9280-4b99-9abc-e44e3ff4a74e",
	"cf-space-id":         "8d18b884-729c-4239-9b88-39c4964a3f86",
}

const (
	callerID  = "spiffe://cluster.local/ns/cf-workloads/sa/caller"
	gatewayID = "spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account"
	otherID   = "spiffe://cluster.local/ns/other/sa/default"
	foreignID = "spiffe://example.org/ns/cf-workloads/sa/caller"
)

// problems are what a run's checks found wrong, each with the check that
// found it ("rewrite", "order", "live", "loaded", "reply", "handshake", "tcp",
// "counters", "records"): none for the configuration as Istio generates
// it (TestRunInEnvoy), some for one broken on purpose
// (TestRunChecksCatchAMissingFilter, TestRunTapNeverStopsTraffic).
type problems struct {
	list []problem
}

type problem struct{ check, text string }

func (p *problems) add(check, format string, args ...any) {
	p.list = append(p.list, problem{check, fmt.Sprintf(format, args...)})
}

// by are the problems one check found.
func (p *problems) by(check string) []string {
	var out []string
	for _, q := range p.list {
		if q.check == check {
			out = append(out, q.text)
		}
	}
	return out
}

// report fails the test with each problem.
func (p *problems) report(t *testing.T) {
	t.Helper()
	for _, q := range p.list {
		t.Errorf("%s: %s", q.check, q.text)
	}
}

// runResult is what came of a run: the problems its checks found, and
// what was observed, for tests that expect a failure to say which.
type runResult struct {
	problems
	replies map[string]reply // by case; absent when the request failed
	sendErr map[string]error // by case
	tcp     error            // the TCP echo's error, if any
	envoy   *envoyRun
}

// TestRunInEnvoy runs each form's reduced virtualInbound in Envoy and
// sends it traffic; see tests/istio/README.md for what each case shows.
// Every check must find nothing.
func TestRunInEnvoy(t *testing.T) {
	bin := envoyBinary(t)
	for _, rf := range runForms(t) {
		t.Run(rf.name, func(t *testing.T) {
			r := runInEnvoy(t, bin, rf, setupRun(t, rf.form))
			r.report(t)
		})
	}
}

// runInEnvoy runs s's reduced virtualInbound, sends it the form's
// traffic, and checks what comes of it against what the form's order
// says must.
func runInEnvoy(t *testing.T, bin string, rf runForm, s *runSetup) runResult {
	t.Helper()
	start := time.Now()
	res := runResult{replies: map[string]reply{}, sendErr: map[string]error{}}
	p := &res.problems
	_, rw := s.bootstrap(t, "run", s.reduced)
	// What the rewrite touched: both secrets in every TLS chain, every
	// extension config, the tap records' files, the EnvoyFilter forms'
	// module files.
	if !rw.secretNames["default"] || !rw.secretNames["ROOTCA"] || len(rw.secretNames) != 2 {
		p.add("rewrite", "secrets the listener asks for: %v, want default and ROOTCA", rw.secretNames)
	}
	if len(rw.extensionNames) != len(s.extensions) {
		p.add("rewrite", "extension configs the listener names: %v, ECDS sent %d", keys(rw.extensionNames), len(s.extensions))
	}
	if files := rf.tag == ""; files != (rw.accessLogs > 0) {
		p.add("rewrite", "%d access logs under /etc/istio/proxy/, records to files: %v", rw.accessLogs, files)
	}
	if local := strings.Contains(rf.yaml, "/var/local/wasm/"); local != (rw.modules > 0) {
		p.add("rewrite", "%d modules from /var/local/wasm/, the form names it: %v", rw.modules, local)
	}
	t.Logf("rewritten: %d SDS configs (%v), %d ECDS configs from files and %d left to ADS (%d names), %d access logs, %d module files; listener on %s:%v",
		rw.sds, keys(rw.secretNames), rw.ecds, rw.ads, len(rw.extensionNames), rw.accessLogs, rw.modules, s.ip, appPorts)
	checkHTTPOrder(t, p, s, rf)
	e := startEnvoy(t, bin, filepath.Join(s.dir, "run"))
	res.envoy = e
	t.Logf("Envoy live after %.1f s (setup included)", time.Since(start).Seconds())
	if n := e.stats(t)["listener_manager.workers_started"]; n != 1 {
		p.add("live", "listener_manager.workers_started = %d", n)
	}
	checkLoaded(t, p, e, s, rw.extensionNames)

	h1ALPN, h2ALPN := s.clientALPN(t)
	callers := map[string]caller{}
	for key, id := range map[string]string{"caller": callerID, "gateway": gatewayID, "other": otherID, "foreign": foreignID} {
		c := s.ca.issue(t, id)
		callers[key] = caller{name: key, cert: &c, serverID: workloadID, root: s.ca.root}
	}
	plain := caller{name: "plain text", serverID: workloadID, root: s.ca.root}
	addr := s.ip + ":8080"

	var cases []runCase
	http := slices.ContainsFunc(rf.order, func(f string) bool { return f != "rbac" })
	if http {
		cases = runCases(rf)
	}
	metadata := map[string]string{}
	for i, c := range cases {
		if i > 0 {
			time.Sleep(rf.pace)
		}
		who := plain
		if c.who != "" {
			who = callers[c.who]
		}
		headers := map[string]string{
			"x-case":           c.name,
			"cf-app-id":        "spoofed",
			"x-peer-principal": "spoofed",
			"x-peer-verified":  "true",
		}
		if c.claimNS != "" {
			headers["x-envoy-peer-metadata"] = peerMetadata(t, c.claimNS, c.claimWorkload)
			headers["x-envoy-peer-metadata-id"] = "sidecar~10.40.0.7~" + c.claimWorkload + "-0." + c.claimNS + "~" + c.claimNS + ".svc.cluster.local"
			metadata[c.name] = headers["x-envoy-peer-metadata"]
		}
		alpn := h1ALPN
		if c.h2 {
			alpn = h2ALPN
		}
		r, err := who.send(t, addr, c.h2, c.who != "", alpn, c.method, "/hello", headers)
		if err != nil {
			res.sendErr[c.name] = err
			p.add("reply", "%s: %v", c.name, err)
			continue
		}
		res.replies[c.name] = r
		checkReply(t, p, c, headers, r)
	}

	if http {
		// Refused at the handshake: no certificate, and a certificate of
		// another trust domain (Istio's match_subject_alt_names prefix
		// spiffe://cluster.local/).
		if r, err := plain.send(t, addr, false, true, h1ALPN, "GET", "/hello", nil); err == nil {
			p.add("handshake", "mTLS without a client certificate answered %d", r.status)
		} else {
			t.Logf("no client certificate: refused (%v)", err)
		}
		if r, err := callers["foreign"].send(t, addr, false, true, h1ALPN, "GET", "/hello", nil); err == nil {
			p.add("handshake", "a certificate of trust domain example.org answered %d", r.status)
		} else {
			t.Logf("trust domain example.org: refused (%v)", err)
		}
	}

	// TCP: port 9000, mTLS with the ALPN Istio's clients offer for in-mesh
	// TCP (util.ALPNInMeshWithMxc), through Istio's network RBAC, the tap
	// if the form has one, and tcp_proxy to the app.
	got, err := callers["caller"].echoTCP(t, s.ip+":9000", util.ALPNInMeshWithMxc, "ping")
	if err == nil && got != "ping" {
		err = fmt.Errorf("echoed %q", got)
	}
	if err != nil {
		res.tcp = err
		p.add("tcp", "TCP over mTLS to 9000: %v", err)
	}

	checkCounters(t, p, e, s.ip, rf, cases)
	checkTapRecords(t, p, s, rf, cases, metadata)
	t.Logf("%s ran in %.1f s; %d problems", rf.name, time.Since(start).Seconds(), len(p.list))
	return res
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// checkHTTPOrder: every HTTP chain of the app's ports (8080 and 8081, TLS
// and plain text), as Istio generated it, runs Istio's RBAC and our
// filters in the form's order, each of ours known by the module it loads
// (the extension config's, or the EnvoyFilter's file).
func checkHTTPOrder(t *testing.T, p *problems, s *runSetup, rf runForm) {
	t.Helper()
	n := 0
	for _, c := range chains(s.inbound) {
		port := c.GetFilterChainMatch().GetDestinationPort().GetValue()
		if port != 8080 && port != 8081 {
			continue
		}
		for _, f := range c.Filters {
			m := httpManager(t, f)
			if m == nil {
				continue
			}
			got := []string{}
			for i, h := range m.HttpFilters {
				w := &httpwasm.Wasm{}
				role := ""
				switch {
				case h.Name == "envoy.filters.http.rbac":
					role = "rbac"
				case h.GetConfigDiscovery() != nil:
					role = s.modules[h.Name]
				case h.GetTypedConfig().MessageIs(w):
					typedConfig(t, h.GetTypedConfig(), w)
					file := w.GetConfig().GetVmConfig().GetCode().GetLocal().GetFilename()
					role = strings.TrimSuffix(filepath.Base(file), ".wasm")
				}
				if i == 0 && rf.tapFirst && role != "tap_http" {
					p.add("order", "chain %s (port %d): %s first, not the tap", c.Name, port, h.Name)
				}
				if role != "" {
					got = append(got, role)
				}
			}
			if !slices.Equal(got, rf.order) {
				p.add("order", "chain %s (port %d): RBAC and ours run %v, want %v", c.Name, port, got, rf.order)
			}
			n++
		}
	}
	if n < 4 {
		p.add("order", "%d HTTP chains on ports 8080 and 8081, want their TLS and plain-text ones", n)
	}
	first := ""
	if rf.tapFirst {
		first = " (the tap first of all)"
	}
	t.Logf("the app's %d HTTP chains run %v%s", n, rf.order, first)
}

// checkLoaded: every extension config arrived (ECDS from its file) and
// each module's VM started: its config_reload counted, no config_fail.
// One s.ecdsWant says must be refused must have been (config_fail and
// update_rejected counted); one that must be undelivered was asked for
// and neither loaded nor failed. Envoy 1.40 counts config_reload also for
// a Wasm config it then rejects (it posts the config to the workers
// before the plugin fails to load), so config_reload alone does not say
// a config runs.
func checkLoaded(t *testing.T, p *problems, e *envoyRun, s *runSetup, named map[string]bool) {
	t.Helper()
	// What is wrong with each extension config, from Envoy's counters and
	// the control plane's requests; and whether one the listener names is
	// still pending (not yet tried, loaded or failed; or not yet asked for).
	check := func(stats map[string]int) (found, logs []string, pending bool) {
		stat := func(name, counter string) int { return ecdsStat(stats, name, counter) }
		for _, name := range slices.Sorted(maps.Keys(s.extensions)) {
			reload, fail, rejected, attempt := stat(name, "config_reload"), stat(name, "config_fail"), stat(name, "update_rejected"), stat(name, "update_attempt")
			want := s.ecdsWant[name]
			if named[name] && (attempt == 0 || want != "undelivered" && reload == 0 && fail == 0 ||
				want == "undelivered" && (s.ads == nil || !slices.Contains(s.ads.asked(extensionConfigType), name))) {
				pending = true
			}
			switch want {
			case "":
				want = "loaded"
				if reload == 0 || fail != 0 {
					found = append(found, fmt.Sprintf("extension config %s: config_reload %d, config_fail %d; want it loaded", name, reload, fail))
				}
			case "refused":
				if fail == 0 || rejected == 0 {
					found = append(found, fmt.Sprintf("extension config %s: config_fail %d, update_rejected %d; want it refused", name, fail, rejected))
				}
			case "undelivered":
				if attempt == 0 || reload != 0 || fail != 0 {
					found = append(found, fmt.Sprintf("extension config %s: update_attempt %d, config_reload %d, config_fail %d; want it asked for and never delivered", name, attempt, reload, fail))
				}
				if s.ads == nil || !slices.Contains(s.ads.asked(extensionConfigType), name) {
					found = append(found, fmt.Sprintf("extension config %s: the control plane was not asked for it", name))
				}
			default:
				t.Fatalf("ecdsWant %q", want)
			}
			logs = append(logs, fmt.Sprintf("extension config %s (want %s): update_attempt %d, config_reload %d, config_fail %d, update_rejected %d",
				name, want, attempt, reload, fail, rejected))
		}
		return found, logs, pending
	}
	// Before any traffic: a default config applied without warming lets
	// Envoy go live before its extension config has been dealt with (with
	// file-based ECDS it is at start, but the run does not count on it).
	found, logs, pending := check(e.stats(t))
	for deadline := time.Now().Add(5 * time.Second); pending && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
		found, logs, pending = check(e.stats(t))
	}
	for _, l := range logs {
		t.Log(l)
	}
	for _, f := range found {
		p.add("loaded", "%s", f)
	}
}

// ecdsStat is one of Envoy's counters of the extension config `name`
// (an HTTP or a network filter's).
func ecdsStat(stats map[string]int, name, counter string) int {
	return stats["extension_config_discovery.http_filter."+name+"."+counter] +
		stats["extension_config_discovery.network_filter."+name+"."+counter]
}

// The type of ECDS resources.
const extensionConfigType = "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig"

// checkReply: the answer, and what the app got: the CF identity where
// cf_headers ran, peer_metadata's verdict where it ran, and otherwise the
// client's own headers as sent.
func checkReply(t *testing.T, p *problems, c runCase, sent map[string]string, r reply) {
	t.Helper()
	wantProto := "HTTP/1.1"
	if c.h2 {
		wantProto = "HTTP/2.0"
	}
	if r.proto != wantProto {
		p.add("reply", "%s: answered over %s, want %s", c.name, r.proto, wantProto)
	}
	if c.who != "" {
		want := map[bool]string{false: "http/1.1", true: "h2"}[c.h2]
		if r.alpn != want {
			p.add("reply", "%s: ALPN %q, want %q", c.name, r.alpn, want)
		}
	}
	summary := fmt.Sprintf("%s %s over %s (ALPN %q): %d", c.name, c.method, r.proto, r.alpn, r.status)
	if r.app != nil {
		h := func(n string) string { return strings.Join(r.app.header(n), ",") }
		summary += fmt.Sprintf(" from the app; cf-app-id=%s x-peer-verified=%s x-peer-principal=%q x-peer-workload=%q",
			h("cf-app-id"), h("x-peer-verified"), h("x-peer-principal"), h("x-peer-workload"))
	} else {
		summary += fmt.Sprintf(" %q", r.body)
	}
	t.Log(summary)
	switch c.by {
	case "l7_policy":
		if r.status != 403 || r.body != "Access denied\r\n" || r.app != nil {
			p.add("reply", "%s: %d %q, want l7_policy's 403 Access denied", c.name, r.status, r.body)
		}
		return
	case "rbac":
		if r.status != 403 || r.body != "RBAC: access denied" || r.app != nil {
			p.add("reply", "%s: %d %q, want Istio's RBAC 403", c.name, r.status, r.body)
		}
		return
	}
	if r.status != 200 || r.app == nil {
		p.add("reply", "%s: %d %q, want the app's 200", c.name, r.status, r.body)
		return
	}
	app := r.app
	one := func(name, want string) {
		got := app.header(name)
		if want == "" {
			if len(got) != 0 {
				p.add("reply", "%s: the app got %s: %q, want none", c.name, name, got)
			}
			return
		}
		if len(got) != 1 || got[0] != want {
			p.add("reply", "%s: the app got %s: %q, want %q", c.name, name, got, want)
		}
	}
	for name, want := range cfIdentity {
		if !c.ran["cf_headers"] {
			want = sent[name]
		}
		one(name, want)
	}
	if c.ran["peer_metadata"] {
		one("x-peer-verified", c.verified)
		one("x-peer-principal", c.principal)
		one("x-peer-workload", c.workload)
		ns := ""
		if c.workload != "" {
			ns = c.claimNS
		}
		one("x-peer-namespace", ns)
		one("x-envoy-peer-metadata", "")
		one("x-envoy-peer-metadata-id", "")
	} else {
		for _, name := range []string{"x-peer-verified", "x-peer-principal", "x-peer-workload", "x-peer-namespace", "x-envoy-peer-metadata", "x-envoy-peer-metadata-id"} {
			one(name, sent[name])
		}
	}
	// Envoy's own reading of the certificate (Istio's HCM sets
	// forward_client_cert_details APPEND_FORWARD with the URI).
	if xfcc := strings.Join(app.header("x-forwarded-client-cert"), ","); c.principal != "" && !strings.Contains(xfcc, "URI="+c.principal) {
		p.add("reply", "%s: x-forwarded-client-cert %q does not name %s", c.name, xfcc, c.principal)
	}
	if app.Method != c.method || app.Path != "/hello" {
		p.add("reply", "%s: the app got %s %s", c.name, app.Method, app.Path)
	}
}

// checkCounters: each of our filters counted what it did on the requests
// it ran on, and Istio's RBAC and Envoy's TLS on the same traffic.
func checkCounters(t *testing.T, p *problems, e *envoyRun, ip string, rf runForm, cases []runCase) {
	t.Helper()
	hcmStats := "http.inbound_0.0.0.0_8080;."
	tlsStats := "listener." + ip + "_8080.ssl."
	want := map[string]int{}
	// Zero unless counted below (a module the form lacks has none).
	for _, k := range []string{
		"wasmcustom.peer_metadata.verified", "wasmcustom.peer_metadata.unverified", "wasmcustom.peer_metadata.spoofed",
		"wasmcustom.l7_policy.allowed", "wasmcustom.l7_policy.denied",
		"wasmcustom.cf_headers.stamped", "wasmcustom.cf_headers.spoofed_removed",
		"wasmcustom.tap_http.tapped", "wasmcustom.tap_tcp.tapped",
		hcmStats + "downstream_rq_total", hcmStats + "rbac.allowed", hcmStats + "rbac.denied",
		tlsStats + "fail_verify_no_cert", tlsStats + "fail_verify_san",
	} {
		want[k] = 0
	}
	for _, c := range cases {
		// peer_metadata counts a claim verified or not; no claim, neither.
		if c.ran["peer_metadata"] {
			switch {
			case c.claimNS == "":
			case c.verified == "true":
				want["wasmcustom.peer_metadata.verified"]++
			default:
				want["wasmcustom.peer_metadata.unverified"]++
			}
			if c.who == "gateway" {
				want["wasmcustom.peer_metadata.spoofed"]++
			}
		}
		if c.ran["l7_policy"] {
			if c.by == "l7_policy" {
				want["wasmcustom.l7_policy.denied"]++
			} else {
				want["wasmcustom.l7_policy.allowed"]++
			}
		}
		if c.ran["cf_headers"] {
			want["wasmcustom.cf_headers.stamped"]++
			want["wasmcustom.cf_headers.spoofed_removed"]++
		}
		if c.recorded {
			want["wasmcustom.tap_http.tapped"]++
		}
		// Every request on the 8080 chains (the HCM Istio named for that
		// port), the AuthorizationPolicy's verdicts where it ran.
		want[hcmStats+"downstream_rq_total"]++
		if c.ran["rbac"] {
			if c.by == "rbac" {
				want[hcmStats+"rbac.denied"]++
			} else {
				want[hcmStats+"rbac.allowed"]++
			}
		}
	}
	if len(cases) > 0 {
		// The two refused handshakes.
		want[tlsStats+"fail_verify_no_cert"] = 1
		want[tlsStats+"fail_verify_san"] = 1
	}
	// The TCP connection, allowed by the network RBAC.
	want["tcp.rbac.allowed"] = 1
	if rf.tcpTapped() {
		want["wasmcustom.tap_tcp.tapped"] = 1
	}
	// tap_tcp writes its record when Envoy has closed the connection,
	// which may be just after the client's close: wait for the counts, up
	// to 5 s, or until they have not moved for 1 s (a broken run's).
	stats := e.stats(t)
	for deadline, moved := time.Now().Add(5*time.Second), time.Now(); time.Now().Before(deadline) && time.Since(moved) < time.Second; {
		same := true
		for k, v := range want {
			same = same && stats[k] == v
		}
		if same {
			break
		}
		time.Sleep(50 * time.Millisecond)
		next := e.stats(t)
		for k := range want {
			if next[k] != stats[k] {
				moved = time.Now()
			}
		}
		stats = next
	}
	names := make([]string, 0, len(want))
	for k := range want {
		names = append(names, k)
	}
	sort.Strings(names)
	var line []string
	for _, k := range names {
		if want[k] != 0 || stats[k] != 0 {
			line = append(line, fmt.Sprintf("%s=%d", strings.TrimPrefix(k, "wasmcustom."), stats[k]))
		}
		if stats[k] != want[k] {
			p.add("counters", "%s = %d, want %d", k, stats[k], want[k])
		}
	}
	t.Logf("counters: %s", strings.Join(line, " "))
	for _, k := range []string{"wasmcustom.tap_http.rate_limited", "wasmcustom.tap_http.sink_errors", "wasmcustom.tap_tcp.rate_limited", "wasmcustom.tap_tcp.sink_errors"} {
		if stats[k] != 0 {
			p.add("counters", "%s = %d", k, stats[k])
		}
	}
}

// checkTapRecords: a record per request the tap ran on, found by its
// x-case header, with the status, the headers as they left the proxy (the
// CF identity stamped where cf_headers ran; Istio's metadata headers
// removed by peer_metadata or redacted by the tap) and the caller as Envoy
// verified it and, where peer_metadata ran, as it decoded it; and the tap's
// record of the TCP connection.
func checkTapRecords(t *testing.T, p *problems, s *runSetup, rf runForm, cases []runCase, metadata map[string]string) {
	t.Helper()
	dir := filepath.Join(s.dir, "run")
	wantHTTP := 0
	for _, c := range cases {
		if c.recorded {
			wantHTTP++
		}
	}
	wantTCP := 0
	if rf.tcpTapped() {
		wantTCP = 1
	}
	if wantHTTP+wantTCP == 0 {
		// Nothing to wait for: give a record made anyway time to be
		// flushed (--file-flush-interval-msec 50) before looking.
		time.Sleep(250 * time.Millisecond)
	}
	var records, tcp []map[string]any
	if rf.tag == "" {
		if wantHTTP > 0 {
			records = readLines(t, filepath.Join(dir, "tap_http.jsonl"), wantHTTP)
		}
		if wantTCP > 0 {
			tcp = readLines(t, filepath.Join(dir, "tap_tcp.jsonl"), wantTCP)
		}
	} else {
		// As tap.sh reads them from `kubectl logs`: the lines that start
		// with its tag.
		for _, r := range readTagged(t, filepath.Join(dir, "stdout.log"), rf.tag, wantHTTP+wantTCP) {
			if _, ok := r["socket_buffered_trace"]; ok {
				tcp = append(tcp, r)
			} else {
				records = append(records, r)
			}
		}
	}
	if len(records) != wantHTTP {
		p.add("records", "%d tap_http records, want %d", len(records), wantHTTP)
	}
	byCase := map[string]map[string]any{}
	for _, r := range records {
		trace, _ := r["http_buffered_trace"].(map[string]any)
		req, _ := trace["request"].(map[string]any)
		for _, h := range headerList(req["headers"]) {
			if h[0] == "x-case" {
				byCase[h[1]] = r
			}
		}
	}
	statuses := map[string]int{}
	for _, c := range cases {
		r := byCase[c.name]
		if !c.recorded {
			if r != nil {
				p.add("records", "%s: a tap record, but no tap", c.name)
			}
			continue
		}
		if r == nil {
			p.add("records", "%s: no tap record", c.name)
			continue
		}
		line, _ := json.Marshal(r)
		if m := metadata[c.name]; m != "" && bytes.Contains(line, []byte(m)) {
			p.add("records", "%s: the record holds Istio's raw peer metadata", c.name)
		}
		trace := r["http_buffered_trace"].(map[string]any)
		req := trace["request"].(map[string]any)
		resp, _ := trace["response"].(map[string]any)
		status := ""
		for _, h := range headerList(resp["headers"]) {
			if h[0] == ":status" {
				status = h[1]
			}
		}
		wantStatus := map[string]string{"app": "200", "l7_policy": "403", "rbac": "403"}[c.by]
		if status != wantStatus {
			p.add("records", "%s: record status %q, want %s", c.name, status, wantStatus)
		}
		statuses[c.by+" "+status]++
		appID := []string{}
		for _, h := range headerList(req["headers"]) {
			if h[0] == "cf-app-id" {
				appID = append(appID, h[1])
			}
		}
		// Only requests that reach cf_headers carry the stamped identity.
		wantID := "spoofed"
		if c.ran["cf_headers"] {
			wantID = appGUID
		}
		if len(appID) != 1 || appID[0] != wantID {
			p.add("records", "%s: record cf-app-id %q, want %q", c.name, appID, wantID)
		}
		peer, _ := r["peer"].(map[string]any)
		if got, _ := peer["principal"].(string); got != c.principal {
			p.add("records", "%s: record peer.principal %q, want %q", c.name, got, c.principal)
		}
		md, _ := peer["metadata"].(map[string]any)
		if !c.ran["peer_metadata"] {
			if md != nil {
				p.add("records", "%s: record peer.metadata %v, but peer_metadata did not run", c.name, md)
			}
			continue
		}
		if got := fmt.Sprint(md["verified"]); got != c.verified {
			p.add("records", "%s: record peer.metadata.verified %s, want %s", c.name, got, c.verified)
		}
		if got, _ := md["workload"].(string); got != c.workload {
			p.add("records", "%s: record peer.metadata.workload %q, want %q", c.name, got, c.workload)
		}
		if c.workload != "" {
			if got, _ := md["namespace"].(string); got != c.claimNS {
				p.add("records", "%s: record peer.metadata.namespace %q, want %q", c.name, got, c.claimNS)
			}
		}
	}
	if len(tcp) != wantTCP {
		p.add("records", "%d tap_tcp records, want %d", len(tcp), wantTCP)
	}
	events := 0
	for _, r := range tcp {
		trace, _ := r["socket_buffered_trace"].(map[string]any)
		ev, _ := trace["events"].([]any)
		if len(ev) == 0 {
			p.add("records", "tap_tcp record without events: %v", r)
		}
		events += len(ev)
	}
	t.Logf("tap records: %d HTTP (answered by, status: %v), %d TCP (%d events)", len(records), statuses, len(tcp), events)
}

// headerList reads a record's [{"key", "value"}, ...] as pairs.
func headerList(v any) [][2]string {
	var out [][2]string
	list, _ := v.([]any)
	for _, h := range list {
		m, _ := h.(map[string]any)
		k, _ := m["key"].(string)
		val, _ := m["value"].(string)
		out = append(out, [2]string{k, val})
	}
	return out
}

// TestRunChecksCatchAMissingFilter: the run's checks bite. The
// WasmPlugin forms' configuration as generated, with the l7-policy filter
// deleted from every HTTP chain of every listener (its extension config
// left as ECDS sent it), run as TestRunInEnvoy runs the real one (where
// every check must find nothing): the rewrite, the order, the extension
// configs, the answers, the counters and the tap records must each report
// what is missing.
func TestRunChecksCatchAMissingFilter(t *testing.T) {
	bin := envoyBinary(t)
	rf := runForms(t)[0]
	if !strings.HasPrefix(rf.name, "wasmplugin/") {
		t.Fatalf("runForms starts with %s, not the WasmPlugin forms", rf.name)
	}
	g := generate(t, rf.form)
	var n int
	g.listeners, n = deleteHTTPFilter(t, g.listeners, g.modules, "l7_policy")
	if n == 0 {
		t.Fatal("no l7_policy filter in the generated listeners")
	}
	t.Logf("l7_policy deleted from %d HTTP chains", n)
	r := runInEnvoy(t, bin, rf, setupGenerated(t, g))
	for _, check := range []string{"rewrite", "order", "loaded", "reply", "counters", "records"} {
		found := r.by(check)
		if len(found) == 0 {
			t.Errorf("%s: no problem found without l7_policy", check)
			continue
		}
		t.Logf("%s found %d: %s", check, len(found), strings.Join(found, "; "))
	}
	// The POSTs l7_policy would refuse reach the app.
	for _, c := range []string{"mesh-post-h1", "mesh-post-h2"} {
		if got := r.replies[c]; got.status != 200 || got.app == nil {
			t.Errorf("%s: %d %q, want the app's 200 without l7_policy", c, got.status, got.body)
		}
	}
}

// deleteHTTPFilter returns copies of the listeners without the HTTP
// filters that load `module` over ECDS, and how many it deleted.
func deleteHTTPFilter(t *testing.T, ls []*listener.Listener, modules map[string]string, module string) ([]*listener.Listener, int) {
	t.Helper()
	n := 0
	var out []*listener.Listener
	for _, l := range ls {
		l = proto.Clone(l).(*listener.Listener)
		for _, c := range chains(l) {
			for _, f := range c.Filters {
				m := httpManager(t, f)
				if m == nil {
					continue
				}
				kept := slices.DeleteFunc(slices.Clone(m.HttpFilters), func(h *hcm.HttpFilter) bool {
					return h.GetConfigDiscovery() != nil && modules[h.Name] == module
				})
				if len(kept) == len(m.HttpFilters) {
					continue
				}
				n += len(m.HttpFilters) - len(kept)
				m.HttpFilters = kept
				a, err := anypb.New(m)
				if err != nil {
					t.Fatal(err)
				}
				f.ConfigType = &listener.Filter_TypedConfig{TypedConfig: a}
			}
		}
		out = append(out, l)
	}
	return out, n
}

// TestRunTapNeverStopsTraffic: tap.sh's tap over ECDS (HTTP, and --tcp
// 9000) when the sidecar does not get it running, as Istio generates it
// and with its default_config deleted:
//   - refused: ECDS delivers the extension config with an unknown field
//     in the tap's plugin configuration (what a newer tap.sh gives an
//     older module), which the module refuses at configure time, so the
//     plugin fails to load and Envoy rejects the update;
//   - undelivered: the extension config stays on ADS, asked of a control
//     plane that never answers.
//
// With the default config (an RBAC filter without rules, applied without
// warming), Envoy is live at once and every request gets what the form's
// other filters give, untapped: the run's checks find nothing, with the
// tap counted as not running, nothing recorded, and no request flagged
// NFCF. Without it, refused: every HTTP request gets 500 with the response
// flag NFCF (no filter config found) and the TCP connection is closed
// before the app; undelivered: Envoy stays initializing, its workers not
// started, and the app's ports refuse connections.
func TestRunTapNeverStopsTraffic(t *testing.T) {
	bin := envoyBinary(t)
	for _, rf := range runForms(t) {
		if !strings.HasPrefix(rf.name, "tap.sh") {
			continue
		}
		t.Run(rf.name, func(t *testing.T) {
			g := generate(t, rf.form)
			tap := ""
			for n, m := range g.modules {
				if m == "tap_http" || m == "tap_tcp" {
					tap = n
				}
			}
			if tap == "" || len(g.extensions) != 1 {
				t.Fatalf("extension configs %v, want tap.sh's one", g.modules)
			}
			bare := g
			var n int
			bare.listeners, n = withoutDefaultConfig(t, g.listeners)
			if n == 0 {
				t.Fatal("no default_config in the generated listeners")
			}
			untapped := rf
			untapped.untapped, untapped.pace = true, 0
			for _, fault := range []string{"refused", "undelivered"} {
				t.Run(fault, func(t *testing.T) {
					s := setupGenerated(t, g)
					breakTapECDS(t, s, tap, fault)
					s.flagsLog = true
					r := runInEnvoy(t, bin, untapped, s)
					r.report(t)
					if flags := r.flags(t); strings.Contains(flags, "NFCF") {
						t.Errorf("requests flagged NFCF:\n%s", flags)
					}
				})
				t.Run(fault+" without default_config", func(t *testing.T) {
					t.Logf("default_config deleted from %d filters", n)
					s := setupGenerated(t, bare)
					breakTapECDS(t, s, tap, fault)
					if fault == "undelivered" {
						neverLive(t, bin, s, tap)
						return
					}
					s.flagsLog = true
					r := runInEnvoy(t, bin, untapped, s)
					if len(r.list) == 0 {
						t.Error("the run's checks found nothing")
					}
					if len(untapped.order) > 1 {
						checkNoFilterConfig(t, r)
					} else if r.tcp == nil {
						t.Error("the TCP connection to 9000 was echoed")
					} else {
						t.Logf("TCP to 9000: %v", r.tcp)
					}
				})
			}
		})
	}
}

// withoutDefaultConfig returns copies of the listeners whose filters'
// config_discovery have no default_config (nor
// apply_default_config_without_warming, which needs one), and how many
// had one.
func withoutDefaultConfig(t *testing.T, ls []*listener.Listener) ([]*listener.Listener, int) {
	t.Helper()
	n := 0
	var out []*listener.Listener
	for _, l := range ls {
		l = proto.Clone(l).(*listener.Listener)
		if err := visitAll(l.ProtoReflect(), func(m proto.Message) {
			if c, ok := m.(*core.ExtensionConfigSource); ok && c.DefaultConfig != nil {
				c.DefaultConfig, c.ApplyDefaultConfigWithoutWarming = nil, false
				n++
			}
		}); err != nil {
			t.Fatal(err)
		}
		out = append(out, l)
	}
	return out, n
}

// breakTapECDS makes ECDS fail the tap's extension config `name`:
// "refused" serves it with an unknown field in the tap's plugin
// configuration; "undelivered" leaves it on ADS, to a control plane that
// never answers.
func breakTapECDS(t *testing.T, s *runSetup, name, fault string) {
	t.Helper()
	s.ecdsWant[name] = fault
	switch fault {
	case "refused":
		writeDiscoveryAny(t, s.ecdsFiles[name], withUnknownField(t, s.extensions[name]))
	case "undelivered":
		s.ecdsFiles[name] = ""
		s.ads = startSilentControlPlane(t)
	default:
		t.Fatalf("fault %q", fault)
	}
}

// withUnknownField is the extension config with a field the module does
// not know added to its plugin configuration (a JSON object in a
// StringValue).
func withUnknownField(t *testing.T, a *anypb.Any) *anypb.Any {
	t.Helper()
	ec, w := ociWasm(t, a)
	v := &wrapperspb.StringValue{}
	typedConfig(t, w.GetConfiguration(), v)
	fields := map[string]any{}
	if err := json.Unmarshal([]byte(v.Value), &fields); err != nil {
		t.Fatalf("the tap's plugin configuration: %v", err)
	}
	fields["from_a_newer_tap_sh"] = true
	b, err := json.Marshal(fields)
	if err != nil {
		t.Fatal(err)
	}
	if w.Configuration, err = anypb.New(wrapperspb.String(string(b))); err != nil {
		t.Fatal(err)
	}
	var filter proto.Message = &httpwasm.Wasm{Config: w}
	if !ec.TypedConfig.MessageIs(filter) {
		filter = &networkwasm.Wasm{Config: w}
	}
	if ec.TypedConfig, err = anypb.New(filter); err != nil {
		t.Fatal(err)
	}
	out, err := anypb.New(ec)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// flags is the run's access log of response codes and flags
// (runSetup.flagsLog), as it stands once Envoy has flushed it.
func (r runResult) flags(t *testing.T) string {
	t.Helper()
	time.Sleep(100 * time.Millisecond)
	b, err := os.ReadFile(filepath.Join(r.envoy.dir, "flags.log"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(b)
}

// checkNoFilterConfig: every HTTP request got Envoy's 500 for a filter
// without config (no body, not from the app, flagged NFCF), before any
// filter after the tap could answer.
func checkNoFilterConfig(t *testing.T, r runResult) {
	t.Helper()
	if len(r.replies) == 0 {
		t.Fatalf("no HTTP answers: %v", r.sendErr)
	}
	for c, got := range r.replies {
		if got.status != 500 || got.body != "" || got.app != nil {
			t.Errorf("%s: %d %q, want Envoy's 500 without a body", c, got.status, got.body)
		}
	}
	flags := r.flags(t)
	lines := strings.Split(strings.TrimSpace(flags), "\n")
	for _, l := range lines {
		if f := strings.Fields(l); len(f) != 3 || f[1] != "500" || f[2] != "NFCF" {
			t.Errorf("flags log line %q, want <case> 500 NFCF", l)
		}
	}
	if len(lines) != len(r.replies) {
		t.Errorf("%d lines in the flags log, %d answers", len(lines), len(r.replies))
	}
	t.Logf("%d requests answered 500 NFCF", len(r.replies))
}

// neverLive: Envoy, its tap's extension config never delivered and no
// default config, waits for it: for as long as the test watches (2 s, well
// within Envoy's default initial_fetch_timeout of 15 s, which tap.sh's
// config source leaves unset) it is not live, its workers not started, the
// app's ports refuse connections, and the control plane was asked for the
// tap's config.
func neverLive(t *testing.T, bin string, s *runSetup, tap string) {
	t.Helper()
	config, rw := s.bootstrap(t, "run", s.reduced)
	if rw.ads == 0 {
		t.Fatal("nothing left to ADS")
	}
	e := launchEnvoy(t, bin, filepath.Dir(config))
	state, err := e.waitLive(2 * time.Second)
	if err == nil {
		t.Fatal("Envoy live without the tap's extension config")
	}
	t.Logf("after 2 s: /ready %q (%v)", state, err)
	stats := e.stats(t)
	if stats["listener_manager.workers_started"] != 0 {
		t.Errorf("listener_manager.workers_started = %d", stats["listener_manager.workers_started"])
	}
	for _, port := range appPorts {
		c, err := net.DialTimeout("tcp", net.JoinHostPort(s.ip, strconv.Itoa(int(port))), time.Second)
		if err == nil {
			c.Close()
			t.Errorf("port %d accepts connections", port)
		} else {
			t.Logf("port %d: %v", port, err)
		}
	}
	if asked := s.ads.asked(extensionConfigType); !slices.Contains(asked, tap) {
		t.Errorf("the control plane was asked for %v, not %s", asked, tap)
	}
	t.Logf("workers_started %d; extension config %s: update_attempt %d, config_reload %d, config_fail %d",
		stats["listener_manager.workers_started"], tap, ecdsStat(stats, tap, "update_attempt"), ecdsStat(stats, tap, "config_reload"), ecdsStat(stats, tap, "config_fail"))
}
