package istio

// `istioctl analyze` on every form: Istio's local analysis
// (pkg/config/analysis/local) with all its analyzers, wired as
// istioctl/pkg/analyze/analyze.go wires it (NewIstiodAnalyzer with
// analyzers.AllCombined(), the namespace analyzed and istio-system, the
// form's YAML added with AddReaderKubeSource), one form at a time.
//
// istioctl reads a cluster for the Pods, Services and Namespaces the
// analyzers look at; here the objects of testdata/cluster.yaml stand for
// that cluster (added with AddTestReaderKubeSource, the only way a file
// source takes those kinds), with the app's namespace labelled for sidecar
// injection and the app's pod given its sidecar, as in a mesh where our
// filters run. Since the cluster has the ingress gateway, istioctl's
// stand-in for it (AddDefaultResources, files-only mode) is not added.
//
// Every message goes into testdata/analyze.golden (UPDATE_GOLDEN=1
// rewrites it); errors fail the test whatever the golden says.

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"istio.io/istio/pkg/config/analysis/analyzers"
	"istio.io/istio/pkg/config/analysis/diag"
	"istio.io/istio/pkg/config/analysis/local"
	"istio.io/istio/pkg/config/resource"
)

const analyzeGolden = "testdata/analyze.golden"

// analysisCluster is testdata/cluster.yaml with the app's namespace
// labelled istio-injection=enabled and every pod in it given the
// istio-proxy container injection would have added.
func analysisCluster(t *testing.T) string {
	t.Helper()
	text := readFile(t, filepath.Join(repoRoot(t), "tests/istio/testdata/cluster.yaml"))
	var docs []string
	for _, u := range manifestObjects(t, text, appNamespace) {
		switch {
		case u.GetKind() == "Namespace" && u.GetName() == appNamespace:
			labels := u.GetLabels()
			if labels == nil {
				labels = map[string]string{}
			}
			labels["istio-injection"] = "enabled"
			u.SetLabels(labels)
		case u.GetKind() == "Pod" && u.GetNamespace() == appNamespace:
			spec, _ := u.Object["spec"].(map[string]any)
			if spec == nil {
				t.Fatalf("pod %s without a spec", u.GetName())
			}
			containers, _ := spec["containers"].([]any)
			injected := false
			for _, c := range containers {
				if m, _ := c.(map[string]any); m["name"] == "istio-proxy" {
					injected = true
				}
			}
			if !injected {
				spec["containers"] = append(containers, map[string]any{"name": "istio-proxy", "image": "proxyv2"})
			}
		}
		b, err := yaml.Marshal(u.Object)
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, string(b))
	}
	return strings.Join(docs, "---\n")
}

// analysisNamespace is the namespace `istioctl analyze -n` is given for a
// form: the app's, or istio-system for the ingress gateway's forms.
func analysisNamespace(f form) string {
	if f.gateway {
		return "istio-system"
	}
	return f.namespace
}

// runAnalysis runs istioctl analyze's analyzers on `text` (named `name`)
// with analysisCluster, in `namespace`.
func runAnalysis(t *testing.T, name, text, namespace string) diag.Messages {
	t.Helper()
	return runAnalysisIn(t, analysisCluster(t), name, text, namespace)
}

// runAnalysisIn is runAnalysis with the cluster's objects in `cluster`.
func runAnalysisIn(t *testing.T, cluster, name, text, namespace string) diag.Messages {
	t.Helper()
	sa := local.NewIstiodAnalyzer(analyzers.AllCombined(),
		resource.Namespace(namespace), resource.Namespace("istio-system"), nil)
	if err := sa.AddTestReaderKubeSource([]local.ReaderSource{
		{Name: "cluster.yaml", Reader: strings.NewReader(cluster)},
	}); err != nil {
		t.Fatalf("the cluster's objects: %v", err)
	}
	if err := sa.AddReaderKubeSource([]local.ReaderSource{
		{Name: name, Reader: strings.NewReader(text)},
	}); err != nil {
		t.Fatalf("%s: istioctl analyze cannot read it: %v", name, err)
	}
	cancel := make(chan struct{})
	defer close(cancel)
	result, err := sa.Analyze(cancel)
	if err != nil {
		t.Fatalf("%s: analysis failed: %v", name, err)
	}
	return result.Messages
}

// messageLine is one golden line: form | code | level | resource | text.
// Nothing in it depends on paths, line numbers or time.
func messageLine(formName string, m diag.Message) string {
	res := "-"
	if m.Resource != nil {
		res = m.Resource.Origin.FriendlyName()
	}
	text := fmt.Sprintf(m.Type.Template(), m.Parameters...)
	text = strings.Join(strings.Fields(text), " ")
	return strings.Join([]string{formName, m.Type.Code(), m.Type.Level().String(), res, text}, " | ")
}

func TestAnalyze(t *testing.T) {
	var lines []string
	for _, f := range validatedForms(t) {
		msgs := runAnalysis(t, f.name, f.yaml, analysisNamespace(f))
		for _, m := range msgs {
			line := messageLine(f.name, m)
			lines = append(lines, line)
			if m.Type.Level() == diag.Error {
				t.Errorf("an error: %s", line)
			}
		}
	}
	sort.Strings(lines)
	got := strings.Join(lines, "\n")
	if got != "" {
		got += "\n"
	}
	if os.Getenv("UPDATE_GOLDEN") != "" {
		if err := os.WriteFile(analyzeGolden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s (%d messages)", analyzeGolden, len(lines))
		return
	}
	want, err := os.ReadFile(analyzeGolden)
	if err != nil {
		t.Fatalf("%v (UPDATE_GOLDEN=1 writes it)", err)
	}
	if got != string(want) {
		t.Errorf("istioctl analyze's messages differ from %s (UPDATE_GOLDEN=1 rewrites it; every warning must be fixed or accepted in README.md):\n%s",
			analyzeGolden, analyzeDiff(string(want), got))
	}
}

// analyzeDiff lists the lines only in want (-) and only in got (+).
func analyzeDiff(want, got string) string {
	count := func(s string) map[string]int {
		m := map[string]int{}
		for _, l := range strings.Split(strings.TrimSuffix(s, "\n"), "\n") {
			if l != "" {
				m[l]++
			}
		}
		return m
	}
	w, g := count(want), count(got)
	var out []string
	for l, n := range w {
		for i := g[l]; i < n; i++ {
			out = append(out, "- "+l)
		}
	}
	for l, n := range g {
		for i := w[l]; i < n; i++ {
			out = append(out, "+ "+l)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i][2:] < out[j][2:] })
	return strings.Join(out, "\n")
}

// relativeFilter is an EnvoyFilter that inserts an HTTP filter before the
// router, with `priority` set unless it is empty.
func relativeFilter(priority string) string {
	s := `apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata:
  name: relative
spec:
  workloadSelector:
    labels:
      app: my-app
  configPatches:
  - applyTo: HTTP_FILTER
    match:
      context: SIDECAR_INBOUND
      listener:
        filterChain:
          filter:
            name: envoy.filters.network.http_connection_manager
            subFilter:
              name: envoy.filters.http.router
    patch:
      operation: INSERT_BEFORE
      value:
        name: example.buffer
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.http.buffer.v3.Buffer
          max_request_bytes: 1024
`
	if priority != "" {
		s += "  priority: " + priority + "\n"
	}
	return s
}

// messageLines are `msgs` as golden lines of form `name`.
func messageLines(name string, msgs diag.Messages) []string {
	var out []string
	for _, m := range msgs {
		out = append(out, messageLine(name, m))
	}
	return out
}

// hasLine says whether a line of `lines` starts with `prefix`.
func hasLine(lines []string, prefix string) bool {
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			return true
		}
	}
	return false
}

// withoutField is `text` with the field at `path` removed from every object
// of kind `kind` (list elements on the way are all visited).
func withoutField(t *testing.T, text, namespace, kind string, path ...string) string {
	t.Helper()
	var remove func(obj any, path []string) int
	remove = func(obj any, path []string) int {
		switch o := obj.(type) {
		case []any:
			n := 0
			for _, e := range o {
				n += remove(e, path)
			}
			return n
		case map[string]any:
			if len(path) == 1 {
				if _, ok := o[path[0]]; ok {
					delete(o, path[0])
					return 1
				}
				return 0
			}
			return remove(o[path[0]], path[1:])
		}
		return 0
	}
	var docs []string
	removed := 0
	for _, u := range manifestObjects(t, text, namespace) {
		if u.GetKind() == kind {
			removed += remove(u.Object, path)
		}
		b, err := yaml.Marshal(u.Object)
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, string(b))
	}
	if removed == 0 {
		t.Fatalf("no %s has %s", kind, strings.Join(path, "."))
	}
	return strings.Join(docs, "---\n")
}

// TestAnalyzeFindsRelativeOperation: the analysis bites. An INSERT_BEFORE
// without a priority is reported (IST0151), with one it is not; and so is
// tap.sh --tcp's EnvoyFilter (INSERT_BEFORE the TCP proxy) once its
// priority is taken out.
func TestAnalyzeFindsRelativeOperation(t *testing.T) {
	want := "relative | IST0151 | Warning | EnvoyFilter cf-workloads/relative | "
	if got := messageLines("relative", runAnalysis(t, "relative.yaml", relativeFilter(""), appNamespace)); !hasLine(got, want) {
		t.Errorf("INSERT_BEFORE without priority: no IST0151; got %q", got)
	}
	for _, l := range messageLines("relative", runAnalysis(t, "relative.yaml", relativeFilter("10"), appNamespace)) {
		if strings.Contains(l, "IST0151") {
			t.Errorf("INSERT_BEFORE with priority 10: %s", l)
		}
	}
	tap := tapSh(t, "--tcp", "9000")
	want = "tap.sh --tcp 9000 | IST0151 | Warning | EnvoyFilter cf-workloads/" + appGUID + "-tap | "
	if got := messageLines("tap.sh --tcp 9000", runAnalysis(t, "tap.yaml", withoutField(t, tap, appNamespace, "EnvoyFilter", "spec", "priority"), appNamespace)); !hasLine(got, want) {
		t.Errorf("tap.sh --tcp 9000 without its priority: no IST0151; got %q", got)
	}
}

// TestAnalyzeFindsUncheckedModuleServer: the DestinationRule of
// remote/module-source.yaml is looked at: without caCertificates it is
// reported (IST0129).
func TestAnalyzeFindsUncheckedModuleServer(t *testing.T) {
	f := formNamed(t, "remote/tap_http.yaml")
	text := withoutField(t, f.yaml, f.namespace, "DestinationRule", "spec", "trafficPolicy", "portLevelSettings", "tls", "caCertificates")
	want := "remote/tap_http.yaml | IST0129 | Warning | DestinationRule cf-workloads/wasm-modules | "
	if got := messageLines(f.name, runAnalysis(t, f.name, text, analysisNamespace(f))); !hasLine(got, want) {
		t.Errorf("module-source.yaml without caCertificates: no IST0129; got %q", got)
	}
}

// TestAnalyzeSeesCluster: the cluster's objects are analyzed with the form:
// testdata/cluster.yaml as it is (its namespace not labelled for
// injection) gets IST0102 on cf-workloads; analysisCluster does not.
func TestAnalyzeSeesCluster(t *testing.T) {
	f := formNamed(t, "wasmplugin/tap_http.yaml")
	raw := readFile(t, filepath.Join(repoRoot(t), "tests/istio/testdata/cluster.yaml"))
	want := f.name + " | IST0102 | Info | Namespace cf-workloads | "
	if got := messageLines(f.name, runAnalysisIn(t, raw, f.name, f.yaml, analysisNamespace(f))); !hasLine(got, want) {
		t.Errorf("cluster.yaml without the injection label: no IST0102; got %q", got)
	}
	if got := messageLines(f.name, runAnalysis(t, f.name, f.yaml, analysisNamespace(f))); hasLine(got, f.name+" | IST0102") {
		t.Errorf("analysisCluster: %q", got)
	}
}
