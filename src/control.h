/* The control channel of a run (`jobwarden run --control NAME`, served by
 * src/win/control.c, used by `jobwarden ps` / `jobwarden kill`): request
 * and reply lines and their human-readable forms. Portable, so that every
 * parser and formatter here is unit-tested natively. Protocol:
 * docs/control.md. */
#ifndef JW_CONTROL_H
#define JW_CONTROL_H

#include <stddef.h>
#include <stdint.h>

#include "jobwarden.h"

/* The pipe is \\.\pipe\jobwarden-control-NAME. */
#define JW_CONTROL_PIPE_PREFIX "jobwarden-control-"
/* Longest request line, its '\n' included; a longer one is refused. */
#define JW_CONTROL_LINE_MAX 4096
/* Longest reply line, its '\n' included: a ps reply lists members until
 * the next one would not fit, then says "truncated": true. */
#define JW_CONTROL_REPLY_MAX (4u << 20)
/* Room for a SID as text ("S-1-5-21-...", at most 184 characters). */
#define JW_CONTROL_SID_MAX 192

typedef enum {
  JW_CONTROL_INVALID = 0, /* a request that could not be read */
  JW_CONTROL_PS,          /* list the members */
  JW_CONTROL_KILL_PID,    /* terminate one member */
  JW_CONTROL_KILL_JOB     /* terminate the whole job */
} jw_control_op_t;

/* One request and who sent it. The op and pid come from the request line;
 * the requester is filled in by the server from the pipe, never from the
 * line. */
typedef struct jw_control_request_s {
  jw_control_op_t op;
  uint32_t pid;                           /* JW_CONTROL_KILL_PID: the member */
  uint32_t requester_pid;                 /* the client's process; 0 = unknown */
  char requester_sid[JW_CONTROL_SID_MAX]; /* its user as "S-1-..."; "" = unknown */
} jw_control_request_t;

/* Reads one request line (without its '\n'): {"op":"ps"},
 * {"op":"kill"} or {"op":"kill","pid":N} with N in 1..4294967295, no other
 * key. Sets req->op and req->pid only. Returns 0, or JW_EUSAGE with a
 * sentence saying what is wrong in why (size >= 1). Any thread. */
int jw_control_parse_request(const char *line, size_t len, jw_control_request_t *req, char *why,
                             size_t size);

/* Writes the request line of req->op (and pid), '\n' included, into buf.
 * Returns its length, or 0 when buf is too small or op is invalid. */
size_t jw_control_format_request(const jw_control_request_t *req, char *buf, size_t size);

/* "ps", "kill" or "invalid" (static). */
const char *jw_control_op_name(jw_control_op_t op);

/* The "control" object of a member_control notice (docs/events.md):
 * {"op","pid"?,"requester":{"pid","user"},"result","reason"?}. `result`
 * is "done", "refused" or "failed"; `reason` a static token or NULL. New
 * reference (a json_t *), NULL when memory runs out. */
void *jw_control_event_object(const jw_control_request_t *req, const char *result,
                              const char *reason);

/* Reads a reply line (without its '\n' or with it) of a request of kind
 * `op` and renders it for a person: for ps a table (PID, WORKING SET,
 * STARTED, IMAGE; one line per member, the root marked), for kill one
 * sentence. Strings from the reply are shown without control characters,
 * C1 controls or bidirectional overrides and cut at a bounded length.
 * Returns 1 when the reply says ok, 0 when it says the run refused or
 * failed (*text is its reason), -1 when the line is not a reply (*text
 * says why). *text is a new malloc'd string, or NULL when memory runs out
 * (the return value is then -1). */
int jw_control_reply_text(const char *line, size_t len, jw_control_op_t op, char **text);

#endif
