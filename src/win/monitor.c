/* The monitor thread: drains the job's completion port and turns every
 * packet the kernel confirms into events. This file is only the loop, its
 * dispatch on key and message, and the owner side; the handlers live in
 * leaf files that never call back into it (src/win/monitor_int.h lists
 * them). It never waits on an exporter's reader (exporters write files and
 * standard streams synchronously under the emitter's lock) and sleeps only
 * in GetQueuedCompletionStatusEx, with no timeout while nothing is due: a
 * member's exit posts its own packet (an exit wait on its handle,
 * monitor_procs.c), so nothing is polled on a clock. Timed work exists
 * only while something is due: a signaled member's EXIT message (it gets
 * EXIT_GRACE_MS, then the exit is reconciled), a second look at pids the
 * job lists but the port did not announce, the run's timeout, a
 * coalescing window, the opt-in escape scan. The owner re-posts its quit
 * packet until the thread ends, so a stolen quit cannot keep it running.
 *
 * Keys: the job's messages come under job->key_job, jobwarden's own
 * packets under job->key_control, both random per run; anything else, and
 * any message the kernel's own state contradicts, is monitor_tampering
 * (src/win/monitor_tamper.c). */
#include <limits.h>
#include <process.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "win/monitor_int.h"

#define BATCH     64
#define REPOST_MS 150 /* the owner posts its quit again this often until the thread ends */

static jw__drop_message_fn drop_hook;

void jw__monitor_drop_hook(jw__drop_message_fn fn) {
  drop_hook = fn;
}

static void on_notice(jw_monitor_t *m, DWORD msg, ULONG_PTR value, const char *rule,
                      jw_severity_t sev, const char *text) {
  jw_event_t ev;
  jw__mon_ev_init(&ev, JW_EVENT_NOTICE, rule, "observed", "kernel", sev);
  jw__mon_ev_job_message(&ev, msg);
  ev.extra = json_pack("{s:{s:I}}", "error", "value", (json_int_t)value);
  snprintf(ev.message, sizeof(ev.message), "%s (message %lu, value %llu)", text, (unsigned long)msg,
           (unsigned long long)value);
  jw__mon_emit(m, &ev);
}

static void on_job_message(jw_monitor_t *m, DWORD msg, ULONG_PTR value) {
  const jw_policy_t *p = &m->job->policy;
  DWORD pid = (DWORD)value;
  /* Any job message may mean a member started something: an escape scan
   * is due (rate-limited; it believes only the kernel, so a forged
   * message finds nothing). */
  jw__mon_escape_note(m, msg, pid);
  switch (msg) {
  case JOB_OBJECT_MSG_NEW_PROCESS:
    jw__mon_on_new_process_message(m, pid);
    break;
  case JOB_OBJECT_MSG_EXIT_PROCESS:
  case JOB_OBJECT_MSG_ABNORMAL_EXIT_PROCESS:
    jw__mon_on_exit_message(m, msg, pid);
    break;
  case JOB_OBJECT_MSG_ACTIVE_PROCESS_ZERO:
    jw__mon_on_active_zero(m);
    break;
  case JOB_OBJECT_MSG_END_OF_JOB_TIME:
    jw__mon_on_limit(
        m, msg, 0, 0, "job_cpu_time", "killed_job", "ms", p->job_time_ms, JW_SEV_HIGH,
        "the job used up its CPU time limit; the kernel terminated every process in it");
    break;
  case JOB_OBJECT_MSG_END_OF_PROCESS_TIME:
    jw__mon_on_limit(m, msg, pid, 1, "process_cpu_time", "terminated", "ms", p->process_time_ms,
                     JW_SEV_HIGH, "a process used up its CPU time limit; the kernel terminated it");
    break;
  case JOB_OBJECT_MSG_ACTIVE_PROCESS_LIMIT:
    jw__mon_on_limit(m, msg, 0, 0, "active_processes", "blocked", "processes", p->active_processes,
                     JW_SEV_HIGH,
                     "a process creation was refused: the active-process limit is reached");
    break;
  case JOB_OBJECT_MSG_PROCESS_MEMORY_LIMIT:
    jw__mon_on_limit(m, msg, pid, 1, "process_memory", "blocked", "bytes", p->process_memory,
                     JW_SEV_HIGH,
                     "a memory commit was refused: the per-process memory limit is reached");
    break;
  case JOB_OBJECT_MSG_JOB_MEMORY_LIMIT:
    jw__mon_on_limit(m, msg, pid, 1, "job_memory", "blocked", "bytes", p->job_memory, JW_SEV_HIGH,
                     "a memory commit was refused: the job memory limit is reached");
    break;
  case JOB_OBJECT_MSG_NOTIFICATION_LIMIT:
    jw__mon_on_notification(m, pid);
    break;
  case JOB_OBJECT_MSG_JOB_CYCLE_TIME_LIMIT:
    jw__mon_on_limit(m, msg, pid, 1, "job_cycle_time", "observed", "cycles", 0, JW_SEV_MEDIUM,
                     "the job's CPU cycle time limit was exceeded");
    break;
  case JOB_OBJECT_MSG_SILO_TERMINATED:
    on_notice(m, msg, value, "silo_terminated", JW_SEV_MEDIUM, "the job's silo was terminated");
    break;
  case 0:
    /* No kernel message has id 0: it is the shape of jobwarden's own quit
     * packet posted under the job's key by whoever learned it. */
    jw__mon_tampering(m, "job", 0, msg, value, "unknown_message",
                      "no job message has id 0 (jobwarden's quit packet is not a job message)");
    break;
  default:
    on_notice(m, msg, value, "unknown_job_message", JW_SEV_MEDIUM,
              "the job's port delivered a message jobwarden does not know");
    break;
  }
}

/* The packets that waited for a member's setup whose wait is over, in the
 * order they came (monitor_setup.c). Right after every take of the setup
 * worker's results, so nothing about a member overtakes them. Returns
 * whether there was any. */
static int replay(jw_monitor_t *m) {
  const jw__deferred_t *d;
  size_t n = jw__mon_setup_ready(m, &d), i;
  for (i = 0; i < n; i++) {
    if (d[i].kind == JW_DEFER_EXITED)
      jw__mon_on_exit_signal(m, d[i].bytes, d[i].value);
    else
      on_job_message(m, d[i].bytes, d[i].value);
  }
  return n > 0;
}

static unsigned __stdcall monitor_main(void *arg) {
  jw_monitor_t *m = arg;
  OVERLAPPED_ENTRY ents[BATCH];
  int quit = 0;

  while (!quit) {
    ULONG n = 0, i;
    int activity;
    /* INFINITE when nothing is due. A holder of a copy of the port may
     * dequeue jobwarden's own quit packet: the owner posts it again until
     * the thread ends (jw_monitor_stop), and once it asked, every wait is
     * bounded and the flag alone ends the loop. */
    DWORD wait = INFINITE;
    /* The timeout is the wait's own: the thread sleeps until a packet or
     * the deadline, whichever comes first. */
    ULONGLONG now = GetTickCount64();
    if (m->deadline_tick != 0) {
      if (now >= m->deadline_tick) {
        jw__mon_on_timeout(m);
        continue;
      }
      if (m->deadline_tick - now < wait)
        wait = (DWORD)(m->deadline_tick - now);
    }
    /* No look at the members on a clock: an exit posts its own packet
     * (jw__mon_watch_exit). Timed work only while something is due: a
     * signaled member's EXIT message (EXIT_GRACE_MS), a second look at
     * pids the job lists and the port did not announce (RECHECK_MS). */
    jw__mon_exit_grace(m, now, &wait);
    jw__mon_recheck_tick(m, now, &wait);
    /* Setups the worker has done (their packet may have been taken by a
     * holder of a copy of the port) or that are overdue; a look again
     * soon while any is pending. */
    jw__mon_setup_tick(m, now, &wait);
    m->acc_seen_valid = 0; /* a read of an earlier wake-up is not reused */
    if (replay(m))
      jw__mon_check_members(m);
    if (m->stop_requested && wait > REPOST_MS)
      wait = REPOST_MS;
    /* The escape scans that are due (a child with a spoofed parent causes
     * no job message at all); may shorten the wait to the next one. */
    jw__mon_escape_tick(m, &wait);
    /* Coalescing windows that closed: their summaries, and the wait until
     * the next one closes. */
    jw__mon_coalesce_flush(m, 0, &wait);
    if (!GetQueuedCompletionStatusEx(m->job->port, ents, BATCH, &n, wait, FALSE)) {
      jw_event_t ev;
      DWORD e = GetLastError();
      InterlockedIncrement(&m->wakeups);
      if (e == WAIT_TIMEOUT || e == ERROR_TIMEOUT) {
        m->stats.timeouts++;
        /* The port is drained and the owner asked to stop: its quit packet
         * may have been dequeued by someone else (a holder of a copy of
         * the port), so the flag alone ends the loop. */
        if (m->stop_requested)
          break;
        continue; /* the deadline or the poll, checked at the top */
      }
      jw__mon_ev_init(&ev, JW_EVENT_NOTICE, "monitor_failed", "observed", "monitor",
                      JW_SEV_CRITICAL);
      ev.source = "jobwarden";
      snprintf(ev.message, sizeof(ev.message),
               "the monitor cannot read the job's completion port (Win32 error %lu); "
               "no further job messages will be seen",
               (unsigned long)e);
      jw__mon_emit(m, &ev);
      break;
    }
    InterlockedIncrement(&m->wakeups);
    activity = 0;
    m->acc_seen_valid = 0;
    for (i = 0; i < n; i++) {
      ULONG_PTR key = ents[i].lpCompletionKey;
      ULONG_PTR value = (ULONG_PTR)ents[i].lpOverlapped;
      DWORD bytes = ents[i].dwNumberOfBytesTransferred;
      if (key == m->job->key_control) {
        /* jobwarden's own packets: a quit only when the owner asked to
         * stop, a request only of a generation it issued. */
        if (value == JW_CTRL_QUIT && m->stop_requested)
          quit = 1; /* the rest of this batch is still handled */
        else if (value == JW_CTRL_QUIT)
          jw__mon_tampering(m, "control", 0, bytes, value, "unrequested_quit",
                            "jobwarden did not ask the monitor to stop");
        else if (value == JW_CTRL_IDENTITY)
          jw__mon_on_identity_packet(m, bytes, value);
        else if (value == JW_CTRL_SETUP) {
          if (drop_hook != NULL && drop_hook(JW_DROP_SETUP, bytes))
            continue; /* a test takes this packet from the port */
          jw__mon_on_setup_packet(m, bytes, value);
          activity |= replay(m);
        } else if (value == JW_CTRL_EXITED) {
          activity = 1;
          InterlockedIncrement(&m->exit_taken);
          if (drop_hook != NULL && drop_hook(JW_DROP_EXITED, bytes))
            continue; /* a test takes this packet from the port */
          jw__mon_on_exit_signal(m, bytes, value);
        } else if (value != JW_CTRL_REQUEST)
          jw__mon_tampering(m, "control", 0, bytes, value, "unknown_control",
                            "jobwarden posts no such control packet");
        else if (jw__mon_on_control_packet(m, bytes) != 0)
          jw__mon_tampering(m, "control", 0, bytes, value, "unknown_control",
                            "jobwarden never posted a control request of that generation");
      } else if (key == m->job->key_job && m->job->job != NULL) {
        if (drop_hook != NULL && drop_hook(bytes, value))
          continue; /* a test makes the port lose this message */
        on_job_message(m, bytes, value);
        activity = 1;
      } else {
        jw__mon_tampering(m, "unknown", key, bytes, value, "unknown_key",
                          "the completion key is neither the job's nor jobwarden's");
      }
    }
    /* The port drained after job messages or exits: does the kernel
     * count members the monitor does not know (a lost NEW_PROCESS)? Not
     * while a full batch says more is queued. */
    if (activity && n < BATCH)
      jw__mon_check_members(m);
  }
  /* Every setup in (or given up), and what waited for it, before the end. */
  jw__mon_setup_finish(m);
  replay(m);
  /* The port may never have said the job ended (its messages are not
   * guaranteed): reconcile and end the record anyway. */
  jw__mon_end_unannounced(m);
  SetEvent(m->done);
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Owner side                                                               */
/* ------------------------------------------------------------------------ */

int jw_monitor_start(jw_job_t *job, jw_emitter_t *em, jw_monitor_t **out, jw_error_t *err) {
  jw_monitor_t *m = calloc(1, sizeof(*m));
  *out = NULL;
  if (m == NULL)
    return jw_error_set(err, JW_ENOMEM, 0, "monitor", "out of memory");
  m->job = job;
  m->em = em;
  jw__mon_identity_start(m);
  jw__mon_setup_start(m);
  /* Without it, exits still come from their messages, the job's
   * accounting at port activity, and the job's end. */
  if (jw__exitwatch_start(job->port, job->key_control, &m->xw) != 0)
    m->xw = NULL;
  jw__coalesce_init(&m->coalesce, job->policy.coalesce_ms > UINT32_MAX
                                      ? UINT32_MAX
                                      : (uint32_t)job->policy.coalesce_ms);
  m->done = CreateEventW(NULL, TRUE, FALSE, NULL);
  m->ctl_answered = CreateEventW(NULL, FALSE, FALSE, NULL);
  if (m->done == NULL || m->ctl_answered == NULL) {
    DWORD e = GetLastError();
    if (m->done != NULL)
      CloseHandle(m->done);
    if (m->ctl_answered != NULL)
      CloseHandle(m->ctl_answered);
    jw__mon_identity_stop(m);
    jw__mon_setup_stop(m);
    jw__exitwatch_stop(m->xw);
    free(m);
    return jw_error_set(err, JW_ESYS, e, "CreateEventW",
                        "cannot start the monitor: CreateEventW failed (Win32 error %lu)",
                        (unsigned long)e);
  }
  m->thread = jw__thread_begin(monitor_main, m, 0, CREATE_SUSPENDED);
  if (m->thread == NULL) {
    DWORD e = GetLastError();
    CloseHandle(m->done);
    CloseHandle(m->ctl_answered);
    jw__mon_identity_stop(m);
    jw__mon_setup_stop(m);
    jw__exitwatch_stop(m->xw);
    free(m);
    return jw_error_set(err, JW_ESYS, e, "_beginthreadex",
                        "cannot start the monitor thread (Win32 error %lu)", (unsigned long)e);
  }
  jw__mutex_init(&m->ctl_lock);
  *out = m;
  return 0;
}

static int run_thread(jw_monitor_t *m) {
  if (m->thread_running)
    return 0;
  if (ResumeThread(m->thread) == (DWORD)-1)
    return JW_ESYS;
  m->thread_running = 1;
  return 0;
}

int jw_monitor_set_root(jw_monitor_t *m, const jw_child_t *root) {
  tracked_t *t;
  jw_event_t ev;
  if (m->thread_running)
    return JW_EINVAL;
  t = jw__mon_add_proc(m, root->pid);
  if (t == NULL)
    return JW_ENOMEM;
  t->is_root = 1;
  t->start_source = "jobwarden";
  m->root_pid = root->pid;
  t->create_time = root->create_time;
  if (root->image != NULL)
    t->image = strdup(root->image);
  if (!DuplicateHandle(GetCurrentProcess(), root->process, GetCurrentProcess(), &t->h,
                       TRACK_RIGHTS | EXTRA_RIGHTS, FALSE, 0) &&
      !DuplicateHandle(GetCurrentProcess(), root->process, GetCurrentProcess(), &t->h, TRACK_RIGHTS,
                       FALSE, 0)) {
    t->open_error = GetLastError();
    t->h = NULL;
  }
  /* The run's clock starts now: the root runs as soon as this returns. */
  m->start_tick = GetTickCount64();
  if (m->job->policy.timeout_ms != 0)
    m->deadline_tick = m->start_tick + m->job->policy.timeout_ms;
  t->has_parent = 1;
  t->ppid = GetCurrentProcessId();
  {
    FILETIME ct, xt, kt, ut;
    if (GetProcessTimes(GetCurrentProcess(), &ct, &xt, &kt, &ut))
      m->own_create_time = ((uint64_t)ct.dwHighDateTime << 32) | ct.dwLowDateTime;
  }
  jw__mon_enrich_more(m, t);
  jw__mon_identity_request(m, t);
  jw__mon_watch_exit(m, t);

  jw__mon_ev_init(&ev, JW_EVENT_PROCESS_START, "root_process", "observed", NULL, JW_SEV_INFO);
  ev.source = "jobwarden";
  ev.has_process = 1;
  jw__mon_fill_process(m, t, &ev.process);
  ev.time_us = jw__mon_filetime_us(t->create_time);
  snprintf(ev.message, sizeof(ev.message),
           "root process %.300s (pid %lu) created inside the job (%s); it runs next",
           jw__mon_image_or_unknown(t), (unsigned long)t->pid, root->method ? root->method : "?");
  jw__mon_emit(m, &ev);
  return run_thread(m) == 0 ? 0 : JW_ESYS;
}

void jw_monitor_note_terminating(jw_monitor_t *m, const char *reason) {
  m->terminate_reason = reason;
  InterlockedExchange(&m->terminating, 1);
}

const char *jw_monitor_rule_kill(jw_monitor_t *m, int *job) {
  const char *rule;
  MemoryBarrier();
  rule = m->rule_kill;
  if (job != NULL)
    *job = rule != NULL && m->rule_kill_job != 0;
  return rule;
}

void jw_monitor_before_end(jw_monitor_t *m, void (*fn)(void *), void *ctx) {
  m->before_end = fn;
  m->before_end_ctx = ctx;
}

uint32_t jw_monitor_wakeups(jw_monitor_t *m) {
  return (uint32_t)InterlockedCompareExchange(&m->wakeups, 0, 0);
}

void jw_monitor_exit_packets(jw_monitor_t *m, uint32_t *posted, uint32_t *taken) {
  *posted = jw__exitwatch_posted(m->xw);
  *taken = (uint32_t)InterlockedCompareExchange(&m->exit_taken, 0, 0);
}

int jw_monitor_stop(jw_monitor_t *m, DWORD timeout_ms, jw_monitor_stats_t *stats) {
  size_t i;
  ULONGLONG end;
  DWORD w;
  if (m == NULL)
    return 0;
  /* Set before the packet is posted: only then is a quit obeyed. */
  InterlockedExchange(&m->stop_requested, 1);
  if (run_thread(m) != 0)
    return JW_ESYS;
  /* The quit again every REPOST_MS: a holder of a copy of the port may
   * take one, and the monitor may be in a wait with no timeout. A quit
   * left over once the thread ended is never read. */
  end = GetTickCount64() + timeout_ms;
  do {
    ULONGLONG now = GetTickCount64();
    if (!PostQueuedCompletionStatus(m->job->port, 0, m->job->key_control,
                                    (LPOVERLAPPED)(ULONG_PTR)JW_CTRL_QUIT))
      return JW_ESYS;
    m->quits_posted++;
    w = WaitForSingleObject(m->thread, now >= end              ? 0
                                       : end - now < REPOST_MS ? (DWORD)(end - now)
                                                               : REPOST_MS);
  } while (w == WAIT_TIMEOUT && GetTickCount64() < end);
  if (w != WAIT_OBJECT_0)
    return JW_ETIMEDOUT; /* left running; the process is about to exit */
  m->stats.wakeups = (uint32_t)m->wakeups;
  m->stats.quits_posted = m->quits_posted;
  m->stats.table_peak = m->n_mem_peak;
  /* Its threads end first: no packet is posted after this. */
  m->stats.exit_waits_failed += jw__exitwatch_failed(m->xw) + (m->xw == NULL);
  m->stats.exit_waits_unsettled = jw__exitwatch_unsettled(m->xw);
  jw__exitwatch_stop(m->xw);
  m->xw = NULL;
  jw__mon_escape_free(m);
  jw__mon_identity_stop(m);
  jw__mon_setup_stop(m); /* before the table: its requests hold references */
  if (stats != NULL)
    *stats = m->stats;
  CloseHandle(m->thread);
  CloseHandle(m->done);
  CloseHandle(m->ctl_answered);
  json_decref(m->ctl_reply);
  jw__mutex_destroy(&m->ctl_lock);
  jw__mon_table_free(m); /* counts stats.handles_held first */
  if (stats != NULL)
    stats->handles_held = m->stats.handles_held;
  for (i = 0; i < m->n_sids; i++) {
    free(m->sids[i].sid);
    free(m->sids[i].name);
  }
  free(m->idlist);
  free(m->pids);
  free(m);
  return 0;
}
