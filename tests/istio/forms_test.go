package istio

// Every form the project ships (envoyfilters/) and what tap.sh applies,
// each as the Istio objects a user would apply.

import (
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// form is one way of installing a module.
type form struct {
	// Its name in test output and the golden file: the file under
	// envoyfilters/ it comes from, or tap.sh with its arguments.
	name string
	yaml string
	// Where it is applied when the manifest names no namespace.
	namespace string
	gateway   bool
}

// shippedForms are the files of envoyfilters/ (one directory per kind),
// the remote forms each with module-source.yaml beside them.
func shippedForms(t *testing.T) []form {
	t.Helper()
	root := filepath.Join(repoRoot(t), "envoyfilters")
	var out []form
	for _, dir := range []string{".", "remote", "wasmplugin", "trafficextension"} {
		files, err := filepath.Glob(filepath.Join(root, dir, "*.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		sort.Strings(files)
		for _, f := range files {
			base := filepath.Base(f)
			if base == "module-source.yaml" || strings.HasSuffix(base, "-records.yaml") {
				continue
			}
			text := readFile(t, f)
			if dir == "remote" {
				text += "\n---\n" + readFile(t, filepath.Join(root, dir, "module-source.yaml"))
			}
			// A plugin form's records log is applied with it.
			records := strings.TrimSuffix(f, ".yaml") + "-records.yaml"
			if _, err := os.Stat(records); err == nil {
				text += "\n---\n" + readFile(t, records)
			}
			name := filepath.Join(dir, base)
			out = append(out, form{
				name:      filepath.Clean(name),
				yaml:      text,
				namespace: appNamespace,
				gateway:   strings.Contains(base, "-gateway"),
			})
		}
	}
	if len(out) == 0 {
		t.Fatal("no forms under envoyfilters/")
	}
	return out
}

// tapShForms are what `tap.sh --dry-run` prints for HTTP, --tcp 9000 and
// --tcp-outbound 5432 (needs dist/tap_http.wasm and dist/tap_tcp.wasm).
func tapShForms(t *testing.T) []form {
	t.Helper()
	var out []form
	for _, args := range tapShArgs {
		out = append(out, form{
			name:      strings.TrimSpace("tap.sh " + strings.Join(args, " ")),
			yaml:      tapSh(t, args...),
			namespace: appNamespace,
		})
	}
	return out
}

// The taps tap.sh applies: HTTP, --tcp 9000 and --tcp-outbound 5432.
var tapShArgs = [][]string{{}, {"--tcp", "9000"}, {"--tcp-outbound", "5432"}}

func tapSh(t *testing.T, args ...string) string {
	t.Helper()
	root := repoRoot(t)
	all := append([]string{filepath.Join(root, "envoyfilters/tap.sh"), "--dry-run", "--guid", appGUID}, args...)
	cmd := exec.Command("bash", all...)
	cmd.Env = append(os.Environ(), "KUBECONFIG=/nonexistent")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	outb, err := cmd.Output()
	if err != nil {
		t.Fatalf("tap.sh %v: %v: %s", args, err, stderr.String())
	}
	return string(outb)
}
