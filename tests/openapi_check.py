#!/usr/bin/env python3
"""Checks JSON bodies the server sent against the schemas of openapi.yaml.

usage: openapi_check.py OPENAPI.yaml LIST
LIST has one line per body: "SCHEMA FILE LABEL..." (SCHEMA names an entry of
components/schemas).  Prints "ok - LABEL" or "FAIL - LABEL: reason" per line;
exits 1 if any failed, 2 on usage errors or missing modules.
"""
import json
import sys

try:
    import yaml
    from openapi_schema_validator import OAS30Validator, OAS31Validator
except ImportError as error:
    print("openapi_check: %s (pip install openapi-spec-validator)" % error)
    sys.exit(2)


def inline_refs(node, schemas, depth=0):
    """Replaces every {"$ref": "#/components/schemas/X"} by X itself, so each
    schema validates standalone (the document's schemas have no cycles)."""
    if depth > 50:
        raise ValueError("schema nesting too deep (a $ref cycle?)")
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            return inline_refs(schemas[ref.rsplit("/", 1)[1]], schemas, depth + 1)
        return {key: inline_refs(value, schemas, depth + 1) for key, value in node.items()}
    if isinstance(node, list):
        return [inline_refs(value, schemas, depth + 1) for value in node]
    return node


def main():
    if len(sys.argv) != 3:
        print(__doc__.strip())
        return 2
    with open(sys.argv[1], encoding="utf-8") as stream:
        document = yaml.safe_load(stream)
    schemas = document["components"]["schemas"]
    validator = OAS31Validator if str(document["openapi"]).startswith("3.1") else OAS30Validator
    failed = 0
    with open(sys.argv[2], encoding="utf-8") as listing:
        for line in listing:
            fields = line.split(None, 2)
            if len(fields) < 3:
                continue
            name, path, label = fields[0], fields[1], fields[2].strip()
            try:
                with open(path, encoding="utf-8") as stream:
                    instance = json.load(stream)
                schema = inline_refs(schemas[name], schemas)
                errors = sorted(validator(schema).iter_errors(instance), key=str)
            except (OSError, ValueError, KeyError) as error:
                errors = [error]
            if errors:
                failed += 1
                first = errors[0]
                where = "/".join(str(part) for part in getattr(first, "absolute_path", []))
                reason = getattr(first, "message", str(first))
                print("FAIL - %s matches %s: at '%s': %s" % (label, name, where, reason[:300]))
            else:
                print("ok   - %s matches %s" % (label, name))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
