/* Packets the kernel did not send. The port's completion keys are drawn
 * per run (jw_job_create), but a process that holds a copy of the port can
 * also dequeue packets and so learn them: a key alone proves nothing. So
 * every job message is checked against the kernel before it becomes an
 * event (admission, the exit and job-end checks, the limit checks), and a
 * quit packet is obeyed only when the owner asked to stop. A packet that
 * fails its check is a critical `monitor_tampering` violation saying what
 * was posted, and changes nothing else.
 *
 * Cost of a flood: the first TAMPER_DETAILED forgeries of a run are
 * reported one by one (and may cost the monitor an EXIT_CONFIRM_MS wait
 * each); later ones are counted, cost only the cheap checks, and are
 * reported in one summary violation just before job_end, whose summary
 * counts every one (forged_packets). A leaf: nothing here calls back into
 * the loop. */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "win/monitor_int.h"

int jw__mon_tamper_detailed(const jw_monitor_t *m) {
  return m->tamper_total < TAMPER_DETAILED;
}

static void hex(ULONG_PTR v, char *buf, size_t size) {
  snprintf(buf, size, "0x%llX", (unsigned long long)v);
}

void jw__mon_tampering(jw_monitor_t *m, const char *channel, ULONG_PTR key, DWORD bytes,
                       ULONG_PTR value, const char *reason, const char *detail) {
  jw_event_t ev;
  json_t *obj;
  char k[24], v[24];
  int detailed = jw__mon_tamper_detailed(m);
  m->tamper_total++;
  if (m->stats.job_end_emitted) {
    m->tamper_after_end++; /* job_end stays the last event */
    return;
  }
  if (!detailed) {
    m->tamper_unreported++;
    return;
  }
  jw__mon_ev_init(&ev, JW_EVENT_VIOLATION, "monitor_tampering", "blocked", "monitor",
                  JW_SEV_CRITICAL);
  if (strcmp(channel, "job") == 0)
    jw__mon_ev_job_message(&ev, bytes);
  hex(value, v, sizeof(v));
  obj = json_pack("{s:s,s:s,s:I,s:s,s:s}", "channel", channel, "reason", reason, "bytes",
                  (json_int_t)bytes, "value", v, "detail", detail);
  if (obj != NULL && strcmp(channel, "unknown") == 0) {
    /* The real keys are never written: the record may be readable by the
     * program it records. */
    hex(key, k, sizeof(k));
    json_object_set_new(obj, "key", json_string(k));
  }
  if (obj != NULL)
    ev.extra = json_pack("{s:o}", "tampering", obj);
  snprintf(ev.message, sizeof(ev.message),
           "a packet on the job's completion port was not sent by the kernel or by jobwarden "
           "(%s channel, bytes %lu, value %s): %s; ignored",
           channel, (unsigned long)bytes, v, detail);
  jw__mon_emit(m, &ev);
}

void jw__mon_tamper_summary(jw_monitor_t *m) {
  jw_event_t ev;
  char detail[160];
  if (m->tamper_unreported == 0)
    return;
  jw__mon_ev_init(&ev, JW_EVENT_VIOLATION, "monitor_tampering", "blocked", "monitor",
                  JW_SEV_CRITICAL);
  ev.source = "jobwarden";
  snprintf(detail, sizeof(detail),
           "%llu further forged packet(s) after the first %u were counted, not reported one by "
           "one",
           (unsigned long long)m->tamper_unreported, (unsigned)TAMPER_DETAILED);
  ev.extra = json_pack("{s:{s:s,s:s,s:I,s:s}}", "tampering", "channel", "summary", "reason",
                       "flood", "count", (json_int_t)m->tamper_unreported, "detail", detail);
  snprintf(ev.message, sizeof(ev.message), "%s; every one was ignored", detail);
  m->tamper_unreported = 0;
  jw__mon_emit(m, &ev);
}
