package istio

// Every chain each proxy gets with no form applied (the same cluster and
// base configuration), kept in the placement golden file beside the forms'
// chains as "(sidecar baseline)" and "(gateway baseline)":
// tests/istio_model.rs applies our model of Istio (EnvoyFilter matches,
// plugin selectors) to every one of them, and must put a form's filters on
// exactly the chains Istio's own code did, and on no other.

import (
	"fmt"
	"sort"
	"testing"
)

// placedChain is a chain as the golden file keeps it: `chain`, with what
// an EnvoyFilter's match and a plugin's selectors read of it besides: the
// port its listener binds (an outbound listener's portNumber) and the
// ALPN its match asks for (which tells apart the inbound chains of one
// port and transport: Istio's mTLS and the app's own TLS).
type placedChain struct {
	chain
	ListenerPort uint32   `json:"listener_port"`
	ALPN         []string `json:"alpn,omitempty"`
}

func (c placedChain) asChain() chain { return c.chain }

// key names a chain among its proxy's: unique in every baseline.
func (c placedChain) key() string {
	return fmt.Sprintf("%s/%s port %d %s %v", c.Listener, c.Chain, c.Port, c.Transport, c.ALPN)
}

// placedChains are the chains of d's listeners, by listener name (Istio
// sends its outbound listeners in no fixed order), each listener's chains
// in its order.
func placedChains(t *testing.T, d discovered) []placedChain {
	t.Helper()
	all := summary(t, d)
	var out []placedChain
	for _, l := range d.listeners {
		for _, c := range chains(l) {
			s := all[len(out)]
			out = append(out, placedChain{
				chain:        s,
				ListenerPort: l.GetAddress().GetSocketAddress().GetPortValue(),
				ALPN:         c.GetFilterChainMatch().GetApplicationProtocols(),
			})
		}
	}
	if len(out) != len(all) {
		t.Fatalf("%d chains placed, %d summarized", len(out), len(all))
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Listener < out[j].Listener })
	return out
}

// The two proxies by the name the golden file gives them.
var proxies = map[string]func() proxy{"sidecar": sidecar, "gateway": gateway}

func baselineKey(who string) string { return "(" + who + " baseline)" }

// baselines are each proxy's chains with no form: none of ours, each
// chain's key unique.
func baselines(t *testing.T) map[string][]placedChain {
	t.Helper()
	out := map[string][]placedChain{}
	for who, p := range proxies {
		all := placedChains(t, discover(t, nil, p()))
		seen := map[string]bool{}
		for _, c := range all {
			if seen[c.key()] {
				t.Fatalf("%s baseline: two chains %s", who, c.key())
			}
			seen[c.key()] = true
			if len(ourFilters(c.asChain())) > 0 {
				t.Fatalf("%s baseline: %s holds ours with no form", who, c.asChain())
			}
		}
		out[who] = all
	}
	return out
}

// sameAsBaseline checks that a form's chains, ours left out, are its
// proxy's baseline, in order: the form adds and removes no chain and
// changes none of Istio's filters, so a model may start from the baseline.
func sameAsBaseline(t *testing.T, who string, got, base []placedChain) {
	t.Helper()
	strip := func(names []string) []string {
		var out []string
		for _, n := range names {
			if !ours(n) {
				out = append(out, n)
			}
		}
		return out
	}
	if len(got) != len(base) {
		t.Errorf("%s: %d chains, the baseline %d", who, len(got), len(base))
		return
	}
	for i, c := range got {
		b := base[i]
		stripped := fmt.Sprint(c.key(), c.ListenerPort, strip(c.Network), strip(c.HTTP))
		if want := fmt.Sprint(b.key(), b.ListenerPort, strip(b.Network), strip(b.HTTP)); stripped != want {
			t.Errorf("%s: chain %d, ours left out, is %s; the baseline's is %s", who, i, stripped, want)
		}
	}
}
