// Resolves each path read from stdin (one a line) the ways Go apps do, for
// tests/path_differential.rs: the resolvers' names as a JSON array, then for
// each path a JSON array of the resolved paths (null: the app refuses it).
// Standard library only; run as `go run resolve.go`.
package main

import (
	"bufio"
	"encoding/json"
	"net/url"
	"os"
	"path"
	"strings"
)

var names = []string{
	"go: path.Clean(url.PathUnescape(p))",
	"go: path.Clean(url.Parse(p).Path)",
	"go: path.Clean(url.Parse(url.PathUnescape(p)).Path)",
}

func unescaped(p string) *string {
	d, err := url.PathUnescape(p)
	if err != nil {
		return nil
	}
	c := path.Clean(d)
	return &c
}

func parsed(p string) *string {
	u, err := url.Parse(p)
	if err != nil {
		return nil
	}
	c := path.Clean(u.Path)
	return &c
}

func main() {
	in, err := os.ReadFile("/dev/stdin")
	if err != nil {
		panic(err)
	}
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(names); err != nil {
		panic(err)
	}
	for _, p := range strings.Split(string(in), "\n") {
		if p == "" {
			continue
		}
		var reparsed *string
		if d, err := url.PathUnescape(p); err == nil {
			reparsed = parsed(d)
		}
		if err := enc.Encode([]*string{unescaped(p), parsed(p), reparsed}); err != nil {
			panic(err)
		}
	}
}
