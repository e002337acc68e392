/* The catalog of jobwarden's rules: for every value of an event's `rule`,
 * a stable id, a title, a one-sentence description, a category and the
 * tags (MITRE ATT&CK technique ids where one fits). The event model puts
 * `rule_id` and `tags` into native lines; the ECS and OCSF formats take
 * the rest from here. docs/rules.md is the same table for people; a test
 * checks that the two agree. Portable, no state: any thread. */
#ifndef JW_RULE_CATALOG_H
#define JW_RULE_CATALOG_H

#include <stddef.h>

#define JW_RULE_TAGS_MAX 4

typedef struct jw_rule_info_s {
  const char *name;  /* the event's `rule`: "image_denied" */
  const char *id;    /* stable: "JW-1103"; never reused for another rule */
  const char *title; /* "Denied image started" */
  const char
      *category; /* lifecycle, limit, monitor_rule, process, attack, sandbox_health, telemetry */
  const char *description;            /* one sentence */
  const char *tags[JW_RULE_TAGS_MAX]; /* NULL-terminated when fewer */
} jw_rule_info_t;

/* The entry of `rule`, NULL for a name jobwarden does not define. */
const jw_rule_info_t *jw_rule_info(const char *rule);

/* Every entry, in id order: *n receives the count. */
const jw_rule_info_t *jw_rule_catalog(size_t *n);

/* The ATT&CK tag for an image a deny or allow list stopped, from its file
 * name ("powershell.exe" -> "attack.t1059.001", "cmd.exe" ->
 * "attack.t1059.003", "wscript.exe" -> "attack.t1059.005"); NULL when no
 * technique fits the name. Case-insensitive, with or without ".exe". */
const char *jw_rule_image_tag(const char *file_name);

#endif
