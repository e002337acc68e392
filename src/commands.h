/* The portable subcommands of jobwarden: the same code in jobwarden.exe
 * and in the native `jobwarden` an analyst runs on Linux. Each takes the
 * whole argv (argv[0] is jobwarden, argv[1] the subcommand) and returns
 * the process's exit status (src/cli.h). */
#ifndef JW_COMMANDS_H
#define JW_COMMANDS_H

#include <stddef.h>
#include <stdio.h>

/* Runs argv[1] when it is a portable subcommand (check-policy, verify,
 * report, seal-key, tail --file, flush); *status is its exit status. Returns 0
 * when argv[1] is something else (run, probe, ... or nothing). */
int jw_portable_command(int argc, char **argv, int *status);

int jw_cmd_check_policy(int argc, char **argv);
int jw_cmd_verify(int argc, char **argv);
int jw_cmd_report(int argc, char **argv);
int jw_cmd_seal_key(int argc, char **argv);
int jw_cmd_tail_file(int argc, char **argv);
int jw_cmd_flush(int argc, char **argv);

/* Reads a record file line by line: `fn` gets each line without its
 * newline (and without a '\r' before it), numbered from 1; a last line
 * without a newline is passed with *cut = 1. A line longer than
 * JW_RECORD_LINE_MAX is passed cut to that length with *cut = 1 too.
 * Returns 0, or -1 when the file cannot be opened or read (errbuf says
 * why, with the path), or what fn returned when it was not 0. */
#define JW_RECORD_LINE_MAX (16u << 20)
typedef int (*jw_record_line_fn)(void *ctx, const char *line, size_t len, unsigned long lineno,
                                 int cut);
int jw_record_read(const char *path, jw_record_line_fn fn, void *ctx, char *errbuf, size_t errsize);

/* Writes all of buf to standard output / a FILE; 0 or -1. */
int jw_out(const char *buf, size_t len);
int jw_outf(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;
/* "jobwarden: CMD: ..." on standard error. */
void jw_errf(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

#endif
