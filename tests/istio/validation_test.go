package istio

// What the cluster checks when an object of ours is applied: every object
// of every form (shippedForms, tapShForms) goes through
//
//   - the API server's check against Istio's CRDs (the OpenAPI schema with
//     its unknown fields and CEL rules, from the Istio source's
//     manifests/charts/base/files/crd-all.gen.yaml),
//   - Istio's validating admission webhook, the real handler
//     (pkg/webhooks/validation/server) given an AdmissionReview, with the
//     schemas istiod serves it with (collections.PilotGatewayAPI), and
//   - `istioctl validate`'s check: the spec decoded strictly, then the
//     schema's ValidateConfig,
//
// each with the namespace the API server would put into the object.
// Errors fail the test; warnings are listed in acceptedWarnings or fail it.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	kubeyaml "k8s.io/apimachinery/pkg/util/yaml"

	"istio.io/istio/pkg/config"
	crdvalidation "istio.io/istio/pkg/config/crd"
	"istio.io/istio/pkg/config/schema/collections"
	"istio.io/istio/pkg/config/schema/resource"
	webhook "istio.io/istio/pkg/webhooks/validation/server"
)

// acceptedWarnings are the validation warnings we know of and accept
// (README.md, "Validation and analyzers", says why): a warning is accepted
// when it is on an object of that kind and its text starts so. Each must
// still appear somewhere, or the test asks for it to be removed.
var acceptedWarnings = []struct{ kind, text string }{
	// Istio's validation says this of every EnvoyFilter (the webhook
	// answers it to kubectl; istioctl analyze reports it as IST0133). Our
	// EnvoyFilter forms are for Istio releases without WasmPlugin or
	// TrafficExtension, and for what those cannot say.
	{"EnvoyFilter", "EnvoyFilter exposes internal implementation details that may change at any time."},
}

// validationFinding is one thing a check says about one object.
type validationFinding struct {
	check    string // crd, webhook or istioctl-validate
	resource string // Kind namespace/name
	text     string
}

func (f validationFinding) String() string {
	return f.check + " | " + f.resource + " | " + f.text
}

// validation is what the checks say about one form's objects.
type validation struct {
	errors, warnings []validationFinding
	// How many objects each check looked at.
	checked map[string]int
}

// validatedForms are every form we ship and every one tap.sh applies: with
// the module over ECDS and inline (--inline-module, what it applies on
// older Envoys), to the log or to a file (--records file).
func validatedForms(t *testing.T) []form {
	t.Helper()
	out := append(shippedForms(t), tapShForms(t)...)
	for _, args := range tapShArgs {
		for _, extra := range [][]string{{"--inline-module"}, {"--records", "file"}} {
			all := append(append([]string{}, args...), extra...)
			out = append(out, form{
				name:      strings.TrimSpace("tap.sh " + strings.Join(all, " ")),
				yaml:      tapSh(t, all...),
				namespace: appNamespace,
			})
		}
	}
	return out
}

// istioSource is the directory of the Istio module this test builds with.
var istioSource = sync.OnceValues(func() (string, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "istio.io/istio").Output()
	if err != nil {
		return "", fmt.Errorf("go list -m istio.io/istio: %v", err)
	}
	dir := strings.TrimSpace(string(out))
	if dir == "" {
		return "", fmt.Errorf("go list -m istio.io/istio: no directory (is the module downloaded?)")
	}
	return dir, nil
})

// crdValidator checks objects as the API server does with Istio's CRDs.
var crdValidator = sync.OnceValues(func() (*crdvalidation.Validator, error) {
	dir, err := istioSource()
	if err != nil {
		return nil, err
	}
	return crdvalidation.NewValidatorFromFiles(filepath.Join(dir, "manifests/charts/base/files/crd-all.gen.yaml"))
})

// admissionHandler is Istio's validating webhook as istiod registers it.
var admissionHandler = sync.OnceValues(func() (http.Handler, error) {
	mux := http.NewServeMux()
	if _, err := webhook.New(webhook.Options{
		Schemas:      collections.PilotGatewayAPI(),
		DomainSuffix: "cluster.local",
		Mux:          mux,
	}); err != nil {
		return nil, err
	}
	return mux, nil
})

// manifestObjects are the documents of a YAML stream, each with the
// namespace the API server would give it, decoded as the API server decodes
// them (integers stay integers, which CEL rules care about).
func manifestObjects(t *testing.T, text, namespace string) []*unstructured.Unstructured {
	t.Helper()
	dec := kubeyaml.NewYAMLOrJSONDecoder(strings.NewReader(withNamespace(t, text, namespace)), 1<<20)
	var out []*unstructured.Unstructured
	for {
		var raw json.RawMessage
		err := dec.Decode(&raw)
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("not YAML: %v", err)
		}
		if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
			continue
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(raw); err != nil {
			t.Fatalf("not a Kubernetes object: %v: %s", err, raw)
		}
		out = append(out, u)
	}
}

func resourceName(u *unstructured.Unstructured) string {
	return fmt.Sprintf("%s %s/%s", u.GetKind(), u.GetNamespace(), u.GetName())
}

// runValidation runs the three checks on every object of `text`.
func runValidation(t *testing.T, text, namespace string) validation {
	t.Helper()
	crds, err := crdValidator()
	if err != nil {
		t.Fatalf("Istio's CRDs: %v", err)
	}
	v := validation{checked: map[string]int{}}
	for _, u := range manifestObjects(t, text, namespace) {
		name := resourceName(u)
		add := func(check string, warnings []string, err error) {
			v.checked[check]++
			if err != nil {
				v.errors = append(v.errors, validationFinding{check, name, err.Error()})
			}
			for _, w := range warnings {
				v.warnings = append(v.warnings, validationFinding{check, name, w})
			}
		}
		g := u.GroupVersionKind()
		if _, known := collections.PilotGatewayAPI().FindByGroupKind(config.GroupVersionKind{Group: g.Group, Kind: g.Kind}); !known {
			t.Fatalf("%s: not a kind Istio validates", name)
		}
		add("crd", nil, crds.ValidateCustomResource(u))
		warnings, err := admit(t, u)
		add("webhook", warnings, err)
		warnings, err = istioctlValidate(u)
		add("istioctl-validate", warnings, err)
	}
	return v
}

// admit asks Istio's validating webhook about `u`, as the API server does
// on `kubectl apply`: an AdmissionReview over HTTP, here in process.
func admit(t *testing.T, u *unstructured.Unstructured) ([]string, error) {
	t.Helper()
	handler, err := admissionHandler()
	if err != nil {
		t.Fatalf("Istio's validation webhook: %v", err)
	}
	raw, err := json.Marshal(u.Object)
	if err != nil {
		t.Fatal(err)
	}
	g := u.GroupVersionKind()
	review := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID:       "validation-test",
			Kind:      metav1.GroupVersionKind{Group: g.Group, Version: g.Version, Kind: g.Kind},
			Namespace: u.GetNamespace(),
			Name:      u.GetName(),
			Operation: admissionv1.Create,
			Object:    runtime.RawExtension{Raw: raw},
		},
	}
	body, err := json.Marshal(review)
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodPost, "/validate", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	handler.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("the webhook answered %d: %s", rec.Code, rec.Body.String())
	}
	var answer admissionv1.AdmissionReview
	if err := json.Unmarshal(rec.Body.Bytes(), &answer); err != nil {
		t.Fatalf("the webhook's answer: %v: %s", err, rec.Body.String())
	}
	if answer.Response == nil {
		t.Fatalf("the webhook answered without a response: %s", rec.Body.String())
	}
	if !answer.Response.Allowed {
		message := "denied"
		if answer.Response.Result != nil {
			message = answer.Response.Result.Message
		}
		return answer.Response.Warnings, fmt.Errorf("%s", message)
	}
	return answer.Response.Warnings, nil
}

// istioctlValidate is what `istioctl validate` does with an Istio object:
// the top-level fields checked, the spec decoded strictly (an unknown field
// is an error, where the webhook would skip it), then the schema's
// ValidateConfig.
func istioctlValidate(u *unstructured.Unstructured) ([]string, error) {
	for key := range u.Object {
		switch key {
		case "apiVersion", "kind", "metadata", "spec", "status":
		default:
			return nil, fmt.Errorf("unknown field %q", key)
		}
	}
	g := u.GroupVersionKind()
	s, ok := collections.Pilot.FindByGroupVersionAliasesKind(resource.FromKubernetesGVK(&g))
	if !ok {
		return nil, fmt.Errorf("unknown kind %v", g)
	}
	js, err := json.Marshal(u.Object["spec"])
	if err != nil {
		return nil, err
	}
	spec, err := s.NewInstance()
	if err != nil {
		return nil, err
	}
	if err := config.ApplyJSONStrict(spec, string(js)); err != nil {
		return nil, fmt.Errorf("cannot parse proto message: %v", err)
	}
	warning, err := s.ValidateConfig(config.Config{
		Meta: config.Meta{
			GroupVersionKind: s.GroupVersionKind(),
			Name:             u.GetName(),
			Namespace:        u.GetNamespace(),
			Labels:           u.GetLabels(),
			Annotations:      u.GetAnnotations(),
		},
		Spec: spec,
	})
	var warnings []string
	if warning != nil {
		warnings = warningLines(warning)
	}
	return warnings, err
}

// warningLines are a validation.Warning's messages, one per wrapped error.
func warningLines(w error) []string {
	type wrapper interface{ WrappedErrors() []error }
	if m, ok := w.(wrapper); ok {
		var out []string
		for _, e := range m.WrappedErrors() {
			out = append(out, e.Error())
		}
		return out
	}
	return []string{w.Error()}
}

// TestValidation: no check refuses any object we ship or tap.sh applies;
// every warning is one we accept.
func TestValidation(t *testing.T) {
	used := make([]int, len(acceptedWarnings))
	total := map[string]int{}
	for _, f := range validatedForms(t) {
		v := runValidation(t, f.yaml, f.namespace)
		for check, n := range v.checked {
			total[check] += n
		}
		if len(v.checked) == 0 {
			t.Errorf("%s: no objects", f.name)
		}
		for _, e := range v.errors {
			t.Errorf("%s: %s", f.name, e)
		}
	warnings:
		for _, w := range v.warnings {
			for i, a := range acceptedWarnings {
				if strings.HasPrefix(w.resource, a.kind+" ") && strings.HasPrefix(w.text, a.text) {
					used[i]++
					continue warnings
				}
			}
			t.Errorf("%s: a warning not in acceptedWarnings (fix it, or accept it there and in README.md): %s", f.name, w)
		}
	}
	for i, a := range acceptedWarnings {
		if used[i] == 0 {
			t.Errorf("an accepted warning that no longer appears (remove it here and in README.md): %s: %s", a.kind, a.text)
		} else {
			t.Logf("accepted warning, %d times: %s: %s", used[i], a.kind, a.text)
		}
	}
	checks := []string{}
	for c, n := range total {
		checks = append(checks, fmt.Sprintf("%s %d", c, n))
	}
	sort.Strings(checks)
	t.Logf("objects checked: %s", strings.Join(checks, ", "))
}

// setSpecField returns `text` with spec.<field> set to `value` in the
// objects of kind `kind`.
func setSpecField(t *testing.T, text, namespace, kind, field string, value any) string {
	t.Helper()
	var docs []string
	changed := 0
	for _, u := range manifestObjects(t, text, namespace) {
		if u.GetKind() == kind {
			if err := unstructured.SetNestedField(u.Object, value, "spec", field); err != nil {
				t.Fatal(err)
			}
			changed++
		}
		b, err := json.Marshal(u.Object)
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, string(b))
	}
	if changed == 0 {
		t.Fatalf("no %s to change", kind)
	}
	return strings.Join(docs, "\n---\n")
}

// formNamed is the shipped form from envoyfilters/<name>.
func formNamed(t *testing.T, name string) form {
	t.Helper()
	for _, f := range shippedForms(t) {
		if f.name == name {
			return f
		}
	}
	t.Fatalf("no form %s", name)
	return form{}
}

// TestValidationRefusesUnknownField: the checks bite. A WasmPlugin and a
// TrafficExtension with a field their API does not have (spec.bogus) are
// refused by the API server's schema and by istioctl validate. The webhook
// alone lets it through (it decodes leniently; the API server's schema is
// what refuses unknown fields), so it is not asserted on for this case.
func TestValidationRefusesUnknownField(t *testing.T) {
	for _, c := range []struct{ form, kind string }{
		{"wasmplugin/tap_http.yaml", "WasmPlugin"},
		{"trafficextension/tap_http.yaml", "TrafficExtension"},
	} {
		f := formNamed(t, c.form)
		if v := runValidation(t, f.yaml, f.namespace); len(v.errors) > 0 {
			t.Fatalf("%s is refused before the change: %v", c.form, v.errors)
		}
		v := runValidation(t, setSpecField(t, f.yaml, f.namespace, c.kind, "bogus", int64(1)), f.namespace)
		refused := map[string]bool{}
		for _, e := range v.errors {
			if strings.Contains(e.resource, c.kind+" ") && strings.Contains(e.text, "bogus") {
				refused[e.check] = true
			}
			t.Logf("%s with spec.bogus: %s", c.form, e)
		}
		for _, check := range []string{"crd", "istioctl-validate"} {
			if !refused[check] {
				t.Errorf("%s with spec.bogus: %s did not refuse it (errors: %v)", c.form, check, v.errors)
			}
		}
	}
}

// TestValidationWebhookRefusesBadValue: the webhook's own validation
// bites: a WasmPlugin whose module URL has a scheme Istio does not fetch.
func TestValidationWebhookRefusesBadValue(t *testing.T) {
	f := formNamed(t, "wasmplugin/tap_http.yaml")
	v := runValidation(t, setSpecField(t, f.yaml, f.namespace, "WasmPlugin", "url", "ftp://example.com/tap_http.wasm"), f.namespace)
	refused := map[string]bool{}
	for _, e := range v.errors {
		if strings.Contains(e.text, "unsupported scheme") {
			refused[e.check] = true
		}
	}
	for _, check := range []string{"webhook", "istioctl-validate"} {
		if !refused[check] {
			t.Errorf("%s did not refuse url ftp://... (errors: %v)", check, v.errors)
		}
	}
}
