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

#endif
