"""Validates Kubernetes objects against CustomResourceDefinitions the way the
API server does with strict field validation (`kubectl apply
--validate=strict`): the OpenAPI v3 schema of the served version, unknown
fields as errors (Kubernetes would otherwise prune them silently), and the
CEL rules (`x-kubernetes-validations`).

usage: validate_k8s.py CRDS.yaml MANIFEST.yaml...
Prints one line per object: `ok <file> <kind>/<name>` or
`error <file> <kind>/<name>: <where>: <what>`; exits 1 if any object fails.
"""

import sys
from urllib.parse import urlparse

import celpy
import celpy.celtypes as celtypes
import jsonschema
import yaml


def to_json_schema(schema):
    """Kubernetes' structural schema as JSON Schema: objects with declared
    properties accept no other field unless they preserve unknown fields."""
    if isinstance(schema, list):
        return [to_json_schema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {
        k: to_json_schema(v)
        for k, v in schema.items()
        if not k.startswith("x-kubernetes-") and k != "nullable"
    }
    if schema.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = out.get("anyOf", []) + [{"type": "integer"}, {"type": "string"}]
    if schema.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    if (
        schema.get("type") == "object"
        and not schema.get("x-kubernetes-preserve-unknown-fields")
        and "additionalProperties" not in schema
    ):
        out["additionalProperties"] = False
    return out


# Kubernetes' CEL URL library (k8s.io/apiserver/pkg/cel/library/urls.go):
# isURL accepts an absolute URI or an absolute path (Go's url.ParseRequestURI).
def is_url(value):
    text = str(value)
    parsed = urlparse(text)
    absolute = bool(parsed.scheme) and (bool(parsed.netloc) or parsed.path.startswith("/"))
    return celtypes.BoolType(absolute or text.startswith("/"))


def url(value):
    return celtypes.StringType(str(value))


def get_scheme(value):
    return celtypes.StringType(urlparse(str(value)).scheme)


CEL = celpy.Environment()
CEL_FUNCTIONS = {"isURL": is_url, "url": url, "getScheme": get_scheme}


def cel_errors(schema, value, where):
    """Evaluates every CEL rule of `schema` and of the schemas below it that
    `value` reaches."""
    if not isinstance(schema, dict) or value is None:
        return
    for rule in schema.get("x-kubernetes-validations") or []:
        program = CEL.program(CEL.compile(rule["rule"]), functions=CEL_FUNCTIONS)
        if not program.evaluate({"self": celpy.json_to_cel(value)}):
            yield f"{where}: {rule.get('message', rule['rule'])}"
    if isinstance(value, dict):
        properties = schema.get("properties") or {}
        for key, item in value.items():
            sub = properties.get(key, schema.get("additionalProperties"))
            yield from cel_errors(sub, item, f"{where}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from cel_errors(schema.get("items"), item, f"{where}[{i}]")


def load_crds(path):
    crds = {}
    for crd in yaml.safe_load_all(open(path)):
        if not crd:
            continue
        group = crd["spec"]["group"]
        kind = crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            if version.get("served"):
                crds[(f"{group}/{version['name']}", kind)] = version["schema"]["openAPIV3Schema"]
    return crds


def errors_of(crds, obj):
    key = (obj.get("apiVersion"), obj.get("kind"))
    schema = crds.get(key)
    if schema is None:
        yield f"apiVersion {key[0]} kind {key[1]} is not served"
        return
    # The API server checks apiVersion, kind and metadata (ObjectMeta) itself;
    # the CRD schema covers the rest.
    own = ("apiVersion", "kind", "metadata")
    body = {k: v for k, v in obj.items() if k not in own}
    props = {k: v for k, v in schema.get("properties", {}).items() if k not in own}
    checked = dict(schema, properties=props)
    validator = jsonschema.Draft4Validator(to_json_schema(checked))
    for error in sorted(validator.iter_errors(body), key=lambda e: list(e.path)):
        where = ".".join(str(p) for p in error.path) or "(top)"
        yield f"{where}: {error.message}"
    yield from cel_errors(checked, body, "(top)")


def main():
    crds = load_crds(sys.argv[1])
    failed = False
    for path in sys.argv[2:]:
        for obj in yaml.safe_load_all(open(path)):
            if not obj:
                continue
            name = f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
            errors = list(errors_of(crds, obj))
            for error in errors:
                print(f"error {path} {name}: {error}")
            if not errors:
                print(f"ok {path} {name}")
            failed = failed or bool(errors)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
