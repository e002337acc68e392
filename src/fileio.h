/* Files and directories for the spool (src/spool.c), one API over the two
 * platforms (src/win/fileio.c, src/unix/fileio.c). Paths are UTF-8.
 * Every handle is not inheritable. Errors fill err with the path, what was
 * attempted and the system's reason. */
#ifndef JW_FILEIO_H
#define JW_FILEIO_H

#include <stddef.h>
#include <stdint.h>

#include "jobwarden.h"

typedef struct jw__file_s jw__file_t;

/* Creates path, which must not exist, for appending and reading; others
 * may only read it while it is open (Windows: no FILE_SHARE_WRITE or
 * _DELETE; the sandboxed program cannot rewrite, truncate or delete it).
 * JW_EEXIST when it exists. */
int jw__file_create(const char *path, jw__file_t **out, jw_error_t *err);
/* Opens an existing file to read it (others may read it too; no one may
 * write or delete it while it is open). JW_ENOENT when it does not exist. */
int jw__file_open_read(const char *path, jw__file_t **out, jw_error_t *err);
/* Opens path for reading and rewriting in place, creating it if needed
 * (the spool's cursor). Held to itself. */
int jw__file_open_rw(const char *path, jw__file_t **out, jw_error_t *err);
/* Appends all of buf (one write). */
int jw__file_append(jw__file_t *f, const void *buf, size_t len, jw_error_t *err);
/* Writes all of buf at offset off. */
int jw__file_pwrite(jw__file_t *f, uint64_t off, const void *buf, size_t len, jw_error_t *err);
/* Reads up to len bytes at offset off; *got 0 at the end. */
int jw__file_pread(jw__file_t *f, uint64_t off, void *buf, size_t len, size_t *got,
                   jw_error_t *err);
int jw__file_size(jw__file_t *f, uint64_t *size, jw_error_t *err);
/* To the disk (FlushFileBuffers / fdatasync). */
int jw__file_sync(jw__file_t *f, jw_error_t *err);
void jw__file_close(jw__file_t *f);

/* Takes the lock file path (created if missing): held open, exclusively,
 * until jw__file_close. JW_EBUSY while another process holds it. */
int jw__file_lock(const char *path, jw__file_t **out, jw_error_t *err);

/* Deletes a file; 0 also when it did not exist. */
int jw__file_remove(const char *path, jw_error_t *err);
/* Creates the directory and its missing parents; 0 when it exists. */
int jw__dir_create(const char *path, jw_error_t *err);
/* The names in a directory (no "." or ".."), sorted bytewise; free with
 * jw__dir_list_free. JW_ENOENT when it does not exist. */
int jw__dir_list(const char *path, char ***names, size_t *count, jw_error_t *err);
void jw__dir_list_free(char **names, size_t count);
/* Removes an empty directory; 0 also when it did not exist. */
int jw__dir_remove(const char *path, jw_error_t *err);
/* The user's directory for jobwarden's state (Windows:
 * %LOCALAPPDATA%\jobwarden; elsewhere $XDG_STATE_HOME/jobwarden or
 * ~/.local/state/jobwarden), malloc'd, or NULL with err set. */
char *jw__state_dir(jw_error_t *err);
/* The path separator of the platform. */
#ifdef _WIN32
#define JW_PATH_SEP '\\'
#else
#define JW_PATH_SEP '/'
#endif

#endif
