#!/usr/bin/python3
"""Checks jobwarden's Sigma rules (docs/integrations/sigma/*.yml) and runs them.

usage:
  check_sigma.py rules RULES_DIR SCHEMA EVENTS_MD SAMPLES
  check_sigma.py match RULES_DIR SCHEMA EVENTS_MD EVENTS_DIR

`rules` (CTest native.sigma.rules):
  (a) every file is a Sigma rule: valid YAML (UTF-8, LF, no duplicate keys),
      Sigma's required keys (title, logsource, detection with a condition)
      and the recommended ones the project uses (id, status, description,
      author, date, tags where the rule catalog has ATT&CK techniques,
      falsepositives, level), with the values the Sigma specification allows
      (status / level enums, a UUID v4 id unique across the rules, dates
      YYYY-MM-DD, tags of Sigma's namespaces, ATT&CK tactics as Sigma v2
      spells them), a file name as the specification recommends, the
      logsource product jobwarden / service events, a condition that names
      only defined selections and uses every one;
  (b) every field a detection or `fields` list names exists in the event
      schema (a dotted path through its properties, $ref / oneOf included),
      every value of a field the schema enumerates is one it allows (for
      `rule` and `rule_id`: one of docs/events.md's Rules table), every
      `tags` value is one the catalog gives, and a rule that selects a
      rule_id carries that catalog row's ATT&CK tags;
  (c) the evaluator (sigma_eval.py) passes its own unit cases, and every
      rule gives exactly the expected answer on each hand-written event of
      SAMPLES (each event validated against the schema first).

`match` (CTest wine.sigma.match): runs every rule over every *.jsonl file
the Windows tests wrote and checks, per rule, the expectations in
WINE_EXPECTATIONS below (derived from the tests that write those files).

Prints one line per problem and a summary; exits 0 when all is well, 1 on a
problem, 2 on a usage error. Debian's /usr/bin/python3 with python3-yaml
and python3-jsonschema; no pySigma (not packaged in Debian).
"""

import datetime
import fnmatch
import glob
import json
import os
import re
import sys
import uuid

try:
    import yaml
    from jsonschema import Draft202012Validator
except ImportError:  # pragma: no cover - environment problem
    sys.stderr.write("check_sigma: needs python3-yaml and python3-jsonschema\n")
    sys.exit(2)

# No __pycache__ in the source tree when CTest runs this.
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sigma_eval  # noqa: E402  pylint: disable=wrong-import-position
from sigma_eval import Detection, SigmaError  # noqa: E402

# The Sigma rules specification 2.0.0 (SigmaHQ/sigma-specification,
# specification/sigma-rules-specification.md and json-schema/
# sigma-detection-rule-schema.json) and its tags appendix (2.1.0).
SIGMA_KEYS = {"title", "id", "name", "related", "taxonomy", "status", "description", "license",
              "references", "author", "date", "modified", "logsource", "detection", "fields",
              "falsepositives", "level", "tags", "scope"}
STATUS = {"stable", "test", "experimental", "deprecated", "unsupported"}
LEVEL = {"informational", "low", "medium", "high", "critical"}
TAG = re.compile(r"^[a-z0-9_-]+\.[a-z0-9._-]+$")
TAG_NAMESPACES = {"attack", "car", "cve", "d3fend", "detection", "stp", "tlp"}
ATTACK_TACTICS = {"initial-access", "execution", "persistence", "privilege-escalation",
                  "defense-evasion", "credential-access", "discovery", "lateral-movement",
                  "collection", "exfiltration", "command-and-control", "impact",
                  "reconnaissance", "resource-development"}
ATTACK_ID = re.compile(r"^(t[0-9]{4}(\.[0-9]{3})?|g[0-9]{4}|s[0-9]{4}|ds[0-9]{4}|m[0-9]{4}|a[0-9]{4})$")
TECHNIQUE = re.compile(r"^attack\.t[0-9]{4}(\.[0-9]{3})?$")
DETECTION_TAGS = {"dfir", "emerging-threats", "threat-hunting"}
TLP_TAGS = {"red", "amber", "amber-strict", "green", "clear"}
DATE = re.compile(r"^[0-9]{4}-(0[1-9]|1[012])-(0[1-9]|[12][0-9]|3[01])$")
FILE_NAME = re.compile(r"^[a-z0-9_]+\.yml$")
# The project's logsource (docs/integrations/sigma/README.md).
LOGSOURCE = {"product": "jobwarden", "service": "events"}
PROJECT_REQUIRED = ("id", "status", "description", "author", "date", "falsepositives", "level")


class Problems:
    def __init__(self):
        self.items = []
        self.checks = 0

    def check(self, ok, where, text):
        self.checks += 1
        if not ok:
            self.items.append("%s: %s" % (where, text))
        return ok

    def add(self, where, text):
        self.check(False, where, text)


# ---------------------------------------------------------------- loading


class StrictLoader(yaml.SafeLoader):  # pylint: disable=too-many-ancestors
    """SafeLoader that refuses duplicate keys (PyYAML keeps the last one
    silently: a repeated field in a selection would drop a condition)."""


def _mapping(loader, node, deep=False):
    seen = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, "duplicate key %r" % (key,), key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def load_yaml(path, problems):
    with open(path, "rb") as handle:
        raw = handle.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        problems.add(path, "not UTF-8: %s" % exc)
        return None
    problems.check(b"\r" not in raw, path, "CR in the file (the specification asks for LF line ends)")
    problems.check("\t" not in text, path, "a tab in the file (YAML indents with spaces)")
    try:
        return yaml.load(text, Loader=StrictLoader)  # nosec - SafeLoader subclass
    except yaml.YAMLError as exc:
        problems.add(path, "not valid YAML: %s" % str(exc).replace("\n", " "))
        return None


def load_catalog(events_md):
    """docs/events.md's Rules table: rule -> {id, tags, techniques, text}."""
    with open(events_md, encoding="utf-8") as handle:
        text = handle.read()
    start = text.index("\n## Rules\n")
    end = text.index("\n## ", start + 1)
    catalog = {}
    for line in text[start:end].splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 5 or not cells[0].startswith("`") or not re.match(r"^JW-[0-9]{4}$", cells[1]):
            continue
        rule = cells[0].strip("`")
        rule_id = cells[1]
        tags = re.findall(r"`([a-z][a-z0-9_.]*)`", cells[4])
        # Techniques anywhere in the row; a sub-technique written short
        # (`attack.t1059.003` cmd, `.001` PowerShell) belongs to the one before.
        techniques = set()
        last = None
        for tok in re.findall(r"`([^`]+)`", line):
            m = re.match(r"^attack\.(t[0-9]{4})(\.[0-9]{3})?$", tok)
            if m:
                last = m.group(1)
                techniques.add(tok)
            elif last and re.match(r"^\.[0-9]{3}$", tok):
                techniques.add("attack.%s%s" % (last, tok))
        catalog[rule] = {"id": rule_id, "tags": tags, "techniques": techniques, "row": line}
    if len(catalog) < 20:
        raise ValueError("%s: the Rules table has only %d rows" % (events_md, len(catalog)))
    return catalog


def load_schema(path):
    with open(path, encoding="utf-8") as handle:
        schema = json.load(handle)
    Draft202012Validator.check_schema(schema)
    return schema


# ------------------------------------------------------ the event schema


def resolve(schema, node):
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        if not ref.startswith("#/"):
            raise ValueError("external $ref %r" % ref)
        node = schema
        for part in ref[2:].split("/"):
            node = node[part]
    return node


def branches(schema, node):
    """The node and every oneOf / anyOf / allOf branch, $refs resolved."""
    node = resolve(schema, node)
    out = [node]
    if isinstance(node, dict):
        for key in ("oneOf", "anyOf", "allOf"):
            for sub in node.get(key, []):
                out.extend(branches(schema, sub))
    return out


def schema_leaves(schema, path):
    """The schema nodes a dotted path can reach in an event; [] when none."""
    nodes = [schema["$defs"]["event"]]
    for part in path.split("."):
        nxt = []
        for node in nodes:
            for b in branches(schema, node):
                if not isinstance(b, dict):
                    continue
                if b.get("type") == "array" and "items" in b:
                    b = resolve(schema, b["items"])
                props = b.get("properties", {})
                if part in props:
                    nxt.append(props[part])
        nodes = nxt
        if not nodes:
            return []
    return nodes


def allowed_values(schema, leaves):
    """The values the leaves allow (enum / const, arrays: their items'), or
    None when one of them allows any value of its type."""
    values = []
    for leaf in leaves:
        found = False
        any_value = False
        for b in branches(schema, leaf):
            if not isinstance(b, dict):
                continue
            if b.get("type") == "array" and "items" in b:
                sub = allowed_values(schema, [b["items"]])
                if sub is None:
                    any_value = True
                else:
                    values.extend(sub)
                    found = True
                continue
            if "enum" in b:
                values.extend(b["enum"])
                found = True
            elif "const" in b:
                values.append(b["const"])
                found = True
            elif "type" in b:
                any_value = True
        if any_value or not found:
            return None
    return values


def leaf_types(schema, leaves):
    types = set()
    for leaf in leaves:
        for b in branches(schema, leaf):
            if isinstance(b, dict):
                t = b.get("type")
                if isinstance(t, list):
                    types.update(t)
                elif t:
                    types.add(t)
                if "const" in b:
                    types.add(type_name(b["const"]))
                for v in b.get("enum", []):
                    types.add(type_name(v))
    if "array" in types:
        types.add("string")  # tags: the elements are matched
    return types


def type_name(v):
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, float):
        return "number"
    return "string"


# ------------------------------------------------------------ rule checks


def check_tags(where, tags, problems):
    if not problems.check(isinstance(tags, list) and tags, where, "tags must be a non-empty list"):
        return
    problems.check(len(set(tags)) == len(tags), where, "tags repeat a value")
    for tag in tags:
        if not problems.check(isinstance(tag, str) and TAG.match(tag), where,
                              "tag %r is not a Sigma tag (lowercase namespace.value)" % (tag,)):
            continue
        ns, value = tag.split(".", 1)
        if not problems.check(ns in TAG_NAMESPACES, where, "tag %r: unknown namespace %r" % (tag, ns)):
            continue
        if ns == "attack":
            problems.check(value in ATTACK_TACTICS or ATTACK_ID.match(value), where,
                           "tag %r is neither an ATT&CK tactic as Sigma v2 spells it "
                           "(e.g. attack.defense-evasion) nor a technique / group / software id" % tag)
        elif ns == "detection":
            problems.check(value in DETECTION_TAGS, where, "tag %r: unknown detection tag" % tag)
        elif ns == "tlp":
            problems.check(value in TLP_TAGS, where, "tag %r: unknown TLP level" % tag)


def as_date(value):
    """A YAML date (PyYAML reads 2026-12-02 as a date) or 'YYYY-MM-DD'."""
    if isinstance(value, datetime.datetime):
        return None
    if isinstance(value, datetime.date):
        return value
    if isinstance(value, str) and DATE.match(value):
        try:
            return datetime.date.fromisoformat(value)
        except ValueError:
            return None
    return None


def check_rule(path, rule, schema, catalog, problems, seen):
    """(a) and (b) for one parsed rule. Returns its Detection or None."""
    name = os.path.basename(path)
    problems.check(FILE_NAME.match(name) and 10 <= len(name) <= 70, path,
                   "file name: lowercase letters, digits and _, .yml, 10 to 70 characters")
    if not problems.check(isinstance(rule, dict), path, "not a YAML map"):
        return None
    for key in rule:
        problems.check(key in SIGMA_KEYS, path, "key %r is not a Sigma rule attribute" % (key,))
    for key in ("title", "logsource", "detection"):
        problems.check(key in rule, path, "missing required key %r" % key)
    for key in PROJECT_REQUIRED:
        problems.check(key in rule, path, "missing key %r (the project requires it)" % key)

    title = rule.get("title")
    if problems.check(isinstance(title, str) and 0 < len(title) <= 256, path,
                      "title must be a string of 1 to 256 characters"):
        problems.check(title not in seen["title"], path, "title %r also in %s" % (title, seen["title"].get(title)))
        seen["title"][title] = path
    if "id" in rule:
        rid = rule["id"]
        try:
            parsed = uuid.UUID(str(rid))
            problems.check(str(parsed) == rid and parsed.version == 4, path,
                           "id %r is not a lowercase UUID version 4" % (rid,))
        except ValueError:
            problems.add(path, "id %r is not a UUID" % (rid,))
        problems.check(rid not in seen["id"], path, "id %s also in %s" % (rid, seen["id"].get(rid)))
        seen["id"][rid] = path
    if "status" in rule:
        problems.check(rule["status"] in STATUS, path, "status %r not in %s" % (rule["status"], sorted(STATUS)))
    if "level" in rule:
        problems.check(rule["level"] in LEVEL, path, "level %r not in %s" % (rule["level"], sorted(LEVEL)))
    if "description" in rule:
        d = rule["description"]
        problems.check(isinstance(d, str) and 0 < len(d) <= 65535, path, "description must be a non-empty string")
    if "author" in rule:
        problems.check(rule["author"] == "jobwarden", path, "author must be 'jobwarden'")
    if "references" in rule:
        refs = rule["references"]
        if problems.check(isinstance(refs, list) and refs, path, "references must be a non-empty list"):
            problems.check(len(set(map(str, refs))) == len(refs), path, "references repeat")
            for ref in refs:
                problems.check(isinstance(ref, str) and re.match(r"^https://\S+$", ref), path,
                               "reference %r is not an https URL" % (ref,))
    dates = {}
    for key in ("date", "modified"):
        if key in rule:
            dates[key] = as_date(rule[key])
            problems.check(dates[key] is not None, path, "%s %r is not a date YYYY-MM-DD" % (key, rule[key]))
    if dates.get("date") and dates.get("modified"):
        problems.check(dates["modified"] >= dates["date"], path, "modified is before date")
    fp = rule.get("falsepositives")
    if "falsepositives" in rule:
        ok = (isinstance(fp, str) and len(fp) >= 2) or (
            isinstance(fp, list) and fp and all(isinstance(x, str) and len(x) >= 2 for x in fp))
        problems.check(ok, path, "falsepositives must be a string or a list of strings (2+ characters)")
    if "tags" in rule:
        check_tags(path, rule["tags"], problems)
    ls = rule.get("logsource")
    if problems.check(isinstance(ls, dict), path, "logsource must be a map"):
        for key, value in LOGSOURCE.items():
            problems.check(ls.get(key) == value, path, "logsource.%s must be %r" % (key, value))
        for key in ls:
            problems.check(key in ("category", "product", "service", "definition"), path,
                           "logsource.%s is not a Sigma logsource attribute" % key)
            problems.check(isinstance(ls[key], str), path, "logsource.%s must be a string" % key)

    try:
        det = Detection(rule.get("detection"))
    except SigmaError as exc:
        problems.add(path, "detection: %s" % exc)
        return None
    for name_ in det.searches:
        problems.check(name_ in det.referenced, path, "selection %r is not used by the condition" % name_)

    # (b) fields and values against the event schema and the catalog.
    rule_ids = set()
    for field, mods, values in det.fields():
        leaves = schema_leaves(schema, field)
        if not problems.check(leaves, path, "field %r is not in the event schema" % field):
            continue
        if "exists" in mods:
            continue
        types = leaf_types(schema, leaves)
        for v in values:
            if v is None:
                continue
            t = type_name(v)
            problems.check(t in types or (t == "string" and mods), path,
                           "field %r: value %r (%s) but the schema has %s" % (field, v, t, sorted(types)))
        if field == "rule":
            allowed = sorted(catalog)
        elif field == "rule_id":
            allowed = sorted(r["id"] for r in catalog.values())
            rule_ids.update(v for v in values if isinstance(v, str))
        elif field == "tags":
            allowed = sorted({t for r in catalog.values() for t in r["tags"]} |
                             {t for r in catalog.values() for t in r["techniques"]})
        else:
            allowed = allowed_values(schema, leaves)
        if allowed is None:
            continue
        for v in values:
            if v is None:
                continue
            hit = any(sigma_eval.match_value(a, v, mods) for a in allowed)
            problems.check(hit, path, "field %r: %r matches no value the schema / catalog allows (%s)"
                           % (field, v, ", ".join(map(str, allowed))[:300]))
    for field in rule.get("fields", []) or []:
        problems.check(isinstance(field, str) and schema_leaves(schema, field), path,
                       "fields: %r is not in the event schema" % (field,))

    # The catalog's ATT&CK tags of the rules it selects are the rule's too
    # (the native events spell the tactic attack.defense_evasion, Sigma v2
    # attack.defense-evasion).
    by_id = {r["id"]: r for r in catalog.values()}
    tags = set(rule.get("tags") or [])
    for rid in sorted(rule_ids):
        row = by_id.get(rid)
        if row is None:
            continue
        for tech in sorted(row["techniques"]):
            problems.check(tech in tags, path, "rule_id %s has %s in the catalog; the rule's tags lack it" % (rid, tech))
        for tag in row["tags"]:
            if tag.startswith("attack.") and not TECHNIQUE.match(tag):
                sigma_tag = tag.replace("_", "-")
                problems.check(sigma_tag in tags, path,
                               "rule_id %s has %s in the catalog; the rule's tags lack %s" % (rid, tag, sigma_tag))
    return det


def load_rules(rules_dir, schema, catalog, problems):
    paths = sorted(glob.glob(os.path.join(rules_dir, "*.yml")))
    problems.check(paths, rules_dir, "no *.yml rule")
    for extra in sorted(glob.glob(os.path.join(rules_dir, "*.yaml"))):
        problems.add(extra, "Sigma rules use the .yml extension")
    seen = {"id": {}, "title": {}}
    rules = {}
    for path in paths:
        rule = load_yaml(path, problems)
        if rule is None:
            continue
        det = check_rule(path, rule, schema, catalog, problems, seen)
        if det is not None:
            rules[os.path.basename(path)[:-4]] = det
    return rules


# ---------------------------------------------------- evaluator unit cases

EV = {
    "event": "sandbox.violation",
    "rule": "image_denied",
    "rule_id": "JW-1103",
    "seq": 7,
    "tags": ["jobwarden.monitor_rule", "attack.t1059.003"],
    "process": {"executable": "C:\\Windows\\System32\\CMD.EXE", "is_root": False, "pid": 42,
                "status": None},
    "message": "a*b?c\\d",
}

# (name, detection, event, expected); expected None: SigmaError when loaded.
UNIT_CASES = [
    ("equality", {"s": {"rule": "image_denied"}, "condition": "s"}, EV, True),
    ("equality is case-insensitive", {"s": {"rule": "IMAGE_Denied"}, "condition": "s"}, EV, True),
    ("equality is whole-value", {"s": {"rule": "image"}, "condition": "s"}, EV, False),
    ("map is AND", {"s": {"rule": "image_denied", "rule_id": "JW-1104"}, "condition": "s"}, EV, False),
    ("list is OR", {"s": {"rule_id": ["JW-1104", "JW-1103"]}, "condition": "s"}, EV, True),
    ("list is OR, none", {"s": {"rule_id": ["JW-1104", "JW-1105"]}, "condition": "s"}, EV, False),
    ("list of maps is OR", {"s": [{"rule": "x"}, {"seq": 7}], "condition": "s"}, EV, True),
    ("wildcard *", {"s": {"rule": "image_*"}, "condition": "s"}, EV, True),
    ("wildcard ?", {"s": {"rule_id": "JW-11?3"}, "condition": "s"}, EV, True),
    ("wildcard ? is one character", {"s": {"rule_id": "JW-1?3"}, "condition": "s"}, EV, False),
    ("escaped * is literal", {"s": {"message": "a\\*b\\?c\\d"}, "condition": "s"}, EV, True),
    ("escaped * does not wildcard", {"s": {"message": "a\\*\\?c\\d"}, "condition": "s"}, EV, False),
    ("plain backslash is literal", {"s": {"process.executable": "C:\\Windows\\System32\\cmd.exe"},
                                    "condition": "s"}, EV, True),
    ("endswith", {"s": {"process.executable|endswith": "\\cmd.exe"}, "condition": "s"}, EV, True),
    ("endswith needs the backslash", {"s": {"process.executable|endswith": "\\md.exe"},
                                      "condition": "s"}, EV, False),
    ("startswith", {"s": {"process.executable|startswith": "c:\\windows\\"}, "condition": "s"}, EV, True),
    ("startswith, no", {"s": {"process.executable|startswith": "\\windows"}, "condition": "s"}, EV, False),
    ("contains", {"s": {"process.executable|contains": "system32"}, "condition": "s"}, EV, True),
    ("contains list OR", {"s": {"process.executable|contains": ["syswow64", "system32"]},
                          "condition": "s"}, EV, True),
    ("contains|all", {"s": {"process.executable|contains|all": ["system32", "cmd"]},
                      "condition": "s"}, EV, True),
    ("contains|all, one missing", {"s": {"process.executable|contains|all": ["system32", "pwsh"]},
                                   "condition": "s"}, EV, False),
    ("re searches, case-sensitive", {"s": {"process.executable|re": "System32\\\\CMD"},
                                     "condition": "s"}, EV, True),
    ("re is case-sensitive", {"s": {"process.executable|re": "system32"}, "condition": "s"}, EV, False),
    ("exists true", {"s": {"process.pid|exists": True}, "condition": "s"}, EV, True),
    ("exists true, absent", {"s": {"process.exit_code|exists": True}, "condition": "s"}, EV, False),
    ("exists false, absent", {"s": {"reader|exists": False}, "condition": "s"}, EV, True),
    ("null matches absent", {"s": {"enforcer": None}, "condition": "s"}, EV, True),
    ("null matches JSON null", {"s": {"process.status": None}, "condition": "s"}, EV, True),
    ("null does not match a value", {"s": {"rule": None}, "condition": "s"}, EV, False),
    ("integer", {"s": {"seq": 7}, "condition": "s"}, EV, True),
    ("integer, other", {"s": {"seq": 8}, "condition": "s"}, EV, False),
    ("boolean", {"s": {"process.is_root": False}, "condition": "s"}, EV, True),
    ("boolean is not the string", {"s": {"process.is_root": "false"}, "condition": "s"}, EV, False),
    ("missing path", {"s": {"reader.reason": "in_job"}, "condition": "s"}, EV, False),
    ("path through a scalar", {"s": {"rule.name": "x"}, "condition": "s"}, EV, False),
    ("array element", {"s": {"tags": "attack.t1059.003"}, "condition": "s"}, EV, True),
    ("array, no element", {"s": {"tags": "attack.t1059.001"}, "condition": "s"}, EV, False),
    ("array, list OR", {"s": {"tags": ["attack.t1059.001", "attack.t1059.003"]}, "condition": "s"}, EV, True),
    ("not", {"s": {"rule": "x"}, "condition": "not s"}, EV, True),
    ("and not", {"s": {"rule": "image_denied"}, "f": {"seq": 7}, "condition": "s and not f"}, EV, False),
    ("precedence: and before or", {"a": {"seq": 7}, "b": {"rule": "x"}, "c": {"rule": "y"},
                                   "condition": "a or b and c"}, EV, True),
    ("parentheses", {"a": {"seq": 7}, "b": {"rule": "x"}, "c": {"rule": "y"},
                     "condition": "(a or b) and c"}, EV, False),
    ("not binds tighter than and", {"a": {"seq": 7}, "b": {"rule": "x"},
                                    "condition": "not b and a"}, EV, True),
    ("1 of pattern", {"sel_a": {"rule": "x"}, "sel_b": {"seq": 7}, "condition": "1 of sel_*"}, EV, True),
    ("all of pattern", {"sel_a": {"rule": "x"}, "sel_b": {"seq": 7}, "condition": "all of sel_*"}, EV, False),
    ("all of pattern, all", {"sel_a": {"rule": "image_denied"}, "sel_b": {"seq": 7},
                             "condition": "all of sel_*"}, EV, True),
    ("1 of them skips _names", {"_x": {"seq": 7}, "s": {"rule": "x"}, "condition": "1 of them"}, EV, False),
    ("all of them", {"a": {"seq": 7}, "b": {"rule": "image_denied"}, "condition": "all of them"}, EV, True),
    ("not 1 of", {"f_a": {"rule": "x"}, "f_b": {"rule": "y"}, "s": {"seq": 7},
                  "condition": "s and not 1 of f_*"}, EV, True),
    ("condition list is OR", {"a": {"rule": "x"}, "b": {"seq": 7}, "condition": ["a", "b"]}, EV, True),
    ("error: undefined identifier", {"s": {"seq": 7}, "condition": "s and t"}, EV, None),
    ("error: pattern names nothing", {"s": {"seq": 7}, "condition": "1 of x*"}, EV, None),
    ("error: pattern without 'of'", {"s": {"seq": 7}, "condition": "s*"}, EV, None),
    ("error: trailing token", {"s": {"seq": 7}, "condition": "s s"}, EV, None),
    ("error: unbalanced", {"s": {"seq": 7}, "condition": "(s"}, EV, None),
    ("error: empty condition", {"s": {"seq": 7}, "condition": ""}, EV, None),
    ("error: no condition", {"s": {"seq": 7}}, EV, None),
    ("error: unsupported modifier", {"s": {"rule|base64": "x"}, "condition": "s"}, EV, None),
    ("error: two match modifiers", {"s": {"rule|contains|endswith": "x"}, "condition": "s"}, EV, None),
    ("error: keyword list", {"s": ["image_denied"], "condition": "s"}, EV, None),
    ("error: exists needs a boolean", {"s": {"rule|exists": "yes"}, "condition": "s"}, EV, None),
    ("error: bad regex", {"s": {"rule|re": "("}, "condition": "s"}, EV, None),
    ("error: nested value", {"s": {"rule": {"a": 1}}, "condition": "s"}, EV, None),
    ("error: timeframe", {"s": {"seq": 7}, "timeframe": "5m", "condition": "s"}, EV, None),
]


def run_unit_cases(problems):
    for name, detection, event, expected in UNIT_CASES:
        where = "evaluator case %r" % name
        try:
            det = Detection(detection)
        except SigmaError as exc:
            problems.check(expected is None, where, "rejected: %s" % exc)
            continue
        if not problems.check(expected is not None, where, "accepted, expected a SigmaError"):
            continue
        got = det.matches(event)
        problems.check(got == expected, where, "matched %s, expected %s" % (got, expected))


# ------------------------------------------------------ hand-written events


def deep_merge(base, over):
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def run_samples(path, rules, schema, problems):
    data = load_yaml(path, problems)
    if not problems.check(isinstance(data, dict) and "base" in data and "samples" in data, path,
                          "needs base: and samples:"):
        return
    validator = Draft202012Validator(schema)
    matched_by = {name: 0 for name in rules}
    names = set()
    for i, sample in enumerate(data["samples"]):
        where = "%s: sample %d %r" % (path, i + 1, sample.get("name"))
        problems.check(sample.get("name") not in names, where, "sample name repeated")
        names.add(sample.get("name"))
        event = deep_merge(data["base"], sample["event"])
        for key in sample.get("drop") or []:
            event.pop(key, None)
        event = json.loads(json.dumps(event))  # JSON types only, as a line would give
        errors = sorted(validator.iter_errors(event), key=lambda e: list(e.path))
        problems.check(not errors, where, "the event is not valid under the schema: %s"
                       % "; ".join("%s: %s" % ("/".join(map(str, e.path)), e.message[:200]) for e in errors[:3]))
        expect = set(sample.get("expect") or [])
        for unknown in sorted(expect - set(rules)):
            problems.add(where, "expects unknown rule %r" % unknown)
        got = {name for name, det in rules.items() if det.matches(event)}
        for name in got:
            matched_by[name] += 1
        problems.check(got == expect, where, "matched %s, expected %s" % (sorted(got), sorted(expect)))
    for name, count in sorted(matched_by.items()):
        problems.check(count > 0, path, "no sample matches rule %s" % name)


# -------------------------------------------------------- the Wine events


def rule_is(name):
    return lambda e: e.get("event") == "sandbox.violation" and e.get("rule") == name


def basename_lower(e):
    exe = (e.get("process") or {}).get("executable") or ""
    return exe.replace("/", "\\").rsplit("\\", 1)[-1].lower()


INTERPRETER_TAGS = {"attack.t1059.001", "attack.t1059.003", "attack.t1059.005", "attack.t1059.006",
                    "attack.t1059.007", "attack.t1218.005"}

# Per rule: `oracle` says, in plain Python on the parsed event (the rule
# name, not rule_id; no wildcards, no case folding), which events the rule
# must match; the rule must match exactly those in every file (wine-*,
# and the wine.unit.* files in the same directory). `files` are the counts
# the tests that write those files assert (pattern, least, most; None: no
# bound), named after the test case; with `only_listed`, a match in any
# other wine-*.jsonl file is an error. BENIGN files may match no rule but
# the telemetry-gap rule (under load, a port message later than the
# reconciliation's 400 ms is a real, reported gap in any run).
WINE_EXPECTATIONS = {
    "jobwarden_job_escape": {
        "oracle": rule_is("job_escape"),
        "only_listed": True,
        "files": [  # wine.real.escape
            ("wine-escape-rig-scan.jsonl", 1, 1),
            ("wine-escape-rig-kick.jsonl", 1, 1),
            ("wine-escape-rig-report.jsonl", 1, 1),
            ("wine-escape-rig-kill-job.jsonl", 1, 1),
            ("wine-escape-rig-breakaway.jsonl", 1, 1),
            ("wine-escape-rig-quiet-scan.jsonl", 1, 1),
            ("wine-escape-rig-busy-port.jsonl", 1, 1),
            ("wine-escape-rig-member.jsonl", 0, 0),  # a member's own child: no escape
            ("wine-escape-escape-cli-kill.jsonl", 1, 1),
            ("wine-escape-escape-cli-report.jsonl", 1, 1),
            ("wine-escape-escape-cli-refused.jsonl", 0, 0),  # OpenProcess refused: nothing started
            ("wine-escape-escape-cli-control.jsonl", 0, None),  # seen or not by a scan: timing
        ],
    },
    "jobwarden_monitor_tampering": {
        "oracle": rule_is("monitor_tampering"),
        "only_listed": True,
        "files": [
            ("wine-tamper-agent.jsonl", 2, 7),  # wine.real.tamper: 7 forged, 2 if the key was not learned
            ("wine-tamper-control.jsonl", 33, 33),  # 32 one by one + the flood summary
            ("wine-tamper-stolen-quit.jsonl", 1, 1),  # the forged exit_not_signaled
            ("wine-tamper-stolen-quit-[0-9].jsonl", 0, 1),  # the same in a retry, when there was one
            ("wine-tamper-exit-signal.jsonl", 1, 1),  # the forged exit watcher's packet
            ("wine-tamper-exit-signal-in-job.jsonl", 2, 2),  # the same and a forged setup wake-up, from inside the job
            ("wine-tamper-kernel.jsonl", 1, 1),  # wine.injected.tamper
            ("wine-tamper-agent-starting.jsonl", 2, 7),  # the agent against a member in its first moment
            ("wine-setup-crowd-late.jsonl", 0, 0),  # exits watched from a member's first moments
            ("wine-setup-stalled.jsonl", 1, 1),  # wine.injected.setup: the probe while a setup stalls
            ("wine-setup-forged.jsonl", 1, 1),  # the forged setup wake-up
            ("wine-setup-held.jsonl", 1, 1),  # the probe while a parent's setup is held
            ("wine-setup-share.jsonl", 1, 1),  # the probe while an image's share stalls
            ("wine-injected-limits.jsonl", 4, 4),  # summary.forged_packets 4
        ],
    },
    "jobwarden_telemetry_reader_from_job": {
        "oracle": lambda e: (rule_is("pipe_reader_refused")(e) and
                             ((e.get("reader") or {}).get("reason") in ("in_job", "escaped") or
                              ((e.get("reader") or {}).get("reason") == "flood" and
                               e.get("severity") == "critical"))),
        "only_listed": True,
        "files": [  # wine.real.record
            ("wine-record-injob.jsonl", 1, 1),
            ("wine-record-escaped.jsonl", 1, 1),
            ("wine-record-rflood.jsonl", 33, 33),  # 32 in_job + the critical flood summary
            ("wine-record-cap.jsonl", 0, 0),  # max_readers: a notice, not the program
            ("wine-record-pipe-flood.jsonl", 0, 0),  # the cap against a reader flood
        ],
    },
    "jobwarden_control_request_from_sandbox": {
        "oracle": lambda e: (e.get("event") == "sandbox.notice" and e.get("rule") == "member_control" and
                             (e.get("control") or {}).get("result") == "refused" and
                             (e.get("control") or {}).get("reason") in ("from_sandbox", "from_escape")),
        "only_listed": True,
        "files": [
            ("wine-control-inside.jsonl", 1, 1),  # wine.real.control: kill from inside
            ("wine-escape-escape-cli-control.jsonl", 2, 2),  # wine.real.escape: ps + kill from the escape
            ("wine-control-main.jsonl", 0, 0),  # the operator's requests
        ],
    },
    "jobwarden_denied_interpreter_image": {
        "oracle": lambda e: rule_is("image_denied")(e) and bool(INTERPRETER_TAGS & set(e.get("tags", []))),
        "only_listed": True,
        "files": [  # wine.real.rules: a copy named cmd.exe on the deny list
            ("wine-rules-deny-report.jsonl", 1, 1),
            ("wine-rules-deny-kill_process.jsonl", 1, 1),
            ("wine-rules-deny-kill_job.jsonl", 1, 1),
            ("wine-rules-cli-deny.jsonl", 1, 1),
            ("wine-rules-allow-kill_process.jsonl", 0, 0),  # cmd.exe off the allow list: another rule
            ("wine-rules-image-unknown.jsonl", 0, 0),  # cmd.exe's image never read
        ],
    },
    "jobwarden_token_not_applied": {
        "oracle": lambda e: e.get("event") == "sandbox.notice" and e.get("rule") == "token_not_applied",
        "only_listed": True,
        "files": [  # Wine ignores the integrity level: every low-integrity mode
            ("wine-cli-crash-lockdown.jsonl", 1, 1),
            ("wine-cli-tree-lockdown.jsonl", 1, 1),
            ("wine-self-token-lockdown.jsonl", 1, 1),
            ("wine-self-token-low.jsonl", 1, 1),
            ("wine-self-token-none.jsonl", 0, 0),
            ("wine-self-token-restricted.jsonl", 0, 0),
        ],
    },
    "jobwarden_kill_on_close_unavailable": {
        "oracle": lambda e: e.get("event") == "sandbox.notice" and e.get("rule") == "kill_on_close_unavailable",
        "only_listed": True,
        "files": [("wine-injected-kill-on-close.jsonl", 1, 1)],  # wine.injected.limits
    },
    "jobwarden_telemetry_gap": {
        "oracle": lambda e: (e.get("event") == "sandbox.telemetry_gap" and
                             (e.get("gap") or {}).get("reason") != "joined_late"),
        "only_listed": False,
        "files": [
            ("wine-reconcile-lost-exit.jsonl", 1, 1),  # wine.injected.reconcile drops the messages
            ("wine-reconcile-lost-start.jsonl", 1, 1),
            ("wine-reconcile-lost-both.jsonl", 1, 1),
            ("wine-reconcile-signal-before-end.jsonl", 1, 1),
            ("wine-tamper-kernel.jsonl", 1, 1),  # wine.injected.tamper: the lost start
            ("wine-pipe-reader2.jsonl", 0, 0),  # joined_late only
            ("wine-pipe-reader3.jsonl", 0, 0),
        ],
    },
    "jobwarden_abnormal_exit": {
        "oracle": rule_is("abnormal_exit"),
        "only_listed": True,
        "files": [
            ("wine-cli-crash-lockdown.jsonl", 1, 1),  # wine.real.cli: access violation
            ("wine-cli-exit-3221226505.jsonl", 1, 1),  # exit with 0xC0000409
            ("wine-monitor-crash.jsonl", 1, 1),  # wine.real.monitor
            ("wine-monitor-grandchild-crash.jsonl", 1, 1),
            ("wine-tamper-kernel.jsonl", 1, 1),  # the injected ABNORMAL_EXIT_PROCESS
            ("wine-seal-a.jsonl", 1, 1),  # wine.real.seal: the root crashes
            ("wine-cli-exit-1.jsonl", 0, 0),  # failures the program chose
            ("wine-cli-exit-255.jsonl", 0, 0),
        ],
    },
    "jobwarden_limit_not_enforced": {
        "oracle": lambda e: e.get("event") == "sandbox.violation" and e.get("action") == "not_enforced",
        "only_listed": True,
        "files": [  # Wine does not enforce the active-process limit
            ("wine-cli-tree-lockdown.jsonl", 1, 1),
            ("wine-monitor-tree-lockdown.jsonl", 1, 1),
            ("wine-rules-active-report.jsonl", 1, 1),
            ("wine-rules-active-kill_process.jsonl", 0, 0),  # the monitor terminated it
            ("wine-rules-active-kill_job.jsonl", 0, 0),
        ],
    },
    "jobwarden_sandbox_interpreter_started": {
        "oracle": lambda e: (e.get("event") == "sandbox.process_start" and
                             not (e.get("process") or {}).get("is_root") and
                             basename_lower(e) in ("cmd.exe", "powershell.exe", "pwsh.exe")),
        "only_listed": True,
        "files": [  # wine.real.rules starts its copy named cmd.exe
            ("wine-rules-deny-report.jsonl", 1, 1),
            ("wine-rules-deny-kill_process.jsonl", 1, 1),
            ("wine-rules-deny-kill_job.jsonl", 1, 1),
            ("wine-rules-cli-deny.jsonl", 1, 1),
            ("wine-rules-allow-kill_process.jsonl", 1, 1),
            ("wine-rules-image-unknown.jsonl", 0, 0),  # its image never read: executable null
        ],
    },
}
# Runs that do nothing wrong: wine.real.cli's and wine.real.monitor's tier
# none process trees, plain exits, the idle monitor, a tier-none token.
BENIGN = ["wine-cli-tree-none.jsonl", "wine-monitor-tree-none.jsonl", "wine-cli-exit-0.jsonl",
          "wine-monitor-idle.jsonl", "wine-self-token-none.jsonl"]
BENIGN_MAY_MATCH = {"jobwarden_telemetry_gap"}


def read_events(path, problems):
    events = []
    with open(path, "rb") as handle:
        for n, raw in enumerate(handle.read().split(b"\n"), 1):
            if not raw.strip():
                continue
            try:
                events.append((n, json.loads(raw.decode("utf-8"))))
            except ValueError as exc:
                problems.add("%s:%d" % (path, n), "not JSON: %s" % exc)
    return events


def run_match(rules, events_dir, problems):
    files = sorted(glob.glob(os.path.join(events_dir, "*.jsonl")))
    problems.check(len(files) >= 20, events_dir, "%d event file(s), at least 20 expected" % len(files))
    for name in sorted(set(rules) ^ set(WINE_EXPECTATIONS)):
        problems.add(name, "a rule without Wine expectations, or expectations without a rule")
    hits = {name: {} for name in rules}
    total = 0
    for path in files:
        base = os.path.basename(path)
        for n, event in read_events(path, problems):
            if event.get("event") == "sandbox.log_continued":
                continue
            total += 1
            for name, det in rules.items():
                exp = WINE_EXPECTATIONS.get(name)
                if exp is None:
                    continue
                got = det.matches(event)
                want = bool(exp["oracle"](event))
                problems.check(got == want, "%s:%d" % (path, n),
                               "rule %s %s, expected %s (%s %s %s)" % (
                                   name, "matched" if got else "did not match",
                                   "a match" if want else "none", event.get("event"),
                                   event.get("rule"), event.get("action")))
                if got:
                    hits[name][base] = hits[name].get(base, 0) + 1
    for name, exp in sorted(WINE_EXPECTATIONS.items()):
        if name not in rules:
            continue
        count = sum(hits[name].values())
        problems.check(count > 0, name, "no match in the Wine tests' events")
        listed = [pattern for pattern, _, _ in exp["files"]]
        for pattern, lo, hi in exp["files"]:
            matching = [os.path.basename(f) for f in files if fnmatch.fnmatch(os.path.basename(f), pattern)]
            # A pattern whose lower bound is 0 may match no file (a retry's
            # record exists only when the test retried).
            if not matching:
                problems.check(lo == 0 and any(c in pattern for c in "*?["), name,
                               "no event file %s" % pattern)
                continue
            for f in matching:
                n = hits[name].get(f, 0)
                problems.check(n >= lo and (hi is None or n <= hi), name, "%d match(es) in %s, expected %s" % (
                    n, f, lo if lo == hi else "%d to %s" % (lo, "any" if hi is None else hi)))
        if exp["only_listed"]:
            for f in sorted(hits[name]):
                if f.startswith("wine-"):
                    problems.check(any(fnmatch.fnmatch(f, p) for p in listed), name,
                                   "%d match(es) in %s, a file where none is expected" % (hits[name][f], f))
        print("  %-40s %4d match(es) in %d file(s)%s" % (
            name, count, len(hits[name]),
            (": " + ", ".join("%s %d" % kv for kv in sorted(hits[name].items()))) if hits[name] else ""))
    for pattern in BENIGN:
        matching = [os.path.basename(f) for f in files if fnmatch.fnmatch(os.path.basename(f), pattern)]
        problems.check(matching, events_dir, "benign file %s not found" % pattern)
        for f in matching:
            for name in rules:
                if name not in BENIGN_MAY_MATCH:
                    problems.check(f not in hits[name], f, "a benign run, but rule %s matched %d event(s)"
                                   % (name, hits[name].get(f, 0)))
    return len(files), total


# ------------------------------------------------------------------- main


def main(argv):
    if len(argv) != 6 or argv[1] not in ("rules", "match"):
        sys.stderr.write(__doc__.split("\n\n")[1] + "\n")
        return 2
    mode, rules_dir, schema_path, events_md, target = argv[1:]
    problems = Problems()
    try:
        schema = load_schema(schema_path)
        catalog = load_catalog(events_md)
    except (OSError, ValueError) as exc:
        sys.stderr.write("check_sigma: %s\n" % exc)
        return 2
    rules = load_rules(rules_dir, schema, catalog, problems)
    if mode == "rules":
        run_unit_cases(problems)
        run_samples(target, rules, schema, problems)
        summary = "%d rule(s), %d evaluator case(s)" % (len(rules), len(UNIT_CASES))
    else:
        if not os.path.isdir(target):
            sys.stderr.write("check_sigma: %s is not a directory\n" % target)
            return 2
        nfiles, nevents = run_match(rules, target, problems)
        summary = "%d rule(s) over %d file(s), %d event(s)" % (len(rules), nfiles, nevents)
    for p in problems.items:
        sys.stderr.write(p + "\n")
    print("check_sigma %s: %s, %d check(s): %s" % (
        mode, summary, problems.checks, "OK" if not problems.items else "%d problem(s)" % len(problems.items)))
    return 0 if not problems.items else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
