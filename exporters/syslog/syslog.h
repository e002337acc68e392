/* The syslog exporters' test seam (exporters/syslog/syslog.c). */
#ifndef JW_EXPORTERS_SYSLOG_SYSLOG_H
#define JW_EXPORTERS_SYSLOG_SYSLOG_H

#include <stddef.h>

/* Called before each send on a plain TCP connection with the bytes about
 * to be offered: returns how many of them the send may take (a short send,
 * as a full socket buffer makes one), or a negative value: the send fails
 * as on a reset connection. Lets a test cut a batch at an exact byte. NULL
 * (the default): no hook. Set it while no sink sends. */
typedef long (*jw__syslog_send_hook_fn)(size_t len);
void jw__syslog_send_hook(jw__syslog_send_hook_fn fn);

#endif
