#!/usr/bin/env node
// Validates ECS event lines against Elastic's own published field
// definitions: EcsFlat of the npm package @elastic/ecs (installed by
// scripts/ecs-defs.sh). Nothing here lists ECS fields by hand.
//
// usage: node validate_ecs.js ECS_PACKAGE_DIR FILE... [--expect-lines N]
//
// Every line must be a JSON object where
// - every leaf field (dotted path) is a field of EcsFlat, except under the
//   top-level `jobwarden` object: ECS leaves custom fields to the producer
//   and advises nesting them under a proper name, which this is (a
//   `jobwarden` field set that ECS itself defined would be refused);
//   a field of type object/flattened/nested ends the path there;
// - the value has the field's ECS type (keyword-like: string; long/integer
//   and friends: integer; float/double/scaled_float: number; boolean;
//   date: an RFC 3339 / ISO 8601 time; ip: an IPv4/IPv6 address), and is an
//   array only where the field's `normalize` contains "array";
// - fields with `allowed_values` (event.kind, event.category, event.type,
//   event.outcome) hold only allowed values, and every event.type is one of
//   the `expected_event_types` of every event.category of the line;
// - @timestamp is there (ECS requires it) and ecs.version is the package's.
// Exit status 0 when every line is valid, 1 otherwise, 2 on usage errors.
'use strict';
const fs = require('fs');
const net = require('net');

const args = process.argv.slice(2);
let expect = 0;
const files = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--expect-lines' && i + 1 < args.length) expect = Number(args[++i]);
  else files.push(args[i]);
}
if (files.length < 2) {
  process.stderr.write('usage: node validate_ecs.js ECS_PACKAGE_DIR FILE... [--expect-lines N]\n');
  process.exit(2);
}
const { EcsFlat, EcsVersion } = require(require('path').resolve(files.shift()));

const STRINGS = new Set(['keyword', 'constant_keyword', 'wildcard', 'match_only_text', 'text']);
const INTEGERS = new Set(['long', 'integer', 'short', 'byte', 'unsigned_long']);
const NUMBERS = new Set(['float', 'double', 'scaled_float', 'half_float']);
const OPAQUE = new Set(['object', 'flattened', 'nested']);
const DATE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

const problems = [];
let lines = 0;

function typeOk(def, v) {
  const t = def.type;
  if (STRINGS.has(t)) return typeof v === 'string';
  if (INTEGERS.has(t)) return Number.isInteger(v);
  if (NUMBERS.has(t)) return typeof v === 'number';
  if (t === 'boolean') return typeof v === 'boolean';
  if (t === 'date') return typeof v === 'string' && DATE.test(v) && !isNaN(Date.parse(v));
  if (t === 'ip') return typeof v === 'string' && net.isIP(v) !== 0;
  if (OPAQUE.has(t)) return typeof v === 'object' && v !== null;
  return false; // a type this validator does not know: refuse rather than pass
}

function checkField(where, name, v) {
  const def = EcsFlat[name];
  if (!def) {
    problems.push(`${where}: '${name}' is not an ECS field (ECS ${EcsVersion})`);
    return;
  }
  const values = Array.isArray(v) ? v : [v];
  if (Array.isArray(v) && !(def.normalize || []).includes('array'))
    problems.push(`${where}: '${name}' is an array, ECS does not normalize it to one`);
  for (const x of values) {
    if (!typeOk(def, x))
      problems.push(`${where}: '${name}' = ${JSON.stringify(x)} is not of ECS type ${def.type}`);
    if (def.allowed_values && !def.allowed_values.some((a) => a.name === x))
      problems.push(`${where}: '${name}' = ${JSON.stringify(x)} is not an allowed value`);
  }
}

function walk(where, prefix, obj) {
  for (const [k, v] of Object.entries(obj)) {
    const name = prefix ? `${prefix}.${k}` : k;
    if (!prefix && k === 'jobwarden') {
      if (typeof v !== 'object' || v === null || Array.isArray(v))
        problems.push(`${where}: 'jobwarden' (the custom field set) must be an object`);
      continue;
    }
    const def = EcsFlat[name];
    if (v !== null && typeof v === 'object' && !Array.isArray(v) && !(def && OPAQUE.has(def.type))) {
      walk(where, name, v);
      continue;
    }
    if (v === null) {
      problems.push(`${where}: '${name}' is null (leave a field out instead)`);
      continue;
    }
    checkField(where, name, v);
  }
}

function checkLine(where, ev) {
  if (typeof ev !== 'object' || ev === null || Array.isArray(ev)) {
    problems.push(`${where}: not a JSON object`);
    return;
  }
  walk(where, '', ev);
  if (!('@timestamp' in ev)) problems.push(`${where}: @timestamp missing (ECS requires it)`);
  if (!ev.ecs || ev.ecs.version !== EcsVersion)
    problems.push(`${where}: ecs.version is ${JSON.stringify(ev.ecs && ev.ecs.version)}, the definitions are ECS ${EcsVersion}`);
  const e = ev.event || {};
  const cats = [].concat(e.category || []);
  const types = [].concat(e.type || []);
  for (const c of cats) {
    const a = (EcsFlat['event.category'].allowed_values || []).find((x) => x.name === c);
    if (!a || !a.expected_event_types) continue;
    for (const t of types)
      if (!a.expected_event_types.includes(t))
        problems.push(`${where}: event.type '${t}' is not expected with event.category '${c}' (expected: ${a.expected_event_types.join(', ')})`);
  }
}

for (const path of files) {
  const text = fs.readFileSync(path, 'utf8');
  text.split('\n').forEach((line, i) => {
    if (!line.trim()) return;
    lines++;
    let ev;
    try {
      ev = JSON.parse(line);
    } catch (err) {
      problems.push(`${path}:${i + 1}: not JSON: ${err.message}`);
      return;
    }
    checkLine(`${path}:${i + 1}`, ev);
  });
}
for (const p of problems.slice(0, 200)) console.log(p);
if (problems.length > 200) console.log(`... ${problems.length - 200} more problems`);
const ok = problems.length === 0 && lines >= expect;
console.log(`validate_ecs: ${lines} line(s) in ${files.length} file(s) against ECS ${EcsVersion} (${Object.keys(EcsFlat).length} fields), ${problems.length} problem(s)${lines >= expect ? '' : `, expected at least ${expect} lines`}: ${ok ? 'OK' : 'FAILED'}`);
process.exit(ok ? 0 : 1);
