/* A network sink's spool: every line it is given is first appended to
 * files on disk, and its sender thread delivers them from there, in order,
 * retrying with backoff while the collector is away (docs/integrations.md,
 * "Delivery"). Lines a run could not deliver stay on disk for the next run
 * to the same spool or for `jobwarden flush DIR`.
 *
 *   ROOT/                      one per sink target (spool=DIR, or the
 *                              user's state dir + spool/<kind>_<target>)
 *     <UTC time>-<pid>-<rnd>/  one per run ("run directory")
 *       lock                   held open exclusively while the run lives
 *       sink                   the SPEC, for flush
 *       00000001.seg ...       the lines, as the sink sends them (sealed)
 *       cursor                 "<segment> <offset>": the first byte not
 *                              delivered yet (written as delivery goes on)
 *
 * A run directory whose lock no process holds belongs to a run that ended;
 * the next sender on the same root adopts it and delivers it first. */
#ifndef JW_SPOOL_H
#define JW_SPOOL_H

#include "jobwarden.h"

/* Opens exp's spool (exp->delivery; exp's target for the default root):
 * takes a run directory and starts the sender, which first delivers what
 * ended runs left in the root. With spool=none it does nothing (exp->spool
 * stays NULL: lines go straight to export_line). Errors are set-up errors
 * (the directory cannot be created or written). */
int jw__spool_open(jw_exporter_t *exp, const char *target, jw_error_t *err);
/* For `jobwarden flush`: adopts what ended runs left in root (or in the
 * single run directory root names) and starts delivering it; takes no run
 * directory of its own. *found: the lines waiting when it started. */
int jw__spool_open_flush(jw_exporter_t *exp, const char *root, uint64_t *found, jw_error_t *err);
/* The sender hands the lines it read to the exporter's deliver_lines as
 * one batch (or each to export_line when it has none): what is reported
 * delivered is passed; JW_EINVAL: that line can never be delivered (it is
 * skipped, counted in `undeliverable` and said once in a sink_failed
 * notice); any other error is "not now" (tried again after the backoff
 * from the first line not delivered). */
/* Appends one line (the writer thread). durable: to the disk before it
 * returns. Fails when the spool is full (spool_max) or the disk fails:
 * that line is then lost for this sink (the emitter records the gap). */
int jw__spool_append(jw_exporter_t *exp, const char *line, size_t len, int durable,
                     jw_error_t *err);
typedef struct {
  uint64_t appended;      /* lines this run put in its spool */
  uint64_t delivered;     /* of them, delivered */
  uint64_t adopted;       /* lines of ended runs found at the start */
  uint64_t adopted_sent;  /* of them, delivered */
  uint64_t pending;       /* lines waiting (this run's and adopted) */
  uint64_t undeliverable; /* lines skipped: the exporter can never deliver them */
  int down;               /* the last delivery attempt failed */
  int noticing;           /* a sink_unreachable / sink_recovered is being written */
  char dir[512];          /* this run's directory ("" with flush) */
} jw__spool_stats_t;
/* 0 and the figures, or JW_EINVAL when exp has no spool. Any thread. */
int jw__spool_stats(jw_exporter_t *exp, jw__spool_stats_t *st);
/* Waits until nothing is pending or timeout_ms passed. Returns 0 when all
 * was delivered, JW_ETIMEDOUT otherwise. */
int jw__spool_wait(jw_exporter_t *exp, uint32_t timeout_ms);
/* Starts the end: the sender has drain= from now to deliver what waits
 * (retrying at least every second), then stops. Returns at once; several
 * sinks drain side by side. */
void jw__spool_stop(jw_exporter_t *exp);
/* Delivers what it can within drain= (from now, or from jw__spool_stop),
 * stops the sender, and
 * releases the run directory: removed when everything was delivered,
 * otherwise left for later (said on stderr). No-op without a spool. */
void jw__spool_close(jw_exporter_t *exp);

#endif
