/* `jobwarden run`: policy -> job -> monitor -> spawn -> wait -> report. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "seal.h"
#include "win/win.h"

#define STOP_TIMEOUT_MS  5000
#define DRAIN_TIMEOUT_MS 10000 /* the exporters' writers finish what is queued */
#define RELAY_TIMEOUT_MS 5000  /* the program's output reaches its destination */
/* Lines queued per sink before lifecycle events are dropped for it (alerts
 * spill to four times this). */
#define JW_RUN_QUEUE_CAPACITY 4096

static HANDLE g_interrupt; /* owner: the process; set by the console handler */
static HANDLE g_finished;  /* owner: the process; set once a run's log is complete */
static volatile LONG g_ctrl_type = -1;

/* Runs on a thread the system creates. Ctrl-C / Ctrl-Break / console close
 * only raise a flag; the main thread terminates the job and writes the end
 * of the record. For close/logoff/shutdown the process dies when this
 * returns, so it waits (bounded) for the record to be complete. */
BOOL WINAPI jw__run_console_ctrl(DWORD type) {
  switch (type) {
  case CTRL_C_EVENT:
  case CTRL_BREAK_EVENT:
  case CTRL_CLOSE_EVENT:
  case CTRL_LOGOFF_EVENT:
  case CTRL_SHUTDOWN_EVENT:
    InterlockedExchange(&g_ctrl_type, (LONG)type);
    SetEvent(g_interrupt);
    if (type >= CTRL_CLOSE_EVENT)
      WaitForSingleObject(g_finished, STOP_TIMEOUT_MS);
    return TRUE;
  default:
    return FALSE;
  }
}

/* "jobwarden: <text>\n" on stderr in one write. */
static void say(const char *prefix, const char *text) {
  char buf[1200];
  int n = snprintf(buf, sizeof(buf), "jobwarden: %s%s\n", prefix, text);
  if (n > 0)
    jw__stderr_write(buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

static void emit_notice(jw_emitter_t *em, const char *rule, const char *action, jw_severity_t sev,
                        const jw_error_t *err, const char *message) {
  jw_event_t ev;
  jw_event_init(&ev, JW_EVENT_NOTICE, rule, action, "monitor", "jobwarden", sev);
  jw__strlcpy(ev.message, message, sizeof(ev.message));
  if (err != NULL)
    ev.extra = json_pack("{s:{s:s,s:s,s:I}}", "error", "where", err->where, "code",
                         jw_err_name(err->code), "win32_error", (json_int_t)err->sys_error);
  jw_emit(em, &ev);
}

/* job_config.notification_limits: the warning thresholds jobwarden asked
 * Windows for (null where none) and whether it accepted them. Values
 * beyond a JSON integer saturate, as the event renderer's do. */
static json_t *threshold_json(uint64_t v) {
  if (v == 0)
    return json_null();
  return json_integer(v > (uint64_t)INT64_MAX ? (json_int_t)INT64_MAX : (json_int_t)v);
}

static void add_notification_config(json_t *extra, const jw_job_t *job) {
  json_t *config = json_object_get(extra, "job_config"), *n;
  if (config == NULL || (job->notify_job_memory == 0 && job->notify_job_time_ms == 0))
    return;
  n = json_pack("{s:o,s:o,s:b}", "job_memory", threshold_json(job->notify_job_memory),
                "job_cpu_time_ms", threshold_json(job->notify_job_time_ms), "applied",
                !job->notify_refused);
  if (n != NULL)
    json_object_set_new(config, "notification_limits", n);
}

/* The kernel refused the notification limits: said once, in-band. The
 * hard limits still hold; only the guaranteed warning before them is
 * lost. */
static void report_notifications_refused(jw_emitter_t *em, const jw_job_t *job) {
  jw_error_t err;
  char msg[400], text[128], which[96];
  jw__sys_error_text(job->notify_error, text, sizeof(text));
  memset(&err, 0, sizeof(err));
  err.code = JW_ESYS;
  err.sys_error = job->notify_error;
  jw__strlcpy(err.where, "SetInformationJobObject(NotificationLimitInformation)",
              sizeof(err.where));
  which[0] = '\0';
  if (job->notify_job_memory != 0)
    snprintf(which, sizeof(which), "job memory at %llu bytes",
             (unsigned long long)job->notify_job_memory);
  if (job->notify_job_time_ms != 0)
    snprintf(which + strlen(which), sizeof(which) - strlen(which), "%sjob CPU time at %llu ms",
             which[0] ? ", " : "", (unsigned long long)job->notify_job_time_ms);
  snprintf(msg, sizeof(msg),
           "Windows refused the notification limits (warnings: %s) with Win32 error %lu (%s); "
           "the hard limits still apply, without a guaranteed warning before them",
           which, (unsigned long)job->notify_error, text);
  emit_notice(em, "notification_limits_unavailable", "degraded", JW_SEV_LOW, &err, msg);
}

/* What job_start reports and when: it is written once, first, as late as
 * possible (while the root is suspended in the job, so that it can say
 * what token the root really got), or on the way out of a failed set-up. */
typedef struct {
  jw_emitter_t *em;
  const jw_policy_t *pol;
  const jw_run_config_t *cfg;
  const jw_job_t *job;
  jw_monitor_t *mon;
  json_t *token_built; /* owned: jw__token_describe of the built token, or NULL */
  int self_protect_rc; /* jw__self_protect's result at start */
  jw_error_t self_protect_err;
  unsigned uninherited; /* handles jw__handles_uninherit made non-inheritable */
  unsigned inheritable; /* handles that stayed inheritable */
  int emitted;
  uint64_t run_start_us; /* the run's start, job_start's @timestamp */
} start_ctx_t;

/* job_config.kill_on_close: "on", "opted_out" (the policy turned it off)
 * or "refused" (the kernel did: jobwarden runs in a job that forbids it). */
static const char *kill_on_close_state(const start_ctx_t *sc) {
  if (sc->job->kill_on_close_refused)
    return "refused";
  return sc->job->policy.kill_on_close ? "on" : "opted_out";
}

/* Where the program's token is not what the policy asked: the built
 * token lacks Low integrity or still holds privileges beyond
 * SeChangeNotifyPrivilege, or the child's own token differs from the
 * built one (Wine: both). Returns the number of gaps and describes them
 * in `why` (may be NULL). */
static int token_gap(const start_ctx_t *sc, json_t *child, char *why, size_t size) {
  jw_token_mode_t mode = sc->pol->token;
  json_t *built = sc->token_built, *privs;
  int gaps = 0;
  const char *s;
  if (why != NULL && size > 0)
    why[0] = '\0';
#define GAP(...)                                                                                   \
  do {                                                                                             \
    gaps++;                                                                                        \
    if (why != NULL)                                                                               \
      snprintf(why + strlen(why), size - strlen(why), __VA_ARGS__);                                \
  } while (0)
  if (mode == JW_TOKEN_INHERIT)
    return 0;
  if (built == NULL) {
    GAP("the token was not read back; ");
    return gaps;
  }
  s = json_string_value(json_object_get(built, "integrity"));
  if ((mode == JW_TOKEN_LOW_INTEGRITY || mode == JW_TOKEN_RESTRICTED_LOW) &&
      (s == NULL || strcmp(s, "low") != 0))
    GAP("the built token's integrity is %s, not low; ", s ? s : "unknown");
  privs = json_object_get(built, "privileges");
  if ((mode == JW_TOKEN_RESTRICTED || mode == JW_TOKEN_RESTRICTED_LOW) &&
      (!json_is_array(privs) || json_array_size(privs) > 1 ||
       (json_array_size(privs) == 1 && strcmp(json_string_value(json_array_get(privs, 0))
                                                  ? json_string_value(json_array_get(privs, 0))
                                                  : "",
                                              "SeChangeNotifyPrivilege") != 0)))
    GAP("the built token keeps %lu privilege(s); ", (unsigned long)json_array_size(privs));
  if (child != NULL) {
    if (!json_equal(json_object_get(child, "integrity"), json_object_get(built, "integrity")))
      GAP("the program's integrity is %s, not the built token's %s; ",
          json_string_value(json_object_get(child, "integrity"))
              ? json_string_value(json_object_get(child, "integrity"))
              : "unknown",
          s ? s : "unknown");
    if (!json_equal(json_object_get(child, "privileges"), privs))
      GAP("the program holds %lu privilege(s), the built token %lu; ",
          (unsigned long)json_array_size(json_object_get(child, "privileges")),
          (unsigned long)json_array_size(privs));
    if (!json_equal(json_object_get(child, "deny_only"), json_object_get(built, "deny_only")))
      GAP("the program's deny-only groups differ from the built token's; ");
  }
#undef GAP
  return gaps;
}

/* The "token" object: the mode asked, what the built token holds (read
 * back before the spawn), and what the root's own token holds (read from
 * the child, suspended): under Wine the two differ. */
static json_t *token_json(const start_ctx_t *sc, const jw_child_t *child) {
  json_t *t = json_pack("{s:s}", "requested", jw_token_mode_name(sc->pol->token));
  if (t == NULL)
    return NULL;
  if (sc->token_built != NULL)
    json_object_set_new(t, "built", json_deep_copy(sc->token_built));
  if (child != NULL && child->process != NULL) {
    json_t *c = jw__token_describe_process(child->process);
    if (c != NULL)
      json_object_set_new(t, "child", c);
    json_object_set_new(t, "applied", json_boolean(token_gap(sc, c, NULL, 0) == 0));
  } else {
    json_object_set_new(
        t, "unavailable",
        json_pack("[{s:s,s:s}]", "field", "child", "reason", "the program was not started"));
  }
  return t;
}

static void emit_job_start(start_ctx_t *sc, const jw_child_t *child) {
  const jw_policy_t *pol = sc->pol;
  const jw_run_config_t *cfg = sc->cfg;
  jw_event_t ev;
  json_t *argv = json_array(), *self, *tok;
  char msg[700];
  int i;
  if (sc->emitted)
    return;
  sc->emitted = 1;
  jw_event_init(&ev, JW_EVENT_JOB_START, "job", "observed", NULL, "jobwarden", JW_SEV_INFO);
  /* When the run began: before the job and the root existed. */
  ev.time_us = sc->run_start_us;
  for (i = 0; argv != NULL && i < cfg->argc; i++) {
    json_t *s = json_stringn(cfg->argv[i], strlen(cfg->argv[i]));
    if (s != NULL)
      json_array_append_new(argv, s);
  }
  if (sc->self_protect_rc == 0)
    self = json_pack("{s:b}", "process_dacl", 1);
  else
    self = json_pack("{s:b,s:{s:s,s:s,s:I}}", "process_dacl", 0, "error", "where",
                     sc->self_protect_err.where, "code", jw_err_name(sc->self_protect_err.code),
                     "win32_error", (json_int_t)sc->self_protect_err.sys_error);
  if (self != NULL) {
    json_object_set_new(self, "handles_made_uninheritable", json_integer(sc->uninherited));
    json_object_set_new(self, "inheritable_handles", json_integer(sc->inheritable));
  }
  /* The event gets its own copy of the token object (an event handed to
   * the emitter shares nothing); ours is checked once the event is out. */
  tok = token_json(sc, child);
  ev.extra = json_pack("{s:o,s:{s:o,s:b,s:s,s:o},s:o}", "policy", (json_t *)jw_policy_to_json(pol),
                       "job_config", "command", argv ? argv : json_array(), "kill_on_close_applied",
                       sc->job->policy.kill_on_close, "kill_on_close", kill_on_close_state(sc),
                       "self_protection", self ? self : json_object(), "token",
                       tok ? json_deep_copy(tok) : json_null());
  add_notification_config(ev.extra, sc->job);
  snprintf(ev.message, sizeof(ev.message), "job created with tier %s; starting %.300s",
           jw_tier_name(pol->tier), cfg->argc > 0 ? cfg->argv[0] : "?");
  jw_emit(sc->em, &ev);

  /* What degrades the containment is said right after. */
  if (child != NULL && child->process != NULL && sc->pol->token != JW_TOKEN_INHERIT) {
    json_t *c = json_object_get(tok, "child");
    char why[500];
    if (token_gap(sc, c, why, sizeof(why)) > 0) {
      snprintf(msg, sizeof(msg),
               "the program runs with more than the policy's token %s: %.500s(job_start's token "
               "object has the values read back)",
               jw_token_mode_name(sc->pol->token), why);
      emit_notice(sc->em, "token_not_applied", "degraded", JW_SEV_HIGH, NULL, msg);
    }
  }
  if (sc->self_protect_rc != 0) {
    snprintf(msg, sizeof(msg),
             "jobwarden could not protect its own process (%.400s); the program may open it",
             sc->self_protect_err.text);
    say("warning: ", msg);
    emit_notice(sc->em, "self_protection_unavailable", "degraded", JW_SEV_HIGH,
                &sc->self_protect_err, msg);
  }
  if (sc->job->kill_on_close_refused) {
    snprintf(msg, sizeof(msg),
             "KILL_ON_JOB_CLOSE was refused (Win32 error %lu: jobwarden itself runs in a job "
             "that forbids it); the job runs without it, so a killed jobwarden would leave "
             "the sandboxed processes running",
             (unsigned long)sc->job->kill_on_close_error);
    say("warning: ", msg);
    emit_notice(sc->em, "kill_on_close_unavailable", "degraded", JW_SEV_HIGH, NULL, msg);
  }
  if (sc->job->notify_refused)
    report_notifications_refused(sc->em, sc->job);
  json_decref(tok);
}

/* The root is suspended in the job: job_start (with the root's token),
 * then the root's process_start. */
static int set_root_cb(void *ctx, jw_child_t *child) {
  start_ctx_t *sc = ctx;
  emit_job_start(sc, child);
  return jw_monitor_set_root(sc->mon, child);
}

static uint32_t active_processes(HANDLE job) {
  JOBOBJECT_BASIC_ACCOUNTING_INFORMATION acc;
  if (!QueryInformationJobObject(job, JobObjectBasicAccountingInformation, &acc, sizeof(acc), NULL))
    return 0;
  return acc.ActiveProcesses;
}

int jw_run(const jw_run_config_t *cfg) {
  static const char *const default_export[] = {"file:jobwarden-events.jsonl"};
  const char *policy_exports[JW_POLICY_MAX_EXPORTERS];
  const char *const *exports = default_export;
  int n_exports = 1;
  jw_policy_t pol;
  jw_run_info_t run;
  jw_emitter_t *em = NULL;
  jw_job_t job;
  jw_monitor_t *mon = NULL;
  jw_control_t *ctl = NULL;
  jw_child_t child;
  jw_spawn_options_t opt;
  jw_error_t err;
  jw_monitor_stats_t stats;
  start_ctx_t sc;
  HANDLE token = NULL; /* owner: jw_run; the program's primary token, NULL = jobwarden's */
  jw_exporter_t *sinks[JW_POLICY_MAX_EXPORTERS + JW_CLI_MAX_EXPORTS]; /* owned by em */
  jw__agent_output_t agent_out = JW_AGENT_OUT_INHERIT;
  const char *agent_path = NULL;
  jw__relay_t *relay = NULL; /* the program's own output stream (src/win/relay.c) */
  HANDLE agent_stdio = NULL; /* its write end: owned by relay */
  jw__gate_t *gate = NULL;   /* pipe readers' gate; outlives the exporters */
  const char *rule_kill = NULL, *control_kill = NULL;
  int rule_kill_job = 0, control_kill_job = 0;
  char name[JW_POLICY_NAME_MAX + 32];
  char msg[700];
  int status = JW_EXIT_JW_ERROR, i, rc, sealed = 0;
  DWORD exit_code = 0;
  jw_seal_key_t seal_key; /* wiped once every sink has its chain */

  memset(&job, 0, sizeof(job));
  memset(&seal_key, 0, sizeof(seal_key));
  memset(&child, 0, sizeof(child));
  InterlockedExchange(&g_ctrl_type, -1);
  memset(&err, 0, sizeof(err));
  memset(&sc, 0, sizeof(sc));
  /* First of all, before any exporter, pipe, thread or process exists:
   * jobwarden's own process behind a DACL the program cannot pass. A
   * failure is reported in job_start and in a notice; the run goes on. */
  sc.self_protect_rc = jw__self_protect(&sc.self_protect_err);
  jw_policy_resolve(&cfg->policy, &pol);
  sc.pol = &pol;
  sc.cfg = cfg;
  sc.job = &job;
  /* --export flags replace the policy file's "exporters"; with neither, the
   * default file. */
  if (cfg->n_exports > 0) {
    exports = cfg->exports;
    n_exports = cfg->n_exports;
  } else if (pol.n_exporters > 0) {
    for (i = 0; i < pol.n_exporters && i < JW_POLICY_MAX_EXPORTERS; i++)
      policy_exports[i] = pol.exporters[i];
    exports = policy_exports;
    n_exports = i;
  }
  /* The default name ("<program>-<host>-<run id>") needs the run id:
   * jw_run_info_init_for makes it below. */
  jw__strlcpy(name, pol.name, sizeof(name));

  /* The program never shares a stream with an event sink: checked before
   * anything is opened. */
  if (jw__agent_output_resolve(cfg->agent_output, exports, n_exports, &agent_out, &agent_path,
                               &err) != 0) {
    say("", err.text);
    goto done;
  }

  /* Created once per process and reset per run: the console handler may
   * still refer to them after a run ends. */
  if (g_interrupt == NULL)
    g_interrupt = CreateEventW(NULL, TRUE, FALSE, NULL);
  if (g_finished == NULL)
    g_finished = CreateEventW(NULL, TRUE, FALSE, NULL);
  if (g_interrupt == NULL || g_finished == NULL || !ResetEvent(g_interrupt) ||
      !ResetEvent(g_finished)) {
    say("", "cannot create events (out of resources)");
    goto done;
  }
  /* The control pipe first: a name that is already served stops the run
   * before any file, pipe or process exists. */
  if (cfg->control_name != NULL && jw_control_open(cfg->control_name, &ctl, &err) != 0) {
    say("", err.text);
    goto done;
  }
  if (jw_run_info_init_for(&run, pol.name[0] ? name : NULL, cfg->argv[0], pol.tier) != 0 ||
      jw_emitter_new(&run, &em) != 0) {
    say("", "cannot initialize the run (no random source or out of memory)");
    goto done;
  }
  jw__strlcpy(name, run.job_name, sizeof(name));
  sc.run_start_us = run.start_us;
  /* Sealing: the master key is read (or made and written once) before any
   * sink exists, each sink's chain is derived from it, and then it is
   * wiped: from here on this process holds only keys that evolve. */
  if (pol.seal_key[0] != '\0') {
    int krc = pol.seal_key_existing ? jw_seal_key_read(pol.seal_key, &seal_key, &err)
                                    : jw_seal_key_generate(&seal_key);
    if (krc == 0 && !pol.seal_key_existing)
      krc = jw_seal_key_write(pol.seal_key, &seal_key, &err);
    else if (krc != 0 && !pol.seal_key_existing)
      jw_error_set(&err, krc, 0, "seal", "cannot make a seal key (no random source)");
    if (krc != 0) {
      say("", err.text);
      goto done;
    }
    sealed = 1;
  }
  for (i = 0; i < n_exports; i++) {
    jw_exporter_t *exp;
    if (jw_exporter_open(exports[i], &exp, &err) != 0) {
      say("", err.text);
      goto done;
    }
    if (sealed) {
      char stream[16];
      snprintf(stream, sizeof(stream), "%d", i);
      if (jw_seal_new(&seal_key, run.run_id, stream, &exp->seal) != 0) {
        jw_exporter_close(exp);
        say("", "cannot start the seal chain (out of memory)");
        goto done;
      }
    }
    if (jw_emitter_add(em, exp) != 0) {
      jw_exporter_close(exp);
      say("", "out of memory");
      goto done;
    }
    sinks[i] = exp;
  }

  jw_seal_key_wipe(&seal_key);

  /* From here on every sink is fed by its own writer thread: the monitor
   * never waits for an exporter. */
  if (jw_emitter_start(em, JW_RUN_QUEUE_CAPACITY) != 0) {
    say("", "cannot start the exporter threads");
    goto done;
  }
  if (jw_job_create(&job, &pol, &err) != 0) {
    say("", err.text);
    emit_notice(em, "setup_failed", "blocked", JW_SEV_CRITICAL, &err, err.text);
    goto done;
  }
  sc.em = em;
  /* The program's token, read back before the spawn. A token that cannot
   * be built stops the run: the policy asked for less than jobwarden
   * has, and the program must not get more. */
  if (jw__token_build(pol.token, &token, &err) != 0) {
    say("", err.text);
    emit_job_start(&sc, NULL);
    emit_notice(em, "setup_failed", "blocked", JW_SEV_CRITICAL, &err, err.text);
    goto done;
  }
  if (token != NULL)
    sc.token_built = jw__token_describe(token);
  if (jw_monitor_start(&job, em, &mon, &err) != 0) {
    say("", err.text);
    emit_job_start(&sc, NULL);
    emit_notice(em, "setup_failed", "blocked", JW_SEV_CRITICAL, &err, err.text);
    goto done;
  }
  sc.mon = mon;
  /* Sinks that serve readers (pipe:) refuse the job's own processes from
   * now on, and record every refusal in-band. */
  if (jw__gate_new(job.job, jw_monitor_done_event(mon), em, &gate, &err) != 0) {
    say("", err.text);
    emit_job_start(&sc, NULL);
    emit_notice(em, "setup_failed", "blocked", JW_SEV_CRITICAL, &err, err.text);
    goto done;
  }
  for (i = 0; i < n_exports; i++)
    jw_exporter_set_gate(sinks[i], jw__gate_get(gate));
  /* A flood of refusals is summed up just before job_end. */
  jw_monitor_before_end(mon, jw__gate_close_record, gate);
  if (jw__relay_open(agent_out, agent_path, &relay, &agent_stdio, &err) != 0) {
    say("", err.text);
    emit_job_start(&sc, NULL);
    emit_notice(em, "setup_failed", "blocked", JW_SEV_CRITICAL, &err, err.text);
    goto done;
  }
  if (ctl != NULL && jw_control_start(ctl, &job, mon, em, &run, &err) != 0) {
    say("", err.text);
    emit_job_start(&sc, NULL);
    emit_notice(em, "setup_failed", "blocked", JW_SEV_CRITICAL, &err, err.text);
    goto done;
  }
  SetConsoleCtrlHandler(jw__run_console_ctrl, TRUE);
  /* Again, for the threads started since (writers, monitor, control). */
  if (sc.self_protect_rc == 0)
    sc.self_protect_rc = jw__self_protect(&sc.self_protect_err);
  /* No handle of jobwarden's (job, port, logs, pipes, sockets, events)
   * can be inherited: the program gets its three standard handles through
   * PROC_THREAD_ATTRIBUTE_HANDLE_LIST, duplicated for it alone. */
  jw__handles_uninherit(&sc.uninherited, &sc.inheritable);

  memset(&opt, 0, sizeof(opt));
  opt.argv = cfg->argv;
  opt.argc = cfg->argc;
  opt.before_resume = set_root_cb;
  opt.ctx = &sc;
  opt.token = token;
  opt.std_out = agent_stdio; /* NULL: jobwarden's own */
  opt.std_err = agent_stdio;
  rc = jw_spawn(job.job, &opt, &child, &err);
  if (rc != 0) {
    status = jw_cli_exit_status(rc);
    say("", err.text);
    emit_job_start(&sc, NULL);
    emit_notice(em, "spawn_failed", "blocked", JW_SEV_HIGH, &err, err.text);
    goto done;
  }
  if (jw__relay_start(relay, &err) != 0) {
    say("", err.text);
    emit_notice(em, "setup_failed", "killed_job", JW_SEV_CRITICAL, &err, err.text);
    TerminateJobObject(job.job, JW_TERMINATE_EXIT_CODE);
  }

  {
    HANDLE waits[2] = {child.process, g_interrupt};
    DWORD w = WaitForMultipleObjects(2, waits, FALSE, INFINITE);
    if (w == WAIT_OBJECT_0 + 1) {
      LONG type = g_ctrl_type;
      const char *reason = type == CTRL_C_EVENT       ? "interrupted by Ctrl-C"
                           : type == CTRL_BREAK_EVENT ? "interrupted by Ctrl-Break"
                                                      : "the console is closing";
      jw_monitor_note_terminating(mon, reason);
      snprintf(msg, sizeof(msg), "jobwarden was %s; terminating the job", reason);
      emit_notice(em, "interrupted", "killed_job", JW_SEV_MEDIUM, NULL, msg);
      if (!TerminateJobObject(job.job, JW_TERMINATE_EXIT_CODE))
        say("", "TerminateJobObject failed; the job is closed instead");
      WaitForSingleObject(child.process, STOP_TIMEOUT_MS);
    } else if (w != WAIT_OBJECT_0) {
      say("", "waiting for the program failed; terminating the job");
      jw_monitor_note_terminating(mon, "jobwarden could not wait for the program");
      TerminateJobObject(job.job, JW_TERMINATE_EXIT_CODE);
      WaitForSingleObject(child.process, STOP_TIMEOUT_MS);
    }
  }
  {
    /* Signaled is not yet ended under Wine: its exit code follows. */
    int64_t code = jw__proc_exit_code_settled(child.process, STOP_TIMEOUT_MS);
    if (code < 0) {
      say("", "cannot read the program's exit code");
      exit_code = JW_EXIT_JW_ERROR;
    } else {
      exit_code = (DWORD)code;
    }
  }
  /* A monitor rule that ended the root (kill_job, or the timeout's
   * kill_process) makes the run's status 124, as timeout(1) does: the
   * program's own code is only the one jobwarden gave it. */
  rule_kill = jw_monitor_rule_kill(mon, &rule_kill_job);
  if (rule_kill != NULL && exit_code != JW_TERMINATE_EXIT_CODE)
    rule_kill = NULL; /* the root had ended on its own first */
  if (rule_kill != NULL) {
    snprintf(msg, sizeof(msg), "the monitor rule %s terminated the %s (exit status %d)", rule_kill,
             rule_kill_job ? "job" : "program", JW_EXIT_RULE_KILLED);
    say("", msg);
  }

  /* A control request (`jobwarden kill`) that ended the root or the job:
   * the status stays the program's (0xC000013A, as after Ctrl-C). */
  control_kill = jw_monitor_control_kill(mon, &control_kill_job);
  if (control_kill != NULL && rule_kill == NULL && exit_code == JW_TERMINATE_EXIT_CODE) {
    snprintf(msg, sizeof(msg), "the %s was terminated on request (%s)",
             control_kill_job ? "job" : "program", control_kill);
    say("", msg);
  } else {
    control_kill = NULL;
  }

  /* The run ends with its root: whatever the root left behind in the job
   * is terminated, and that is reported. A job a rule or a control request
   * terminated has no leftovers to speak of: its members are already
   * dying. */
  if (!(rule_kill != NULL && rule_kill_job) && !(control_kill != NULL && control_kill_job)) {
    uint32_t left = active_processes(job.job);
    if (left > 0) {
      jw_event_t ev;
      jw_event_init(&ev, JW_EVENT_VIOLATION, "orphan_processes", "killed_job", "monitor",
                    "jobwarden", JW_SEV_MEDIUM);
      /* No limit was hit: the count is the rule's own fact. */
      ev.extra = json_pack("{s:{s:I}}", "orphans", "count", (json_int_t)left);
      snprintf(
          ev.message, sizeof(ev.message),
          "the root process exited leaving %lu process(es) in the job; jobwarden terminates them",
          (unsigned long)left);
      jw_monitor_note_terminating(mon, "the root process exited; leftovers terminated");
      jw_emit(em, &ev);
      TerminateJobObject(job.job, JW_TERMINATE_EXIT_CODE);
    }
  }
  WaitForSingleObject(jw_monitor_done_event(mon), STOP_TIMEOUT_MS);
  status = rule_kill != NULL ? JW_EXIT_RULE_KILLED : (int)exit_code;

done:
  jw_seal_key_wipe(&seal_key);
  /* Before the monitor it asks: the control thread stops first. */
  jw_control_close(ctl);
  ctl = NULL;
  if (mon != NULL) {
    if (jw_monitor_stop(mon, STOP_TIMEOUT_MS, &stats) != 0)
      say("", "the monitor did not stop in time; the event log may end early");
    mon = NULL;
  }
  jw_child_close(&child);
  jw_job_close(&job);
  if (token != NULL)
    CloseHandle(token);
  json_decref(sc.token_built);
  /* The job is gone: the program's output pipe reaches EOF (unless a
   * process outside the job holds it; then the relay is left behind). */
  if (jw__relay_finish(relay, RELAY_TIMEOUT_MS) == 0)
    jw__relay_free(relay);
  relay = NULL;
  if (em != NULL && jw_emitter_failed_sinks(em) > 0)
    say("", "some events could not be written to every exporter (see above)");
  /* A sink stuck in a write (a stdout pipe nobody reads, a hung share)
   * must not hold jobwarden forever: after DRAIN_TIMEOUT_MS it is named on
   * stderr and left behind with its writer; the process exits. */
  if (jw_emitter_drain(em, DRAIN_TIMEOUT_MS) == 0) {
    jw_emitter_free(em);
    jw__gate_free(gate); /* no exporter asks it any more */
  } else {
    say("", "exiting without waiting for the stuck exporter(s) named above");
  }
  SetConsoleCtrlHandler(jw__run_console_ctrl, FALSE);
  if (g_finished != NULL)
    SetEvent(g_finished);
  return status;
}
