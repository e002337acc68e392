/* What the benchmarks share (tests/bench_emit.c, tests/bench_spool.c,
 * and the Windows ones in tests/win). */
#ifndef JW_BENCH_UTIL_H
#define JW_BENCH_UTIL_H

#include <stdio.h>
#include <string.h>

#include "jobwarden.h"

/* The directory a benchmark writes its files to: argv[1], required (they
 * write hundreds of megabytes; never into the working directory by
 * default). NULL after the usage line on stderr. */
static inline const char *bench_dir(int argc, char **argv, const char *usage) {
  if (argc < 2 || argv[1][0] == '\0' || argv[1][0] == '-') {
    fprintf(stderr, "usage: %s\n", usage);
    return NULL;
  }
  return argv[1];
}

/* The benchmarks' event: a child's start, about 1 KB rendered. */
static inline void make_event(jw_event_t *ev, uint32_t i) {
  memset(ev, 0, sizeof(*ev));
  ev->kind = JW_EVENT_PROCESS_START;
  ev->rule = "child_process";
  ev->action = "observed";
  ev->source = "port";
  ev->severity = JW_SEV_INFO;
  ev->has_job_message = 1;
  ev->job_message = 6;
  ev->has_process = 1;
  ev->process.pid = 1000 + i;
  ev->process.create_time = 134000000000000000ull + i;
  ev->process.image = "C:\\Users\\agent\\AppData\\Local\\Programs\\tool\\child.exe";
  ev->process.has_parent = 1;
  ev->process.parent_pid = 999;
  snprintf(ev->message, sizeof(ev->message),
           "child process C:\\Users\\agent\\AppData\\Local\\Programs\\tool\\child.exe (pid %u, "
           "parent 999) started",
           (unsigned)(1000 + i));
}

#endif
