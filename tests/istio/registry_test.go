package istio

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
)

// filterDecl is one filter of the workspace's one list: a
// filters/<name>/Cargo.toml with a [package.metadata.filter] table
// (tools/registry reads the same tables for the build, the manifests and
// the Rust tests), read here through `cargo metadata`.
type filterDecl struct {
	Name           string `json:"-"`
	Kind           string `json:"kind"`
	Order          int    `json:"order"`
	FailOpen       bool   `json:"fail_open"`
	Phase          string `json:"phase"`
	PluginPriority int    `json:"plugin_priority"`
	// InSuite: filters/suite/Cargo.toml depends on it.
	InSuite bool `json:"-"`
}

var (
	registryOnce sync.Once
	registryList []filterDecl
	registryErr  error
)

// filterList is every filter, in chain order (then by name), as
// tools/registry orders them. It stops the test binary when cargo cannot
// say: every test here needs the list.
func filterList() []filterDecl {
	registryOnce.Do(func() { registryList, registryErr = readRegistry() })
	if registryErr != nil {
		panic(fmt.Sprintf("the filters' list: %v", registryErr))
	}
	return registryList
}

func readRegistry() ([]filterDecl, error) {
	root, err := filepath.Abs("../..")
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("cargo", "metadata", "--no-deps", "--format-version", "1")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("cargo metadata: %v", err)
	}
	var meta struct {
		Packages []struct {
			Name         string `json:"name"`
			ManifestPath string `json:"manifest_path"`
			Dependencies []struct {
				Name string `json:"name"`
			} `json:"dependencies"`
			Metadata struct {
				Filter *filterDecl `json:"filter"`
			} `json:"metadata"`
		} `json:"packages"`
	}
	if err := json.Unmarshal(out, &meta); err != nil {
		return nil, fmt.Errorf("cargo metadata: %v", err)
	}
	inSuite := map[string]bool{}
	for _, p := range meta.Packages {
		if p.ManifestPath == filepath.Join(root, "filters", "suite", "Cargo.toml") {
			for _, d := range p.Dependencies {
				inSuite[d.Name] = true
			}
		}
	}
	var list []filterDecl
	for _, p := range meta.Packages {
		if f := p.Metadata.Filter; f != nil && strings.HasPrefix(p.ManifestPath, filepath.Join(root, "filters")+"/") {
			f.Name, f.InSuite = p.Name, inSuite[p.Name]
			list = append(list, *f)
		}
	}
	if len(list) == 0 {
		return nil, fmt.Errorf("no filters/*/Cargo.toml has a [package.metadata.filter] table")
	}
	slices.SortFunc(list, func(a, b filterDecl) int {
		if a.Order != b.Order {
			return a.Order - b.Order
		}
		return strings.Compare(a.Name, b.Name)
	})
	return list, nil
}

// ourModules are what `make build` writes to dist/: every filter, then the suite.
func ourModules() []string {
	var out []string
	for _, f := range filterList() {
		out = append(out, f.Name)
	}
	return append(out, "suite")
}

// httpFilters are the HTTP filters in chain order.
func httpFilters() []filterDecl {
	var out []filterDecl
	for _, f := range filterList() {
		if f.Kind == "http" {
			out = append(out, f)
		}
	}
	return out
}

// phaseRank orders the WasmPlugin phases as Istio places them: AUTHN and
// AUTHZ before its RBAC filter, STATS after it.
var phaseRank = map[string]int{"AUTHN": 0, "AUTHZ": 1, "rbac": 2, "STATS": 3}

// pluginOrder is the order the plugin forms' HTTP filters must run in, with
// Istio's RBAC among them: by phase, then by priority (higher first).
func pluginOrder() []string {
	type placed struct {
		name           string
		rank, priority int
	}
	all := []placed{{name: "rbac", rank: phaseRank["rbac"]}}
	for _, f := range httpFilters() {
		all = append(all, placed{f.Name, phaseRank[f.Phase], f.PluginPriority})
	}
	slices.SortStableFunc(all, func(a, b placed) int {
		if a.rank != b.rank {
			return a.rank - b.rank
		}
		return b.priority - a.priority
	})
	var out []string
	for _, p := range all {
		out = append(out, p.name)
	}
	return out
}

// suiteParts are the filters the suite chains inside its one filter, in
// its order (filters/suite/build.rs: the list's order).
func suiteParts() []string {
	var out []string
	for _, f := range filterList() {
		if f.InSuite {
			out = append(out, f.Name)
		}
	}
	return out
}

func filterNames(list []filterDecl) []string {
	var out []string
	for _, f := range list {
		out = append(out, f.Name)
	}
	return out
}

// envoyFilterFiles are every filter's EnvoyFilter form (ConfigMap).
func envoyFilterFiles() []string {
	var out []string
	for _, f := range filterList() {
		out = append(out, f.Name+".yaml")
	}
	return out
}
