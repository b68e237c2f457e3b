package istio

// Where Istio's own translation code puts our filters: for every form, the
// chains that hold them (the right ports, nothing outbound unless asked, on
// one proxy only), their order among Istio's filters, and a golden file of
// those chains and of every chain of each proxy with no form (the
// baselines, baseline_test.go) that tests/istio_model.rs holds our model of
// Istio (tests/harness/istio.rs, tests/harness/sidecar.rs) to.

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// Our filters' names as Envoy sees them: the module's name in the
// EnvoyFilter forms and tap.sh, the plugin's Kubernetes name in the
// WasmPlugin and TrafficExtension forms' generated names.
func ourNames() []string {
	var out []string
	for _, m := range ourModules() {
		out = append(out, m, strings.ReplaceAll(m, "_", "-"))
	}
	return out
}

func ours(filter string) bool {
	for _, n := range ourNames() {
		if strings.Contains(filter, n) {
			return true
		}
	}
	return false
}

// ourFilters are the names of ours in a chain, in order.
func ourFilters(c chain) []string {
	var out []string
	for _, f := range append(append([]string{}, c.Network...), c.HTTP...) {
		if ours(f) {
			out = append(out, f)
		}
	}
	return out
}

// togetherForms are every module's plugin applied at once (the suite,
// which holds the same filters, and the gateway forms left out), for
// WasmPlugin and TrafficExtension: their order among themselves.
func togetherForms(t *testing.T) []form {
	var out []form
	for _, dir := range []string{"wasmplugin", "trafficextension"} {
		var texts []string
		for _, f := range shippedForms(t) {
			if filepath.Dir(f.name) == dir && !f.gateway && !strings.HasPrefix(filepath.Base(f.name), "suite") {
				texts = append(texts, f.yaml)
			}
		}
		if len(texts) == 0 {
			t.Fatalf("no %s forms", dir)
		}
		out = append(out, form{name: dir + "/*", yaml: strings.Join(texts, "\n---\n"), namespace: appNamespace})
	}
	return out
}

// expected says whether a form's filters belong on a chain.
func expected(f form, c chain) bool {
	inboundHTTP := c.Listener == "virtualInbound" && c.HTTP != nil
	inboundTCP := func(port uint32) bool {
		return c.Listener == "virtualInbound" && c.Port == port && c.HTTP == nil
	}
	switch {
	case f.gateway:
		return c.HTTP != nil
	case f.name == "tap.sh --tcp 9000":
		return inboundTCP(9000)
	case f.name == "tap.sh --tcp-outbound 5432":
		// The outbound listener of the db Service's port, nothing inbound.
		return c.Listener == "10.96.0.20_5432"
	case strings.Contains(f.name, "tap_tcp"):
		return inboundTCP(9000)
	case strings.HasSuffix(f.name, "/*"):
		return inboundHTTP || inboundTCP(9000)
	default:
		return inboundHTTP
	}
}

// placed is a key of the golden file: a form's chains that hold ours, all
// of one proxy (the other gets none), or a proxy's baseline.
type placed struct {
	Proxy  string        `json:"proxy"`
	Chains []placedChain `json:"chains"`
}

func TestPlacement(t *testing.T) {
	forms := append(append(shippedForms(t), togetherForms(t)...), tapShForms(t)...)
	golden := map[string]placed{}
	base := baselines(t)
	for who, chains := range base {
		golden[baselineKey(who)] = placed{Proxy: who, Chains: chains}
	}
	for _, f := range forms {
		t.Run(f.name, func(t *testing.T) {
			who, other := "sidecar", "gateway"
			if f.gateway {
				who, other = other, who
			}
			configs := parseConfigs(t, f.yaml, f.namespace)
			all := placedChains(t, discover(t, configs, proxies[who]()))
			sameAsBaseline(t, who, all, base[who])
			// The form's selector leaves the other proxy as it was.
			otherChains := placedChains(t, discover(t, configs, proxies[other]()))
			sameAsBaseline(t, other, otherChains, base[other])
			for _, c := range otherChains {
				if len(ourFilters(c.asChain())) > 0 {
					t.Errorf("%s: %s holds ours", other, c.asChain())
				}
			}
			var holding []placedChain
			for _, pc := range all {
				c := pc.asChain()
				has := len(ourFilters(c)) > 0
				if want := expected(f, c); has != want {
					t.Errorf("%s: ours there %v, expected %v", c, has, want)
				}
				if has {
					holding = append(holding, pc)
					for _, problem := range orderProblems(f, c) {
						t.Error(problem)
					}
				}
			}
			if len(holding) == 0 {
				t.Fatalf("no chain holds the form's filters")
			}
			// The app's HTTP ports are Service targetPorts: 80 -> 8080, and
			// 8081; TCP 9000. Each inbound port has a TLS and a plain-text
			// chain (PERMISSIVE mTLS).
			ports := map[uint32]int{}
			for _, c := range holding {
				if c.Listener == "virtualInbound" {
					ports[c.Port]++
				}
			}
			if !f.gateway && !strings.HasPrefix(f.name, "tap.sh --tcp-outbound") {
				want := []uint32{8080, 8081}
				if strings.Contains(f.name, "tcp") {
					want = []uint32{9000}
				}
				if strings.HasSuffix(f.name, "/*") {
					want = []uint32{8080, 8081, 9000}
				}
				for _, port := range want {
					if ports[port] < 2 {
						t.Errorf("port %d: %d chains hold ours, want its TLS and plain-text chains (%v)", port, ports[port], ports)
					}
				}
				if ports[80] > 0 {
					t.Errorf("an inbound chain for the Service port 80 instead of its targetPort 8080")
				}
			}
			golden[f.name] = placed{Proxy: who, Chains: holding}
		})
	}
	compareGolden(t, "testdata/placement.golden.json", golden)
}

// orderProblems lists what breaks the order any chain must have: Istio's
// terminal filter last; the metadata exchange before our filters (they
// read what it decoded), except tap.sh's HTTP tap, which runs first (it
// sees every body that passes); among ours, the tap first and
// peer_metadata before the filters that read the caller.
func orderProblems(f form, c chain) []string {
	var problems []string
	problem := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	filters := c.HTTP
	terminal := "envoy.filters.http.router"
	if filters == nil {
		filters, terminal = c.Network, "envoy.filters.network.tcp_proxy"
	}
	if filters[len(filters)-1] != terminal {
		problem("%s: %s is not last", c, terminal)
	}
	first := -1
	for i, name := range filters {
		if ours(name) {
			first = i
			break
		}
	}
	exchange := indexOf(filters, "istio.metadata_exchange")
	switch {
	case f.name == "tap.sh":
		if first != 0 {
			problem("%s: tap.sh's tap is not first", c)
		}
	case exchange >= 0 && first < exchange:
		problem("%s: ours before Istio's metadata exchange", c)
	}
	order := ourFilters(c)
	// By module, with "_" (EnvoyFilter forms) or "-" (plugin names).
	pos := func(module string) int {
		if i := indexOf(order, module); i >= 0 {
			return i
		}
		return indexOf(order, strings.ReplaceAll(module, "_", "-"))
	}
	if tap := pos("tap_"); tap > 0 {
		problem("%s: the tap is not first among ours: %v", c, order)
	}
	if peer := pos("peer_metadata"); peer >= 0 {
		for _, reader := range []string{"cf_headers", "l7_policy"} {
			if r := pos(reader); r >= 0 && r < peer {
				problem("%s: %s before peer_metadata: %v", c, reader, order)
			}
		}
	}
	return problems
}

// compareGolden checks `got` against a golden JSON file (a form per key, a
// chain per line); UPDATE_GOLDEN=1 writes it instead.
func compareGolden(t *testing.T, path string, got map[string]placed) {
	t.Helper()
	names := make([]string, 0, len(got))
	for n := range got {
		names = append(names, n)
	}
	sort.Strings(names)
	var lines []string
	for i, n := range names {
		key, _ := json.Marshal(n)
		proxy, _ := json.Marshal(got[n].Proxy)
		lines = append(lines, fmt.Sprintf("  %s: {\"proxy\": %s, \"chains\": [", key, proxy))
		for j, c := range got[n].Chains {
			line, err := json.Marshal(c)
			if err != nil {
				t.Fatal(err)
			}
			sep := ","
			if j == len(got[n].Chains)-1 {
				sep = ""
			}
			lines = append(lines, "    "+string(line)+sep)
		}
		end := "  ]},"
		if i == len(names)-1 {
			end = "  ]}"
		}
		lines = append(lines, end)
	}
	b := []byte("{\n" + strings.Join(lines, "\n") + "\n}\n")
	var check map[string]placed
	if err := json.Unmarshal(b, &check); err != nil {
		t.Fatalf("golden is not JSON: %v", err)
	}
	if os.Getenv("UPDATE_GOLDEN") != "" {
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (UPDATE_GOLDEN=1 writes it)", err)
	}
	if string(want) != string(b) {
		t.Errorf("%s differs from what Istio generated (UPDATE_GOLDEN=1 rewrites it; review the diff):\n%s", path, goldenDiff(string(want), string(b)))
	}
}

// goldenDiff lists the lines only one side has.
func goldenDiff(want, got string) string {
	count := func(s string) map[string]int {
		m := map[string]int{}
		for _, l := range strings.Split(s, "\n") {
			m[l]++
		}
		return m
	}
	w, g := count(want), count(got)
	var out []string
	for l, n := range w {
		if g[l] < n {
			out = append(out, "- "+l)
		}
	}
	for l, n := range g {
		if w[l] < n {
			out = append(out, "+ "+l)
		}
	}
	sort.Strings(out)
	if len(out) > 40 {
		out = append(out[:40], "...")
	}
	return strings.Join(out, "\n")
}

// The order checks bite: a plugin priority that puts peer_metadata ahead of
// the tap, and tap.sh's tap inserted before the router instead of first,
// are each reported on the chains Istio builds from them.
func TestPlacementOrderChecksBite(t *testing.T) {
	var plugins form
	for _, f := range togetherForms(t) {
		if f.name == "wasmplugin/*" {
			plugins = f
		}
	}
	peerFirst := regexp.MustCompile(`(?s)(name: peer-metadata\n.*?priority: )100`)
	if !peerFirst.MatchString(plugins.yaml) {
		t.Fatal("no peer-metadata plugin of priority 100 to move")
	}
	plugins.yaml = peerFirst.ReplaceAllString(plugins.yaml, "${1}300")
	tap := form{name: "tap.sh", yaml: strings.Replace(tapSh(t), "operation: INSERT_FIRST", "operation: INSERT_BEFORE", 1), namespace: appNamespace}
	if !strings.Contains(tap.yaml, "INSERT_BEFORE") {
		t.Fatal("tap.sh's HTTP tap is not INSERT_FIRST")
	}
	for _, broken := range []struct {
		form form
		want string
	}{
		{plugins, "the tap is not first among ours"},
		{tap, "tap.sh's tap is not first"},
	} {
		found := 0
		for _, c := range summary(t, discover(t, parseConfigs(t, broken.form.yaml, broken.form.namespace), sidecar())) {
			for _, p := range orderProblems(broken.form, c) {
				if strings.Contains(p, broken.want) {
					found++
				}
			}
		}
		if found == 0 {
			t.Errorf("%s, broken: no chain reported %q", broken.form.name, broken.want)
		}
	}
}
