"""A small evaluator for the subset of Sigma that jobwarden's rules use.

It runs a Sigma rule's detection over one event (a dict parsed from a JSON
line), as a SIEM backend would after converting the rule:

- a field name is a dotted path into the event (`process.executable`); a
  missing key is an absent field;
- a map of fields is an AND; a list of values is an OR; a list of maps is an
  OR of the maps;
- string values are case-insensitive and may use the wildcards `*` and `?`;
  `\\` escapes `*`, `?` and itself, any other backslash is literal (the Sigma
  specification, "Escaping");
- modifiers: `contains`, `startswith`, `endswith` (wildcards added around
  the value), `all` (the value list is an AND), `re` (Python regular
  expression, case-sensitive, searched anywhere), `exists` (true / false);
- `null` matches an absent field or a JSON null;
- a field whose value is an array (`tags`) matches when one element matches;
- condition: `and`, `or`, `not`, parentheses, `1 of PATTERN`,
  `all of PATTERN`, `1 of them`, `all of them` (identifiers starting with `_`
  are left out of `them`), precedence or < and < not < x of < ( ); a
  condition list is an OR.

Anything else (keyword lists, other modifiers, timeframes, aggregations)
raises SigmaError: a rule this evaluator cannot run is rejected, never
guessed at. Standard library only.
"""

import fnmatch
import re

SUPPORTED_MODIFIERS = {"contains", "startswith", "endswith", "all", "re", "exists"}


class SigmaError(Exception):
    """A rule uses something outside the supported subset, or is malformed."""


def split_field(key):
    """'a.b|endswith|all' -> ('a.b', ['endswith', 'all'])."""
    if not isinstance(key, str) or key == "":
        raise SigmaError("field name %r is not a non-empty string" % (key,))
    parts = key.split("|")
    field, mods = parts[0], parts[1:]
    if field == "":
        raise SigmaError("%r: keyword search (no field name) is not supported" % key)
    for m in mods:
        if m not in SUPPORTED_MODIFIERS:
            raise SigmaError("%r: modifier %r is not supported" % (key, m))
    kinds = [m for m in mods if m in ("contains", "startswith", "endswith", "re", "exists")]
    if len(kinds) > 1:
        raise SigmaError("%r: more than one of contains/startswith/endswith/re/exists" % key)
    return field, mods


def lookup(event, path):
    """The value at a dotted path, or (False, None) when a key is missing."""
    cur = event
    for part in path.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return False, None
        cur = cur[part]
    return True, cur


def parse_string(value):
    """A Sigma string as pieces: literal text, or the wildcards '*' / '?'.
    Escapes are resolved here, before a modifier adds its wildcards (as
    pySigma does), so that a value ending in a backslash stays literal."""
    pieces = []
    i = 0
    while i < len(value):
        c = value[i]
        if c == "\\" and i + 1 < len(value) and value[i + 1] in "*?\\":
            pieces.append(("lit", value[i + 1]))
            i += 2
            continue
        if c in "*?":
            pieces.append((c, None))
        else:
            pieces.append(("lit", c))
        i += 1
    return pieces


def pieces_regex(pieces):
    """Pieces as an anchored, case-insensitive regular expression."""
    out = []
    for kind, text in pieces:
        if kind == "*":
            out.append(".*")
        elif kind == "?":
            out.append(".")
        else:
            out.append(re.escape(text))
    return re.compile("".join(out) + r"\Z", re.IGNORECASE | re.DOTALL)


def scalar_text(v):
    """How a SIEM sees a JSON scalar as text (JSON spelling of true/false)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def match_value(actual, expected, mods):
    """One event value (not a list) against one rule value."""
    if expected is None:
        return actual is None
    if actual is None or isinstance(actual, (dict, list)):
        return False
    if "re" in mods:
        if not isinstance(expected, str):
            raise SigmaError("|re needs a string, not %r" % (expected,))
        return re.search(expected, scalar_text(actual)) is not None
    if isinstance(expected, bool) or isinstance(actual, bool):
        # YAML true / false compare with JSON booleans only; a string "true"
        # in a rule is a string.
        return isinstance(expected, bool) and isinstance(actual, bool) and expected == actual
    if isinstance(expected, (int, float)) and not mods:
        if isinstance(actual, (int, float)):
            return actual == expected
        return scalar_text(actual) == scalar_text(expected)
    pieces = parse_string(scalar_text(expected))
    if "contains" in mods:
        pieces = [("*", None)] + pieces + [("*", None)]
    elif "startswith" in mods:
        pieces = pieces + [("*", None)]
    elif "endswith" in mods:
        pieces = [("*", None)] + pieces
    return pieces_regex(pieces).match(scalar_text(actual)) is not None


def match_field(event, key, expected):
    field, mods = split_field(key)
    present, actual = lookup(event, field)
    if "exists" in mods:
        if not isinstance(expected, bool):
            raise SigmaError("%r: |exists takes true or false" % key)
        return present == expected
    values = expected if isinstance(expected, list) else [expected]
    if not values:
        raise SigmaError("%r: empty value list" % key)
    for v in values:
        if isinstance(v, (dict, list)):
            raise SigmaError("%r: value %r is not a scalar" % (key, v))
    if not present:
        actual = None
    candidates = actual if isinstance(actual, list) else [actual]
    if isinstance(actual, list) and not actual:
        candidates = []

    def one(v):
        if v is None:
            return actual is None
        return any(match_value(a, v, mods) for a in candidates)

    if "all" in mods:
        return all(one(v) for v in values)
    return any(one(v) for v in values)


def match_search(event, search):
    """A search identifier's definition: a map (AND) or a list of maps (OR)."""
    if isinstance(search, dict):
        if not search:
            raise SigmaError("empty selection")
        return all(match_field(event, k, v) for k, v in search.items())
    if isinstance(search, list):
        if not search:
            raise SigmaError("empty selection list")
        if not all(isinstance(m, dict) for m in search):
            raise SigmaError("keyword lists are not supported (only lists of maps)")
        return any(match_search(event, m) for m in search)
    raise SigmaError("a selection is a map or a list of maps, not %r" % (search,))


def check_search(search):
    """Rejects a malformed selection when the rule is loaded, not on the
    first event that reaches it."""
    if isinstance(search, list):
        if not search or not all(isinstance(m, dict) for m in search):
            raise SigmaError("a selection list must be a non-empty list of maps (no keyword lists)")
        for m in search:
            check_search(m)
        return
    if not isinstance(search, dict) or not search:
        raise SigmaError("a selection is a non-empty map or a list of maps, not %r" % (search,))
    for key, expected in search.items():
        field, mods = split_field(key)
        values = expected if isinstance(expected, list) else [expected]
        if not values:
            raise SigmaError("%r: empty value list" % key)
        for v in values:
            if isinstance(v, (dict, list)):
                raise SigmaError("%r: value %r is not a scalar" % (key, v))
        if "exists" in mods and not isinstance(expected, bool):
            raise SigmaError("%r: |exists takes true or false" % key)
        if "re" in mods:
            for v in values:
                if not isinstance(v, str):
                    raise SigmaError("%r: |re needs strings" % key)
                try:
                    re.compile(v)
                except re.error as e:
                    raise SigmaError("%r: bad regular expression %r: %s" % (key, v, e)) from e


TOKEN = re.compile(r"\s*(?:(\()|(\))|([A-Za-z0-9_*]+))")


def tokenize(text):
    tokens = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = TOKEN.match(text, pos)
        if m is None:
            raise SigmaError("condition %r: cannot read at %r" % (text, text[pos:]))
        tokens.append(m.group(1) or m.group(2) or m.group(3))
        pos = m.end()
    return tokens


class Condition:
    """A parsed condition: an AST of ('and'|'or', a, b), ('not', a),
    ('id', name), ('of', '1'|'all', pattern)."""

    def __init__(self, text, names):
        if not isinstance(text, str):
            raise SigmaError("condition %r is not a string" % (text,))
        self.text = text
        self.names = list(names)
        self.tokens = tokenize(text)
        self.pos = 0
        self.referenced = set()
        if not self.tokens:
            raise SigmaError("empty condition")
        self.ast = self.parse_or()
        if self.pos != len(self.tokens):
            raise SigmaError("condition %r: unexpected %r" % (text, self.tokens[self.pos]))

    def peek(self):
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, want=None):
        tok = self.peek()
        if tok is None or (want is not None and tok.lower() != want):
            raise SigmaError("condition %r: expected %s, got %r" % (self.text, want or "more", tok))
        self.pos += 1
        return tok

    def parse_or(self):
        node = self.parse_and()
        while (self.peek() or "").lower() == "or":
            self.take()
            node = ("or", node, self.parse_and())
        return node

    def parse_and(self):
        node = self.parse_not()
        while (self.peek() or "").lower() == "and":
            self.take()
            node = ("and", node, self.parse_not())
        return node

    def parse_not(self):
        if (self.peek() or "").lower() == "not":
            self.take()
            return ("not", self.parse_not())
        return self.parse_atom()

    def parse_atom(self):
        tok = self.take()
        low = tok.lower()
        if tok == "(":
            node = self.parse_or()
            self.take(")")
            return node
        if tok == ")" or low in ("and", "or", "not", "of", "them"):
            raise SigmaError("condition %r: unexpected %r" % (self.text, tok))
        if low in ("1", "all") and (self.peek() or "").lower() == "of":
            self.take("of")
            pattern = self.take()
            if pattern.lower() == "them":
                matched = [n for n in self.names if not n.startswith("_")]
            else:
                matched = [n for n in self.names if fnmatch.fnmatchcase(n, pattern)]
            if not matched:
                raise SigmaError("condition %r: %r names no search identifier" % (self.text, pattern))
            self.referenced.update(matched)
            return ("of", low, tuple(matched))
        if "*" in tok:
            raise SigmaError("condition %r: a pattern %r needs '1 of' or 'all of'" % (self.text, tok))
        if tok not in self.names:
            raise SigmaError("condition %r: %r is not a search identifier of the rule" % (self.text, tok))
        self.referenced.add(tok)
        return ("id", tok)

    def evaluate(self, results):
        def ev(node):
            op = node[0]
            if op == "id":
                return results(node[1])
            if op == "not":
                return not ev(node[1])
            if op == "and":
                return ev(node[1]) and ev(node[2])
            if op == "or":
                return ev(node[1]) or ev(node[2])
            if node[1] == "all":
                return all(results(n) for n in node[2])
            return any(results(n) for n in node[2])

        return ev(self.ast)


class Detection:
    """A rule's detection section, compiled once, run on many events."""

    def __init__(self, detection):
        if not isinstance(detection, dict) or "condition" not in detection:
            raise SigmaError("detection must be a map with a condition")
        for key in ("timeframe",):
            if key in detection:
                raise SigmaError("detection: %r is not supported" % key)
        self.searches = {k: v for k, v in detection.items() if k != "condition"}
        if not self.searches:
            raise SigmaError("detection has no search identifier")
        for name, search in self.searches.items():
            if not re.fullmatch(r"[A-Za-z0-9_]+", str(name)):
                raise SigmaError("search identifier %r: letters, digits and _ only" % (name,))
            check_search(search)
        conds = detection["condition"]
        if isinstance(conds, str):
            conds = [conds]
        if not isinstance(conds, list) or not conds:
            raise SigmaError("condition must be a string or a non-empty list of strings")
        self.conditions = [Condition(c, self.searches.keys()) for c in conds]
        self.referenced = set()
        for c in self.conditions:
            self.referenced |= c.referenced

    def matches(self, event):
        cache = {}

        def results(name):
            if name not in cache:
                cache[name] = match_search(event, self.searches[name])
            return cache[name]

        return any(c.evaluate(results) for c in self.conditions)

    def fields(self):
        """Every (field, modifiers, values) the selections use."""
        out = []

        def walk(search):
            if isinstance(search, dict):
                for k, v in search.items():
                    field, mods = split_field(k)
                    out.append((field, mods, v if isinstance(v, list) else [v]))
            else:
                for m in search:
                    walk(m)

        for search in self.searches.values():
            walk(search)
        return out
