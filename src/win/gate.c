/* The gate of `jobwarden run` for sinks that serve local clients (pipe:):
 * a client that is a process of the sandboxed job, or one that escaped it
 * (not in the job, but its parent is jobwarden or a process of the job), is
 * refused, and every refusal a sink reports becomes an event in the run's
 * own stream until the run's record is complete (then it is said on
 * stderr, so that job_end stays the last line).
 *
 * Cost of a flood (an agent connecting in a loop): the first
 * REFUSALS_DETAILED refusals of a run are events one by one; later ones
 * are counted by reason and reported in one summary event just before
 * job_end (jw__gate_close_record, the monitor's before-end hook). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "win/escape.h"
#include "win/win.h"

#define REFUSALS_DETAILED 32 /* docs/events.md, "Pipe readers refused" */

static const char *const reasons[] = {"in_job", "identity_unknown", "max_readers", "escaped"};
#define N_REASONS 4

struct jw__gate_s {
  jw_client_gate_t gate; /* handed to the exporters; ctx = this */
  /* The flood bound; the lock orders a detailed event before the summary
   * (sinks' acceptor threads against the monitor's thread). */
  jw__mutex_t lock;
  uint64_t total;                 /* every refusal recorded or counted */
  uint64_t unreported[N_REASONS]; /* past REFUSALS_DETAILED, by reason */
  int closed;                     /* the summary is written: stderr from now on */
  HANDLE job;                     /* owner: this gate (a duplicate of the run's job handle) */
  HANDLE done;                    /* owner: this gate (a duplicate of the monitor's done event) */
  jw_emitter_t *em;               /* borrowed: outlives every exporter that has the gate */
  uint64_t since;                 /* FILETIME of jw__gate_new: before the root exists */
};

/* A client outside the job whose ancestor, through processes outside the
 * job, is jobwarden itself (jobwarden starts no process outside the job: a
 * parent spoofed with PROC_THREAD_ATTRIBUTE_PARENT_PROCESS) or a process of
 * the job (a breakaway) escaped the job: the rule of src/win/escape.h, the
 * same for the control channel and the monitor's scan. */
static jw_client_verdict_t escaped(jw__gate_t *g, HANDLE client, uint32_t pid, char *why,
                                   size_t why_size) {
  DWORD via = 0;
  const char *kind = jw__escape_ancestry(g->job, client, g->since, &via);
  if (kind == NULL)
    return JW_CLIENT_OK;
  if (strcmp(kind, "jobwarden") == 0)
    snprintf(why, why_size,
             "the client (pid %lu) is not in the job, yet it descends from jobwarden itself: it "
             "escaped the job (a spoofed parent)",
             (unsigned long)pid);
  else
    snprintf(why, why_size,
             "the client (pid %lu) is not in the job, yet it descends from a process of the job "
             "(pid %lu): it escaped the job",
             (unsigned long)pid, (unsigned long)via);
  return JW_CLIENT_ESCAPED;
}

/* "in_job" / "not in the job" from the kernel, for the client's pid. */
static jw_client_verdict_t gate_check(void *ctx, uint32_t pid, char *why, size_t why_size) {
  jw__gate_t *g = ctx;
  HANDLE h;
  BOOL in = FALSE;
  DWORD e;
  jw_client_verdict_t verdict;
  if (pid == GetCurrentProcessId())
    return JW_CLIENT_OK; /* jobwarden itself (its own tests, a probe) */
  /* Wine answers IsProcessInJob only for a PROCESS_QUERY_INFORMATION
   * handle (../shared/WINE.md); Windows also takes the limited right. */
  h = OpenProcess(PROCESS_QUERY_INFORMATION, FALSE, pid);
  if (h == NULL)
    h = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE, pid);
  if (h == NULL) {
    e = GetLastError();
    snprintf(why, why_size,
             "the client (pid %lu) could not be opened to check whether it is in the job "
             "(OpenProcess, error %lu)",
             (unsigned long)pid, (unsigned long)e);
    return JW_CLIENT_UNKNOWN;
  }
  if (!IsProcessInJob(h, g->job, &in)) {
    e = GetLastError();
    CloseHandle(h);
    snprintf(why, why_size, "IsProcessInJob failed for the client (pid %lu, error %lu)",
             (unsigned long)pid, (unsigned long)e);
    return JW_CLIENT_UNKNOWN;
  }
  if (in) {
    CloseHandle(h);
    snprintf(why, why_size, "the client (pid %lu) is a process of the sandboxed job",
             (unsigned long)pid);
    return JW_CLIENT_IN_JOB;
  }
  verdict = escaped(g, h, pid, why, why_size);
  CloseHandle(h);
  return verdict;
}

/* The client's image path (new UTF-8 string) or NULL. */
static char *client_image(uint32_t pid) {
  HANDLE h = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE, pid);
  wchar_t buf[1024];
  DWORD n = 1024;
  char *out = NULL;
  size_t len = 0;
  if (h == NULL)
    return NULL;
  if (QueryFullProcessImageNameW(h, 0, buf, &n) && n > 0)
    jw_utf16_to_utf8((const uint16_t *)buf, n, JW_HOSTILE_MAX_UNITS, &out, &len, NULL);
  CloseHandle(h);
  return out;
}

static void gate_refused(void *ctx, const char *sink, jw_client_refusal_t what, uint32_t pid,
                         const char *why, uint64_t limit) {
  jw__gate_t *g = ctx;
  unsigned ri = what <= JW_CLIENT_REFUSED_ESCAPED ? (unsigned)what : JW_CLIENT_REFUSED_UNKNOWN;
  const char *reason = reasons[ri];
  jw_event_t ev;
  json_t *reader;
  char *image = NULL;

  jw__mutex_lock(&g->lock);
  if (!g->closed && WaitForSingleObject(g->done, 0) == WAIT_TIMEOUT &&
      g->total >= REFUSALS_DETAILED) {
    /* A flood: counted, said once in the summary before job_end. */
    g->total++;
    g->unreported[ri]++;
    jw__mutex_unlock(&g->lock);
    return;
  }
  image = pid != 0 ? client_image(pid) : NULL;
  if (g->closed || WaitForSingleObject(g->done, 0) != WAIT_TIMEOUT) {
    /* The run's record is complete (job_end is its last line): said on
     * stderr instead. */
    char msg[700];
    int n = snprintf(msg, sizeof(msg), "jobwarden: %s refused a reader (pid %lu, %s): %s\n", sink,
                     (unsigned long)pid, reason, why);
    if (n > 0)
      jw__stderr_write(msg, (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg) - 1);
    jw__mutex_unlock(&g->lock);
    free(image);
    return;
  }
  g->total++;
  if (what == JW_CLIENT_REFUSED_MAX)
    jw_event_init(&ev, JW_EVENT_NOTICE, "pipe_reader_refused", "blocked", "monitor", "jobwarden",
                  JW_SEV_MEDIUM);
  else
    jw_event_init(&ev, JW_EVENT_VIOLATION, "pipe_reader_refused", "blocked", "monitor", "jobwarden",
                  what == JW_CLIENT_REFUSED_UNKNOWN ? JW_SEV_HIGH : JW_SEV_CRITICAL);
  reader = json_pack("{s:s,s:o,s:o,s:s}", "sink", sink, "pid",
                     pid != 0 ? json_integer(pid) : json_null(), "executable",
                     image != NULL ? json_string(image) : json_null(), "reason", reason);
  if (reader != NULL && what == JW_CLIENT_REFUSED_MAX)
    json_object_set_new(reader, "max_readers", json_integer((json_int_t)limit));
  if (reader != NULL)
    ev.extra = json_pack("{s:o}", "reader", reader);
  snprintf(ev.message, sizeof(ev.message), "%.200s refused a reader (pid %lu): %.250s", sink,
           (unsigned long)pid, why);
  jw_emit(g->em, &ev); /* under the lock: never after the summary */
  jw__mutex_unlock(&g->lock);
  free(image);
}

void jw__gate_close_record(void *ctx) {
  jw__gate_t *g = ctx;
  jw_event_t ev;
  json_t *by;
  uint64_t count = 0;
  unsigned i;
  if (g == NULL)
    return;
  jw__mutex_lock(&g->lock);
  g->closed = 1;
  for (i = 0; i < N_REASONS; i++)
    count += g->unreported[i];
  if (count == 0) {
    jw__mutex_unlock(&g->lock);
    return;
  }
  /* Only the cap was hit: a notice, like each of its refusals; any
   * refusal of the job's own or an unknown client makes it a violation. */
  if (count == g->unreported[JW_CLIENT_REFUSED_MAX])
    jw_event_init(&ev, JW_EVENT_NOTICE, "pipe_reader_refused", "blocked", "monitor", "jobwarden",
                  JW_SEV_MEDIUM);
  else
    jw_event_init(&ev, JW_EVENT_VIOLATION, "pipe_reader_refused", "blocked", "monitor", "jobwarden",
                  g->unreported[JW_CLIENT_REFUSED_IN_JOB] + g->unreported[JW_CLIENT_REFUSED_ESCAPED]
                      ? JW_SEV_CRITICAL
                      : JW_SEV_HIGH);
  by = json_object();
  for (i = 0; by != NULL && i < N_REASONS; i++)
    if (g->unreported[i] != 0)
      json_object_set_new(by, reasons[i], json_integer((json_int_t)g->unreported[i]));
  ev.extra = json_pack("{s:{s:s,s:I,s:o}}", "reader", "reason", "flood", "count", (json_int_t)count,
                       "by_reason", by != NULL ? by : json_object());
  snprintf(ev.message, sizeof(ev.message),
           "%llu further reader(s) refused after the first %u were counted, not reported one by "
           "one; every one was refused",
           (unsigned long long)count, (unsigned)REFUSALS_DETAILED);
  jw_emit(g->em, &ev);
  jw__mutex_unlock(&g->lock);
}

int jw__gate_new(HANDLE job, HANDLE done, jw_emitter_t *em, jw__gate_t **out, jw_error_t *err) {
  jw__gate_t *g = calloc(1, sizeof(*g));
  HANDLE self = GetCurrentProcess();
  *out = NULL;
  if (g == NULL)
    return jw_error_set(err, JW_ENOMEM, 0, "gate", "out of memory");
  if (!DuplicateHandle(self, job, self, &g->job, 0, FALSE, DUPLICATE_SAME_ACCESS) ||
      !DuplicateHandle(self, done, self, &g->done, SYNCHRONIZE, FALSE, 0)) {
    DWORD e = GetLastError();
    jw__gate_free(g);
    return jw_error_set(err, JW_ESYS, e, "DuplicateHandle",
                        "cannot set up the readers' gate: DuplicateHandle failed (Win32 error %lu)",
                        (unsigned long)e);
  }
  g->em = em;
  jw__mutex_init(&g->lock);
  {
    FILETIME now;
    GetSystemTimeAsFileTime(&now);
    g->since = ((uint64_t)now.dwHighDateTime << 32) | now.dwLowDateTime;
  }
  g->gate.check = gate_check;
  g->gate.refused = gate_refused;
  g->gate.ctx = g;
  *out = g;
  return 0;
}

const jw_client_gate_t *jw__gate_get(const jw__gate_t *g) {
  return g != NULL ? &g->gate : NULL;
}

void jw__gate_free(jw__gate_t *g) {
  if (g == NULL)
    return;
  if (g->job != NULL)
    CloseHandle(g->job);
  if (g->done != NULL)
    CloseHandle(g->done);
  if (g->em != NULL)
    jw__mutex_destroy(&g->lock);
  free(g);
}
