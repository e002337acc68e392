/* A monitored job for the Windows tests: job + emitter (file exporter) +
 * monitor + race-free spawn of this executable in a helper mode, exactly as
 * `jobwarden run` wires them, with the test in control in between. */
#ifndef JW_TEST_WIN_RIG_H
#define JW_TEST_WIN_RIG_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "win/win.h"

typedef struct rig_s {
  jw_job_t job;
  jw_emitter_t *em;
  jw_monitor_t *mon;
  jw_child_t child;
  jw_monitor_stats_t stats;
  char path[1024];
  jw_exporter_t *extra; /* the second sink of rig_start_ex, owned by em */
} rig_t;

static inline int rig_set_root(void *ctx, jw_child_t *child) {
  return jw_monitor_set_root((jw_monitor_t *)ctx, child);
}

static inline const char *rig_self_utf8(void) {
  static char buf[MAX_PATH * 3];
  if (buf[0] == 0)
    WideCharToMultiByte(CP_UTF8, 0, tw_self(), -1, buf, sizeof(buf), NULL, NULL);
  return buf;
}

/* Fills argv (16 slots) with `self --helper args...` and opt with it. */
static inline void rig_helper_options(jw_spawn_options_t *opt, const char **argv,
                                      const char *const *args, int nargs) {
  int i;
  argv[0] = rig_self_utf8();
  argv[1] = "--helper";
  for (i = 0; i < nargs && i < 13; i++)
    argv[2 + i] = args[i];
  memset(opt, 0, sizeof(*opt));
  opt->argv = argv;
  opt->argc = 2 + (nargs < 13 ? nargs : 13);
}

/* Starts `self --helper args...` in a job built from `policy`; events go to
 * <dir>/wine-<name>.jsonl and, when extra_spec is not NULL, to that sink
 * too (r->extra). Returns 0 or -1 (reported on stderr). */
static inline int rig_start_ex(rig_t *r, const char *dir, const char *name,
                               const jw_policy_t *policy, const char *const *args, int nargs,
                               const char *extra_spec) {
  jw_run_info_t run;
  jw_policy_t eff;
  jw_exporter_t *exp;
  jw_error_t err;
  jw_spawn_options_t opt;
  const char *argv[16];
  char spec[1100];

  memset(r, 0, sizeof(*r));
  snprintf(r->path, sizeof(r->path), "%s/wine-%s.jsonl", dir, name);
  remove(r->path);
  tw_kit_show_record(r->path);
  jw_policy_resolve(policy, &eff);
  snprintf(spec, sizeof(spec), "file:%s", r->path);
  /* Queue room for wine.real.pipe's 5000-packet burst, so that the file
   * keeps every line even on a loaded machine (the file is the reference). */
  if (jw_run_info_init(&run, name, eff.tier) != 0 || jw_emitter_new(&run, &r->em) != 0 ||
      jw_exporter_open(spec, &exp, &err) != 0 || jw_emitter_add(r->em, exp) != 0 ||
      (extra_spec != NULL && (jw_exporter_open(extra_spec, &r->extra, &err) != 0 ||
                              jw_emitter_add(r->em, r->extra) != 0)) ||
      jw_emitter_start(r->em, 16384) != 0) {
    fprintf(stderr, "rig %s: emitter set-up failed\n", name);
    return -1;
  }
  if (jw_job_create(&r->job, &eff, &err) != 0 ||
      jw_monitor_start(&r->job, r->em, &r->mon, &err) != 0) {
    fprintf(stderr, "rig %s: %s\n", name, err.text);
    return -1;
  }
  rig_helper_options(&opt, argv, args, nargs);
  opt.before_resume = rig_set_root;
  opt.ctx = r->mon;
  if (jw_spawn(r->job.job, &opt, &r->child, &err) != 0) {
    fprintf(stderr, "rig %s: %s\n", name, err.text);
    return -1;
  }
  return 0;
}

static inline int rig_start(rig_t *r, const char *dir, const char *name, const jw_policy_t *policy,
                            const char *const *args, int nargs) {
  return rig_start_ex(r, dir, name, policy, args, nargs, NULL);
}

/* Waits for the root (20 s) and the job's end (5 s), stops the monitor,
 * closes everything and returns the events written (new reference, NULL
 * if the log is unreadable or torn). */
static inline json_t *rig_finish(rig_t *r) {
  if (r->child.process != NULL && WaitForSingleObject(r->child.process, 20000) != WAIT_OBJECT_0) {
    fprintf(stderr, "rig: the root did not exit in time; terminating the job\n");
    TerminateJobObject(r->job.job, 1);
  }
  if (r->mon != NULL) {
    WaitForSingleObject(jw_monitor_done_event(r->mon), 5000);
    if (jw_monitor_stop(r->mon, 5000, &r->stats) != 0)
      fprintf(stderr, "rig: the monitor did not stop\n");
  }
  jw_child_close(&r->child);
  jw_job_close(&r->job);
  jw_emitter_free(r->em);
  return tw_read_events(r->path);
}

#endif
