/* The registered exporters. Adding a sink: a folder exporters/<name>/ that
 * defines one jw_exporter_vtable_t, and one line in registry.c. */
#ifndef JW_EXPORTERS_H
#define JW_EXPORTERS_H

#include "jobwarden.h"

extern const jw_exporter_vtable_t jw_exporter_file;
extern const jw_exporter_vtable_t jw_exporter_stdout;
extern const jw_exporter_vtable_t jw_exporter_stderr;
extern const jw_exporter_vtable_t jw_exporter_syslog_udp;
extern const jw_exporter_vtable_t jw_exporter_syslog_tcp;
#ifdef _WIN32
extern const jw_exporter_vtable_t jw_exporter_pipe;         /* pipe/pipe.c */
extern const jw_exporter_vtable_t jw_exporter_pipe_connect; /* pipe/connect.c */
extern const jw_exporter_vtable_t jw_exporter_syslog_tls;   /* syslog/syslog.c + tls_win.c */
#endif

#endif
