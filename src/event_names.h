/* Internal helpers of the event model (src/event.c), shared with the
 * monitor that builds events. Not public API. */
#ifndef JW_EVENT_NAMES_H
#define JW_EVENT_NAMES_H

#include <stddef.h>
#include <stdint.h>

#include "jobwarden.h"

/* "JOB_OBJECT_MSG_NEW_PROCESS" for 6, and so on for every message id that
 * Windows defines (1..4, 6..13); "UNKNOWN" for any other value. Never NULL.
 * Any thread. */
const char *jw__job_message_name(uint32_t id);

/* Key of ev->extra that carries the counted image (see jw__event_set_image).
 * Every extra key starting with "_jw" is internal: never rendered as is. */
#define JW__EXTRA_IMAGE_KEY "_jw.image"

/* Attaches the image path of ev->process as a counted string: `len` bytes
 * of UTF-8 as jw_utf16_to_utf8 returns them, where U+0000 bytes are kept
 * (a plain `const char *` would end at the first one and hide the rest),
 * and whether the path was truncated at JW_HOSTILE_MAX_UNITS (rendered as
 * "image_truncated": true). jw_process_info_t has no room for either, so
 * they travel in ev->extra under JW__EXTRA_IMAGE_KEY, which
 * jw_event_to_json consumes; ev->extra is created when NULL. Also sets
 * ev->process.image = image (borrowed: it must outlive the event). Invalid
 * UTF-8 is replaced (U+FFFD), never dropped. Returns 0, JW_EINVAL (ev NULL,
 * image NULL, or ev->extra not an object) or JW_ENOMEM. Owner's thread. */
int jw__event_set_image(jw_event_t *ev, const char *image, size_t len,
                        int truncated);

#endif
