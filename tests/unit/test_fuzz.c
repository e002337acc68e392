/* unit.fuzz — every parser that reads text from outside jobwarden, fed
 * mutated inputs: policy documents (a user's file), control requests and
 * replies (another process on the control pipe), event lines for `tail`
 * (whoever serves the pipe NAME), command lines, and the event renderer
 * with hostile process strings, continuation records for the readers'
 * reassembler (whatever a collector's file holds). Deterministic (a fixed seed, so a failure
 * reproduces), bounded (a fixed number of inputs per target), and run in
 * every tree: natively, under ASan/UBSan (where an out-of-bounds read or
 * write fails the test), and under Wine.
 *
 * Besides "no crash", each target checks what its contract promises:
 * outputs NUL-terminated inside their buffers, rendered events that parse
 * back as one JSON object, valid UTF-8 out of the UTF-16 converter, errors
 * with a message. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "control.h"
#include "harness.h"
#include "internal.h"
#include "parts.h"

static uint64_t g_rng = 0x6A77617264656E21ull; /* fixed: reproducible */

static uint32_t rnd(void) {
  /* xorshift64* */
  g_rng ^= g_rng >> 12;
  g_rng ^= g_rng << 25;
  g_rng ^= g_rng >> 27;
  return (uint32_t)((g_rng * 0x2545F4914F6CDD1Dull) >> 32);
}

static size_t below(size_t n) {
  return n ? rnd() % n : 0;
}

/* Bytes that matter to JSON, UTF-8 and jobwarden's own syntax. */
static const char interesting[] = "{}[]\",:\\/0123456789-+.eE \t\r\nntfu\x00\x01\x1f\x7f\x80\xbf"
                                  "\xc0\xc3\xe2\x80\xae\xed\xa0\xf0\xf4\xf5\xfe\xff%kKmMgGsh";

/* Mutates buf (len bytes, capacity cap) a few times; returns the new length. */
static size_t mutate(char *buf, size_t len, size_t cap) {
  int n = 1 + (int)below(4), i;
  for (i = 0; i < n; i++) {
    size_t at = below(len + 1), k;
    switch (rnd() % 7) {
    case 0: /* flip a bit */
      if (len > 0)
        buf[below(len)] ^= (char)(1u << below(8));
      break;
    case 1: /* replace a byte by an interesting one */
      if (len > 0)
        buf[below(len)] = interesting[below(sizeof(interesting) - 1)];
      break;
    case 2: /* insert one */
      if (len < cap) {
        memmove(buf + at + 1, buf + at, len - at);
        buf[at] = interesting[below(sizeof(interesting) - 1)];
        len++;
      }
      break;
    case 3: /* delete a run */
      if (len > 0) {
        k = 1 + below(len - at < 8 ? len - at + 1 : 8);
        if (at + k > len)
          k = len - at;
        memmove(buf + at, buf + at + k, len - at - k);
        len -= k;
      }
      break;
    case 4: /* duplicate a chunk */
      k = below(64);
      if (at + k <= len && len + k <= cap) {
        memmove(buf + at + k, buf + at, len - at);
        len += k;
      }
      break;
    case 5: /* truncate */
      len = at;
      break;
    default: /* a random byte */
      if (len > 0)
        buf[below(len)] = (char)rnd();
      break;
    }
  }
  return len;
}

#define CAP 4096

/* Picks a seed, copies and mutates it into buf; returns the length. */
static size_t input(const char *const *seeds, size_t n_seeds, char *buf) {
  const char *s = seeds[below(n_seeds)];
  size_t len = strlen(s);
  memcpy(buf, s, len);
  return mutate(buf, len, CAP - 1);
}

/* Safe to print on a terminal: valid UTF-8, no C0 control but '\n', no
 * DEL, no C1 control (U+0080..U+009F), no line or paragraph separator
 * (U+2028, U+2029), no bidirectional override or isolate (U+202A..U+202E,
 * U+2066..U+2069). */
static int terminal_safe(const char *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    unsigned char c = (unsigned char)s[i];
    uint32_t cp;
    size_t k, clen;
    if (c < 0x80) {
      if ((c < 0x20 && c != '\n') || c == 0x7f)
        return 0;
      i++;
      continue;
    }
    clen = c >= 0xC2 && c < 0xE0 ? 2 : c >= 0xE0 && c < 0xF0 ? 3 : c >= 0xF0 && c < 0xF5 ? 4 : 0;
    if (clen == 0 || i + clen > n)
      return 0;
    cp = c & (clen == 2 ? 0x1F : clen == 3 ? 0x0F : 0x07);
    for (k = 1; k < clen; k++) {
      if (((unsigned char)s[i + k] & 0xC0) != 0x80)
        return 0;
      cp = cp << 6 | ((unsigned char)s[i + k] & 0x3F);
    }
    if ((cp >= 0x80 && cp <= 0x9F) || (cp >= 0x2028 && cp <= 0x202E) ||
        (cp >= 0x2066 && cp <= 0x2069) || (cp >= 0xD800 && cp <= 0xDFFF))
      return 0;
    i += clen;
  }
  return 1;
}

/* ---- targets -------------------------------------------------------------- */

static const char *const policy_seeds[] = {
    "{\"tier\":\"lockdown\",\"name\":\"agent\",\"limits\":{\"active_processes\":4,"
    "\"process_memory\":\"256M\",\"job_memory\":\"1G\",\"process_cpu_time\":\"30s\","
    "\"job_cpu_time\":\"2m\",\"notification_margin\":\"12.5%\"},\"ui_restrictions\":"
    "[\"handles\",\"read_clipboard\",\"desktop\"],\"kill_on_close\":true}",
    "{\"rules\":{\"timeout\":{\"after\":\"10m\",\"action\":\"kill_job\"},\"total_processes\":"
    "{\"max\":50,\"action\":\"report\"},\"images\":{\"deny\":[\"cmd.exe\",\"powershell.exe\"],"
    "\"action\":\"kill_process\"},\"active_processes\":{\"action\":\"kill_process\"}}}",
    "{\"images\":{\"allow\":[\"python.exe\"]}}",
    "{\"tier\":\"none\",\"limits\":{\"job_memory\":\"unlimited\"},\"allow_breakaway\":false,"
    "\"die_on_unhandled_exception\":true}",
    "\xEF\xBB\xBF{\"name\":\"\\u00e9\\ud83d\\ude00\"}",
    "{\"rules\":{\"images\":{\"deny\":[\"sha256:0123456789abcdef0123456789abcdef0123456789abcdef"
    "0123456789abcdef\",\"original_file_name:Cmd.Exe\",\"signer:Evil Corp\"]}}}",
};

static void fuzz_policy(int rounds) {
  static char buf[CAP];
  int i, ok = 0, silent = 0;
  for (i = 0; i < rounds; i++) {
    size_t len = input(policy_seeds, sizeof(policy_seeds) / sizeof(policy_seeds[0]), buf);
    jw_policy_t p, eff;
    jw_error_t err;
    memset(&err, 0, sizeof(err));
    jw_policy_init(&p);
    if (jw_policy_parse(&p, buf, len, "fuzz.json", &err) == 0) {
      ok++;
      jw_policy_resolve(&p, &eff);
    } else if (err.text[0] == 0 || memchr(err.text, 0, sizeof(err.text)) == NULL) {
      silent = 1;
      break;
    }
  }
  /* Once, after every input (a pass ran no check before: this case alone
   * ended "no check ran"). */
  CHECK(!silent && "a refused policy comes with a message");
  printf("policy: %d inputs, %d accepted\n", rounds, ok);
}

static const char *const request_seeds[] = {
    "{\"op\":\"ps\"}",
    "{\"op\":\"kill\"}",
    "{\"op\":\"kill\",\"pid\":4242}",
    "{\"op\":\"kill\",\"pid\":4294967295}",
};

static void fuzz_requests(int rounds) {
  static char buf[CAP];
  int i, ok = 0;
  for (i = 0; i < rounds; i++) {
    size_t len = input(request_seeds, sizeof(request_seeds) / sizeof(request_seeds[0]), buf);
    jw_control_request_t req;
    char why[200], line[128];
    memset(&req, 0, sizeof(req));
    why[0] = 0;
    if (jw_control_parse_request(buf, len, &req, why, sizeof(why)) == 0) {
      /* What was accepted formats back to a request that parses the same. */
      size_t n = jw_control_format_request(&req, line, sizeof(line));
      jw_control_request_t again;
      ok++;
      CHECK(n > 0 && line[n - 1] == '\n');
      memset(&again, 0, sizeof(again));
      CHECK_INT(jw_control_parse_request(line, n - 1, &again, why, sizeof(why)), 0);
      CHECK(again.op == req.op && again.pid == req.pid);
    } else {
      CHECK(why[0] != 0 && memchr(why, 0, sizeof(why)) != NULL);
    }
  }
  printf("control requests: %d inputs, %d accepted\n", rounds, ok);
}

static const char *const reply_seeds[] = {
    "{\"ok\":true,\"members\":[{\"pid\":4242,\"entity_id\":\"4242-01DC5A0B12345678\","
    "\"executable\":\"C:\\\\agent\\\\agent.exe\",\"working_set\":1048576,"
    "\"start\":\"2026-11-23T09:11:05.123456Z\",\"is_root\":true},{\"pid\":5000,"
    "\"executable\":\"C:\\\\t\\\\\\u202e\\u001b[31mx.exe\",\"working_set\":null,\"start\":null,"
    "\"is_root\":false}]}",
    "{\"ok\":true,\"killed\":[5000]}",
    "{\"ok\":false,\"error\":\"not_member\",\"message\":\"pid 1 is not in the job\"}",
};

static void fuzz_replies(int rounds) {
  static char buf[CAP];
  int i, ok = 0;
  for (i = 0; i < rounds; i++) {
    size_t len = input(reply_seeds, sizeof(reply_seeds) / sizeof(reply_seeds[0]), buf);
    char *text = NULL;
    int rc =
        jw_control_reply_text(buf, len, rnd() % 2 ? JW_CONTROL_PS : JW_CONTROL_KILL_PID, &text);
    CHECK(rc >= -1 && rc <= 1);
    CHECK(text != NULL);
    if (text != NULL && !terminal_safe(text, strlen(text))) {
      CHECK(!"ps / kill output is not safe for a terminal");
      fprintf(stderr, "  from: %.*s\n", (int)len, buf);
    }
    ok += rc == 1;
    free(text);
  }
  printf("control replies: %d inputs, %d read as ok\n", rounds, ok);
}

static const char *const line_seeds[] = {
    "{\"schema_version\":\"1.3.0\",\"event\":\"sandbox.violation\",\"seq\":3,\"@timestamp\":"
    "\"2026-11-23T09:11:07.223801Z\",\"host\":{\"name\":\"BUILD-07\"},\"run_id\":"
    "\"5f0c9a7e1b2d4c3a8e6f70a1b2c3d4e5\",\"job\":{\"name\":\"agent-ci\",\"tier\":\"lockdown\"},"
    "\"rule\":\"child_process\",\"action\":\"allowed\",\"enforcer\":\"kernel\",\"severity\":"
    "\"low\",\"source\":\"port\",\"process\":{\"pid\":5000,\"executable\":\"C:\\\\x\\u202e.exe\","
    "\"command_line\":\"a \\\"b\\\" \\u001b[2J\",\"is_root\":false},\"message\":\"child\"}",
    "{\"schema_version\":\"1.3.0\",\"event\":\"sandbox.job_end\",\"seq\":9,\"summary\":"
    "{\"processes\":2}}",
    "{\"event\":\"sandbox.telemetry_gap\",\"gap\":{\"from_seq\":1,\"to_seq\":4}}",
};

static void fuzz_tail(int rounds) {
  static char buf[CAP];
  char out[1024];
  int i, ends = 0;
  for (i = 0; i < rounds; i++) {
    size_t len = input(line_seeds, sizeof(line_seeds) / sizeof(line_seeds[0]), buf);
    size_t size = 64 + below(sizeof(out) - 64), n;
    int rc;
    memset(out, 'Z', sizeof(out));
    rc = jw_tail_format(buf, len, out, size);
    CHECK(rc >= -1 && rc <= 1);
    n = strnlen(out, size);
    CHECK(n < size);                                /* terminated inside the buffer */
    CHECK(size == sizeof(out) || out[size] == 'Z'); /* nothing written past it */
    if (!terminal_safe(out, n)) {
      CHECK(!"tail output is not safe for a terminal");
      fprintf(stderr, "  rc %d: %.*s\n  from: %.*s\n", rc, (int)n, out, (int)len, buf);
    }
    ends += rc == 1;
  }
  printf("tail lines: %d inputs, %d job ends\n", rounds, ends);
}

static void fuzz_cli(int rounds) {
  static const char *const words[] = {"run",
                                      "check-policy",
                                      "tail",
                                      "probe",
                                      "ps",
                                      "kill",
                                      "--tier",
                                      "lockdown",
                                      "none",
                                      "--policy",
                                      "--job-memory",
                                      "1G",
                                      "-1",
                                      "99999999999999999999",
                                      "--process-memory",
                                      "--timeout",
                                      "5m",
                                      "--deny-image",
                                      "cmd.exe",
                                      "--allow-image",
                                      "",
                                      "--export",
                                      "file:x.jsonl",
                                      "pipe:",
                                      "pipe:a/b",
                                      "syslog+udp://[::1]:514",
                                      "--control",
                                      "agent",
                                      "--pid",
                                      "0",
                                      "4294967296",
                                      "--json",
                                      "--raw",
                                      "--",
                                      "prog.exe",
                                      "--help",
                                      "--version",
                                      "--notification-margin",
                                      "100%",
                                      "off",
                                      "--ui-restrictions",
                                      "all",
                                      "--active-processes",
                                      "--image-action",
                                      "kill_job",
                                      "--max-total-processes",
                                      "x"};
  int i, ok = 0;
  for (i = 0; i < rounds; i++) {
    const char *argv[12];
    int argc = 1 + (int)below(11), k;
    jw_cli_t cli;
    jw_error_t err;
    argv[0] = "jobwarden";
    for (k = 1; k < argc; k++)
      argv[k] = words[below(sizeof(words) / sizeof(words[0]))];
    memset(&err, 0, sizeof(err));
    if (jw_cli_parse(argc, argv, &cli, &err) == 0)
      ok++;
    else
      CHECK(err.text[0] != 0);
  }
  printf("command lines: %d inputs, %d accepted\n", rounds, ok);
}

/* UTF-16 from the sandboxed process (paths, command lines): always valid,
 * terminated UTF-8 of the length returned. */
static void fuzz_utf16(int rounds) {
  static uint16_t in[600];
  int i;
  for (i = 0; i < rounds; i++) {
    size_t n = below(600), max = below(700), j, len = 0;
    char *out = NULL;
    int truncated = 0;
    for (j = 0; j < n; j++) {
      uint32_t r = rnd();
      /* Surrogates and controls are the interesting part. */
      in[j] = (uint16_t)(r % 4 == 0   ? 0xD800 + (r >> 8) % 0x800
                         : r % 4 == 1 ? (r >> 8) % 0x40
                                      : r >> 16);
    }
    CHECK_INT(jw_utf16_to_utf8(in, n, max, &out, &len, &truncated), 0);
    if (out == NULL)
      continue;
    CHECK(out[len] == 0);
    CHECK(truncated == (n > max));
    {
      /* Valid UTF-8 (jansson agrees), NULs aside: they are kept counted. */
      json_t *arr = json_pack("[o]", json_stringn_nocheck(out, len));
      json_error_t e;
      char *dumped = arr ? json_dumps(arr, JSON_COMPACT) : NULL;
      json_t *back = dumped ? json_loads(dumped, JSON_ALLOW_NUL, &e) : NULL;
      CHECK(back != NULL);
      json_decref(back);
      json_decref(arr);
      free(dumped);
    }
    free(out);
  }
  printf("utf16: %d inputs\n", rounds);
}

/* The renderer with hostile bytes in every string a process event holds:
 * one line, one JSON object, parseable. */
static void fuzz_render(int rounds) {
  static char s1[CAP], s2[CAP], s3[CAP];
  static const char *const seeds[] = {"C:\\agent\\agent.exe", "\"a b\" \\x \x1b[31m",
                                      "\xc3\xa9\xe2\x80\xae\xf0\x9f\x98\x80", "S-1-5-21-1-2-3"};
  jw_run_info_t run;
  int i;
  CHECK_INT(jw_run_info_init(&run, "fuzz", JW_TIER_LOCKDOWN), 0);
  for (i = 0; i < rounds; i++) {
    jw_event_t ev;
    jw_process_ref_t anc[2];
    char *line = NULL;
    size_t len = 0, l1, l2, l3;
    json_t *back;
    json_error_t e;
    l1 = input(seeds, 4, s1);
    l2 = input(seeds, 4, s2);
    l3 = input(seeds, 4, s3);
    s1[l1] = s2[l2] = s3[l3] = 0;
    jw_event_init(&ev, JW_EVENT_PROCESS_EXIT, "child_process", "observed", "monitor", "port",
                  JW_SEV_INFO);
    ev.has_process = 1;
    ev.process.pid = rnd();
    ev.process.create_time = rnd() % 2 ? ((uint64_t)rnd() << 32 | rnd()) : 0;
    ev.process.end_time = rnd() % 2 ? ((uint64_t)rnd() << 32 | rnd()) : 0;
    ev.process.image = s1;
    ev.process.image_len = rnd() % 2 ? l1 : 0;
    ev.process.command_line = s2;
    ev.process.command_line_len = rnd() % 2 ? l2 : 0;
    ev.process.user_sid = s3;
    ev.process.user_name = rnd() % 2 ? s1 : NULL;
    memset(anc, 0, sizeof(anc));
    anc[0].pid = rnd();
    anc[0].create_time = rnd();
    anc[0].image = s2;
    anc[0].image_len = l2;
    anc[1] = anc[0];
    anc[1].image = NULL;
    ev.process.ancestry = anc;
    ev.process.n_ancestry = below(3);
    ev.process.has_exit_code = 1;
    ev.process.exit_code = rnd();
    ev.process.unavailable[0].field = "cpu";
    ev.process.unavailable[0].reason = s3;
    ev.process.n_unavailable = rnd() % 2;
    memcpy(ev.message, s1, l1 < sizeof(ev.message) - 1 ? l1 : sizeof(ev.message) - 1);
    ev.message[sizeof(ev.message) - 1] = 0;
    /* The rest of what an event can carry, hostile where it can be. */
    if (rnd() % 2) {
      ev.kind = JW_EVENT_VIOLATION;
      ev.rule = rnd() % 2 ? "active_processes" : s2;
      ev.action = rnd() % 2 ? "blocked" : s3;
      ev.enforcer = s1;
      ev.tags[0] = rnd() % 2 ? "attack.t1055" : s3;
      ev.tags[1] = rnd() % 2 ? s1 : NULL;
      ev.has_limit = 1;
      ev.limit_name = s2;
      ev.limit_unit = "processes";
      ev.limit_configured = rnd() % 2 ? rnd() : 0;
      ev.has_limit_observed = (int)(rnd() % 2);
      ev.limit_observed = (uint64_t)rnd() << 33;
      ev.limit_observed_source = rnd() % 2 ? "accounting" : NULL;
      memcpy(ev.limit_unavailable, s3,
             l3 < sizeof(ev.limit_unavailable) ? l3 : sizeof(ev.limit_unavailable));
      ev.limit_unavailable_where = rnd() % 2 ? "QueryInformationJobObject" : NULL;
      ev.has_limit_unavailable_error = (int)(rnd() % 2);
      ev.limit_unavailable_error = rnd();
    }
    ev.process.sha256 = rnd() % 2 ? s3 : NULL;
    ev.process.pe_company = rnd() % 2 ? s1 : NULL;
    ev.process.pe_product = rnd() % 3 == 0 ? "" : NULL;
    ev.process.has_code_signature = (int)(rnd() % 2);
    ev.process.cs_status = rnd() % 2 ? s2 : NULL;
    ev.process.cs_subject_name = s3;
    ev.process.has_parent = (int)(rnd() % 2);
    ev.process.parent_pid = rnd();
    ev.process.parent_create_time = rnd() % 2 ? rnd() : 0;
    ev.process.has_cpu = ev.process.has_io = ev.process.has_peak_working_set = (int)(rnd() % 2);
    ev.process.cpu_user_100ns = (uint64_t)rnd() << 40;
    ev.process.io_read_bytes = UINT64_MAX - rnd();              /* clamped at INT64_MAX */
    ev.process.unavailable[1].field = rnd() % 2 ? "io" : "cpu"; /* "cpu": a repeated key */
    ev.process.unavailable[1].reason = s1;
    if (ev.process.n_unavailable == 1 && rnd() % 2)
      ev.process.n_unavailable = 2;
    if (rnd() % 2) {
      json_t *x = json_object();
      json_object_set_new(x, "hostile", json_stringn(s1, l1)); /* NULL when invalid: not set */
      json_object_set_new(x, rnd() % 2 ? "seq" : "gap", json_integer((json_int_t)rnd()));
      json_object_set_new(x, "n", json_real(rnd() / 7.0));
      ev.extra = x;
    }
    CHECK_INT(jw_event_render_line(&ev, &run, 1 + (uint64_t)i, jw_now_us(), &line, &len), 0);
    CHECK(line != NULL && len > 0 && line[len - 1] == '\n' && memchr(line, '\n', len - 1) == NULL);
    back = line ? json_loadb(line, len, JSON_ALLOW_NUL, &e) : NULL;
    CHECK(back != NULL && json_is_object(back));
    json_decref(back);
    /* The direct renderer against the reference, byte for byte. */
    {
      char *ref = NULL;
      size_t ref_len = 0;
      uint64_t t = jw_now_us();
      free(line);
      line = NULL;
      CHECK_INT(jw_event_render_line(&ev, &run, 1 + (uint64_t)i, t, &line, &len), 0);
      CHECK_INT(jw__event_render_jansson(&ev, &run, 1 + (uint64_t)i, t, &ref, &ref_len), 0);
      jw_test_checks++;
      if (line == NULL || ref == NULL || len != ref_len || memcmp(line, ref, len) != 0) {
        jw_test_failures++;
        fprintf(stderr,
                "render: direct and reference differ at input %d\n  direct:  %.*s  jansson: %.*s",
                i, line ? (int)len : 0, line ? line : "", ref ? (int)ref_len : 0, ref ? ref : "");
      }
      free(ref);
    }
    /* The emitter's way: the run's parts rendered once (here from a run
     * whose context is hostile too) and copied, the line behind a queue
     * item's room, into a recycled buffer of any size. */
    {
      jw_run_info_t hr = run;
      jw__run_frags_t frags;
      jw__linebuf_t lb = {NULL, 0, 40, 0};
      char *ref = NULL;
      size_t ref_len = 0;
      uint64_t t = jw_now_us();
      int rc, ref_rc;
      jw__strlcpy(hr.host, s1, sizeof(hr.host));
      jw__strlcpy(hr.job_name, s2, sizeof(hr.job_name));
      jw__strlcpy(hr.user_id, rnd() % 2 ? s3 : "", sizeof(hr.user_id));
      jw__strlcpy(hr.user_name, s1, sizeof(hr.user_name));
      if (rnd() % 2)
        jw__run_unavailable(&hr, rnd() % 2 ? "host.id" : s3, "%s", s2);
      CHECK_INT(jw__run_frags_make(&hr, &frags), 0);
      if (rnd() % 2) {
        lb.cap = 41 + below(3000);
        lb.buf = malloc(lb.cap);
      }
      /* Both refuse the same events (an ill-formed key in the run's
       * unavailable map: jansson refuses it), else give the same bytes. */
      rc = jw__event_render_into(&ev, &hr, &frags, 1 + (uint64_t)i, t, &lb);
      ref_rc = jw__event_render_jansson(&ev, &hr, 1 + (uint64_t)i, t, &ref, &ref_len);
      jw_test_checks++;
      if (rc != ref_rc || (rc == 0 && (lb.buf == NULL || ref == NULL || lb.len != ref_len ||
                                       memcmp(lb.buf + lb.head, ref, ref_len) != 0))) {
        jw_test_failures++;
        fprintf(stderr,
                "render: the emitter's way and the reference differ at input %d (rc %d / %d)\n"
                "  direct:  %.*s  jansson: %.*s",
                i, rc, ref_rc, lb.buf ? (int)lb.len : 0, lb.buf ? lb.buf + lb.head : "",
                ref ? (int)ref_len : 0, ref ? ref : "");
      }
      free(lb.buf);
      free(ref);
      jw__run_frags_free(&frags);
    }
    json_decref((json_t *)ev.extra);
    free(line);
  }
  printf("rendered events: %d inputs\n", rounds);
}

/* Continuation records (src/parts.c): real part lines of three lines
 * (escapes, multi-byte characters), damaged or as they are, fed in a
 * random order to one reassembler with a small cap. Each answer is one
 * of the documented ones; a whole line is valid UTF-8 of the length its
 * parts announced; a refusal says why in printable text; the reassembler
 * never holds more than its cap. */
typedef struct {
  char *l[64];
  size_t n;
} fz_parts_t;

static int fz_collect(void *ctx, const char *part, size_t len) {
  fz_parts_t *p = ctx;
  if (p->n < 64) {
    p->l[p->n] = malloc(len + 1);
    memcpy(p->l[p->n], part, len + 1);
    p->n++;
  }
  return 0;
}

static void fuzz_parts(int rounds) {
  static char buf[CAP];
  static char src[3][1400];
  fz_parts_t fp;
  jw__parts_t *r = jw__parts_new();
  int i, counts[5] = {0, 0, 0, 0, 0};
  size_t k;
  memset(&fp, 0, sizeof(fp));
  for (k = 0; k < 3; k++) {
    /* 13 bytes: a quote, a backslash, a control byte, a 2- and a 3-byte
     * character; 107 of them, so the line ends after a whole character */
    static const char pat[] = "a\"\\\x01\xc3\xa9\xe2\x82\xac{}:,";
    size_t j;
    for (j = 0; j < 13 * 107; j++)
      src[k][j] = pat[j % (sizeof(pat) - 1)];
    src[k][13 * 107] = 0;
    CHECK_INT(jw__parts_split(src[k], strlen(src[k]), JW_PARTS_MIN_MAX + 200 * k, "fuzzrun", 7 + k,
                              fz_collect, &fp, NULL),
              0);
  }
  CHECK(fp.n > 6);
  jw__parts_set_cap(r, 16384);
  for (i = 0; i < rounds; i++) {
    const char *seeds[1];
    size_t len;
    jw__part_result_t res;
    int rc;
    seeds[0] = fp.l[below(fp.n)];
    if (rnd() % 3 == 0) {
      len = strlen(seeds[0]);
      memcpy(buf, seeds[0], len);
    } else {
      len = input(seeds, 1, buf);
    }
    rc = jw__parts_feed(r, buf, len, (uint64_t)i, &res);
    CHECK(rc == JW_EINVAL || (rc >= JW_PARTS_NONE && rc <= JW_PARTS_REPEAT));
    if (rc == JW_PARTS_WHOLE) {
      json_t *s = res.whole ? json_stringn(res.whole, res.whole_len) : NULL;
      CHECK(s != NULL && res.whole[res.whole_len] == 0);
      json_decref(s);
      free(res.whole);
    } else {
      CHECK(res.whole == NULL);
    }
    if (rc == JW_EINVAL)
      CHECK(res.why[0] != 0 && terminal_safe(res.why, strlen(res.why)));
    if (rc >= 0 && rc < 5)
      counts[rc]++;
    CHECK(jw__parts_held(r) <= 16384);
  }
  printf("parts: %d inputs: %d not parts, %d held, %d whole, %d repeats, %lu incomplete at the "
         "end\n",
         rounds, counts[0], counts[1], counts[2], counts[3],
         (unsigned long)jw__parts_pending(r, NULL, NULL));
  jw__parts_free(r);
  for (k = 0; k < fp.n; k++)
    free(fp.l[k]);
}

/* Inputs per target: fewer where each costs more (sanitizers, Wine), set
 * by CMake through JW_FUZZ_ROUNDS. */
static int g_rounds = 20000;

static void fuzz_policy_case(void) {
  fuzz_policy(g_rounds);
}

static void fuzz_requests_case(void) {
  fuzz_requests(g_rounds);
}

static void fuzz_replies_case(void) {
  fuzz_replies(g_rounds);
}

static void fuzz_tail_case(void) {
  fuzz_tail(g_rounds);
}

static void fuzz_cli_case(void) {
  fuzz_cli(g_rounds / 4);
}

static void fuzz_utf16_case(void) {
  fuzz_utf16(g_rounds / 4);
}

static void fuzz_render_case(void) {
  fuzz_render(g_rounds / 4);
}

static void fuzz_parts_case(void) {
  fuzz_parts(g_rounds);
}

/* Runnable one by one: `test_fuzz DATA OUT --case policy`. */
static const jw_test_case_t cases[] = {
    {"policy", fuzz_policy_case, 30},   {"requests", fuzz_requests_case, 30},
    {"replies", fuzz_replies_case, 30}, {"tail", fuzz_tail_case, 30},
    {"cli", fuzz_cli_case, 30},         {"utf16", fuzz_utf16_case, 30},
    {"render", fuzz_render_case, 60},   {"parts", fuzz_parts_case, 30},
};

int main(int argc, char **argv) {
  const char *env = getenv("JW_FUZZ_ROUNDS");
  if (env != NULL && atoi(env) > 0)
    g_rounds = atoi(env);
  return jw_test_run_cases("fuzz", argc, argv, cases, sizeof(cases) / sizeof(cases[0]));
}
