#!/usr/bin/python3
"""Validates OCSF event lines against class definitions transcribed from the
OCSF schema repository (tests/ocsf/*.json; each file names the repository
path and commit it was transcribed from).

usage: validate_ocsf.py DEFS_DIR FILE... [--expect-lines N] [--version V]

Every line must be a JSON object of one of the transcribed classes (found by
class_uid: Base Event 0, Process Activity 1007, Event Log Activity 1008,
Detection Finding 2004) and:
- carry every attribute the class (with the classes it extends, and the
  profiles named in metadata.profiles) requires, and nothing else at the
  top level: an attribute the class does not define is an error
  (`unmapped` is the class's own place for the rest and is not looked into);
- category_uid/class_uid are the class's, type_uid = class_uid * 100 +
  activity_id, activity_id is one of the class's activities, severity_id and
  status_id are values of their enums and severity/status their captions;
- every object (metadata, product, device, os, process, file, fingerprint,
  user, actor, finding_info, evidences, attack, technique, sub_technique,
  tactic) has only attributes its definition lists, its required ones, one
  of each at_least_one constraint, and enum values from its enums;
- every value has its dictionary type: integer_t/long_t/timestamp_t are
  integers, string types strings (file_hash_t hexadecimal), boolean_t
  booleans, arrays where the dictionary says is_array.
--version V: metadata.version must be V. --expect-lines N: fail when fewer
than N lines were checked (a test that checks nothing fails).
Exit status 0 when everything is valid, 1 otherwise, 2 on usage errors.
"""

import json
import os
import re
import sys

CLASSES = {0: "base_event", 1007: "process_activity", 1008: "event_log_activity",
           2004: "detection_finding"}
CATEGORY_OF = {"base_event": "other", "system": "system", "finding": "findings"}


def load_defs(d):
    defs = {}
    for name in os.listdir(d):
        if name.endswith(".json"):
            with open(os.path.join(d, name), encoding="utf-8") as f:
                defs[name[:-5]] = json.load(f)
    return defs


class Checker:
    def __init__(self, defs, version):
        self.defs = defs
        self.dict = defs["dictionary"]["attributes"]
        self.types = defs["dictionary"]["types"]
        self.regex = defs["dictionary"].get("regex", {})
        self.categories = defs["categories"]["categories"]
        self.version = version
        self.problems = []

    def err(self, where, text):
        self.problems.append("%s: %s" % (where, text))

    def class_chain(self, name):
        chain = []
        while name is not None:
            c = self.defs[name]
            chain.append(c)
            name = c.get("extends")
        return list(reversed(chain))

    def class_attrs(self, cname, profiles):
        attrs, constraints, category = {}, [], None
        for c in self.class_chain(cname):
            for k, v in c["attributes"].items():
                merged = dict(attrs.get(k, {}))
                merged.update(v)
                attrs[k] = merged
            if "constraints" in c:
                constraints.append(c["constraints"])
            category = c.get("category", category)
        # category_uid and class_uid take the class's own values (checked
        # below against categories.json and the class uid), not the base
        # event's enum of 0.
        if cname != "base_event":
            for k in ("category_uid", "class_uid"):
                attrs[k] = {kk: vv for kk, vv in attrs[k].items() if kk != "enum"}
        for p in profiles:
            prof = self.defs.get("profile_" + p)
            if prof is None:
                continue
            for k, v in prof["attributes"].items():
                attrs.setdefault(k, dict(v))
        return attrs, constraints, category

    def check_value(self, where, attr, value, enum=None):
        t = self.dict.get(attr)
        if t is None:
            self.err(where, "attribute '%s' is not in the transcribed dictionary" % attr)
            return
        if t.get("is_array"):
            if not isinstance(value, list):
                self.err(where, "'%s' must be an array of %s" % (attr, t["type"]))
                return
            for i, v in enumerate(value):
                self.check_type("%s[%d]" % (where, i), t["type"], v)
        else:
            self.check_type(where, t["type"], value)
        allowed = enum if enum is not None else t.get("enum")
        if allowed is not None and not t.get("is_array") and value not in allowed:
            self.err(where, "%r is not a value of %s's enum %s" % (value, attr, allowed))

    def check_type(self, where, typ, value):
        kind = self.types.get(typ)
        if kind is None:  # an object type
            self.check_object(where, typ, value)
        elif kind == "integer":
            if not isinstance(value, int) or isinstance(value, bool):
                self.err(where, "%r is not an integer (%s)" % (value, typ))
        elif kind == "string":
            if not isinstance(value, str):
                self.err(where, "%r is not a string (%s)" % (value, typ))
            elif typ in self.regex and not re.match(self.regex[typ], value):
                self.err(where, "%r does not match %s's pattern" % (value, typ))
        elif kind == "boolean":
            if not isinstance(value, bool):
                self.err(where, "%r is not a boolean" % (value,))
        elif kind == "object":
            if not isinstance(value, dict):
                self.err(where, "not an object")

    def check_members(self, where, obj, attrs, constraints):
        for k, v in obj.items():
            if k not in attrs:
                self.err(where, "unknown attribute '%s'" % k)
                continue
            if k == "unmapped":
                if not isinstance(v, dict):
                    self.err(where + ".unmapped", "not an object")
                continue
            self.check_value(where + "." + k, k, v, attrs[k].get("enum"))
        for k, a in attrs.items():
            if a.get("requirement") == "required" and k not in obj:
                self.err(where, "required attribute '%s' missing" % k)
        for c in constraints:
            one = c.get("at_least_one")
            if one and not any(k in obj for k in one):
                self.err(where, "needs at least one of %s" % ", ".join(one))

    def check_object(self, where, name, value):
        if not isinstance(value, dict):
            self.err(where, "a %s must be an object" % name)
            return
        d = self.defs.get(name)
        if d is None or "attributes" not in d:
            self.err(where, "object type '%s' is not transcribed" % name)
            return
        self.check_members(where, value, d["attributes"], [d.get("constraints", {})])

    def check_event(self, where, ev):
        if not isinstance(ev, dict):
            self.err(where, "not a JSON object")
            return
        cuid = ev.get("class_uid")
        cname = CLASSES.get(cuid)
        if cname is None:
            self.err(where, "class_uid %r is not a transcribed class" % (cuid,))
            return
        profiles = ev.get("metadata", {}).get("profiles", []) if isinstance(ev.get("metadata"), dict) else []
        attrs, constraints, category = self.class_attrs(cname, profiles if isinstance(profiles, list) else [])
        self.check_members(where, ev, attrs, constraints)
        cat_uid = self.categories.get(category)
        if ev.get("category_uid") != cat_uid:
            self.err(where, "category_uid %r, the class %s is in category %s (%r)"
                     % (ev.get("category_uid"), cname, category, cat_uid))
        if cname != "base_event":
            want = cat_uid * 1000 + self.defs[cname]["uid"]
            if cuid != want:
                self.err(where, "class_uid %r, expected %d" % (cuid, want))
        act = ev.get("activity_id")
        if isinstance(act, int) and isinstance(cuid, int) and ev.get("type_uid") != cuid * 100 + act:
            self.err(where, "type_uid %r is not class_uid * 100 + activity_id = %d"
                     % (ev.get("type_uid"), cuid * 100 + act))
        for idattr, capattr in (("severity_id", "severity"), ("status_id", "status")):
            caps = self.dict[idattr].get("captions", {})
            if capattr in ev and idattr in ev and str(ev[idattr]) in caps and ev[idattr] != 99 \
                    and ev[capattr] != caps[str(ev[idattr])]:
                self.err(where, "%s %r is not the caption of %s %r (%r)"
                         % (capattr, ev[capattr], idattr, ev[idattr], caps[str(ev[idattr])]))
        if self.version is not None and isinstance(ev.get("metadata"), dict) \
                and ev["metadata"].get("version") != self.version:
            self.err(where, "metadata.version %r, expected %r" % (ev["metadata"].get("version"), self.version))


def main(argv):
    expect, version, files = 0, None, []
    i = 1
    while i < len(argv):
        if argv[i] == "--expect-lines" and i + 1 < len(argv):
            expect = int(argv[i + 1])
            i += 2
        elif argv[i] == "--version" and i + 1 < len(argv):
            version = argv[i + 1]
            i += 2
        else:
            files.append(argv[i])
            i += 1
    if len(files) < 2:
        sys.stderr.write(__doc__)
        return 2
    chk = Checker(load_defs(files[0]), version)
    lines = 0
    for path in files[1:]:
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                lines += 1
                try:
                    ev = json.loads(line)
                except ValueError as e:
                    chk.err("%s:%d" % (path, n), "not JSON: %s" % e)
                    continue
                chk.check_event("%s:%d" % (path, n), ev)
    for p in chk.problems[:200]:
        print(p)
    if len(chk.problems) > 200:
        print("... %d more problems" % (len(chk.problems) - 200))
    ok = not chk.problems and lines >= expect
    print("validate_ocsf: %d line(s) in %d file(s), %d problem(s)%s: %s"
          % (lines, len(files) - 1, len(chk.problems),
             "" if lines >= expect else ", expected at least %d lines" % expect,
             "OK" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
