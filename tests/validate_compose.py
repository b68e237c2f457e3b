"""Validates Compose documents against the Compose Specification JSON schema.

Usage: validate_compose.py SCHEMA < documents.json

stdin holds one JSON object mapping a name to a Compose document (the test
parses the YAML; this virtualenv has no YAML parser). Prints one JSON object:
{"validator": <class name>, "errors": {name: [message, ...]}}. The validator
class is the one the schema's own `$schema` names, so a schema that moves to
another draft is read by that draft's rules, not by whatever is the default.
"""

import json
import sys

from jsonschema import validators


def validator_for(uri: str):
    """The validator class of the draft `uri` names.

    The Compose schema names its draft by an https URL, and jsonschema lists
    the drafts under their canonical http URLs only, so the scheme is
    normalised before the lookup; an unknown draft still finds nothing.
    """
    if uri.startswith("https://json-schema.org/"):
        uri = "http://" + uri[len("https://"):]
    return validators.validator_for({"$schema": uri}, default=None)


def main() -> int:
    with open(sys.argv[1], encoding="utf-8") as f:
        schema = json.load(f)
    cls = validator_for(schema.get("$schema", ""))
    if cls is None:
        print(f"no validator for $schema {schema.get('$schema')!r}", file=sys.stderr)
        return 2
    # A schema the validator itself rejects would make every verdict meaningless.
    cls.check_schema(schema)
    validator = cls(schema, format_checker=cls.FORMAT_CHECKER)
    documents = json.load(sys.stdin)
    errors = {}
    for name, document in documents.items():
        errors[name] = [
            f"{'/'.join(str(p) for p in e.absolute_path) or '(top)'}: {e.message}"
            for e in sorted(validator.iter_errors(document), key=lambda e: list(map(str, e.absolute_path)))
        ]
    json.dump({"validator": cls.__name__, "errors": errors}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
