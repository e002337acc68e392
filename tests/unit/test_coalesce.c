/* Coalescing of repeated violations (src/coalesce.c): the first hit is
 * always written, repeats of the same rule and subject inside its window
 * are counted, and the window's summary says exactly how many and when. */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "coalesce.h"
#include "harness.h"

#define MS 1000u /* microseconds */

static void hit(jw_event_t *ev, const char *rule, uint32_t pid, uint64_t create_time,
                const char *image) {
  jw_event_init(ev, JW_EVENT_VIOLATION, rule, "terminated", "monitor", "port", JW_SEV_HIGH);
  ev->has_process = 1;
  ev->process.pid = pid;
  ev->process.create_time = create_time;
  ev->process.image = image;
}

/* One window: a first hit written, three repeats held, a different image
 * written, the summary at the window's end with the exact count. */
static void test_window(void) {
  jw__coalesce_t c;
  jw_event_t ev, out;
  const uint64_t t0 = UINT64_C(1764650000000000);
  jw__coalesce_init(&c, 1000);

  hit(&ev, "image_denied", 100, 1, "C:\\w\\cmd.exe");
  CHECK_INT(jw__coalesce_hold(&c, &ev, t0), 0); /* the first: written */
  ev.seq = 7;
  jw__coalesce_opened(&c, &ev, t0);
  CHECK_U64(jw__coalesce_next_close(&c), t0 + 1000 * MS);

  /* Three more processes of the same image inside the window: held. */
  hit(&ev, "image_denied", 101, 2, "C:\\w\\cmd.exe");
  CHECK_INT(jw__coalesce_hold(&c, &ev, t0 + 100 * MS), 1);
  hit(&ev, "image_denied", 102, 3, "C:\\w\\cmd.exe");
  CHECK_INT(jw__coalesce_hold(&c, &ev, t0 + 200 * MS), 1);
  hit(&ev, "image_denied", 103, 4, "C:\\w\\cmd.exe");
  ev.extra = json_pack("{s:{s:s}}", "enforcement", "configured_action", "kill_process");
  CHECK_INT(jw__coalesce_hold(&c, &ev, t0 + 300 * MS), 1);
  CHECK(ev.extra == NULL); /* taken over: the summary carries it */
  CHECK_U64(c.held, 3);

  /* Another image, another rule: not the same hit. */
  hit(&ev, "image_denied", 104, 5, "C:\\w\\pwsh.exe");
  CHECK_INT(jw__coalesce_hold(&c, &ev, t0 + 310 * MS), 0);
  hit(&ev, "total_processes", 105, 6, "C:\\w\\cmd.exe");
  CHECK_INT(jw__coalesce_hold(&c, &ev, t0 + 320 * MS), 0);

  /* Nothing is due before the window closes. */
  CHECK_INT(jw__coalesce_take(&c, t0 + 999 * MS, 0, &out), 0);
  CHECK_INT(jw__coalesce_take(&c, t0 + 1000 * MS, 0, &out), 1);
  CHECK_STR(out.rule, "image_denied");
  CHECK_STR(out.action, "terminated");
  CHECK_INT(out.kind, JW_EVENT_VIOLATION);
  CHECK_INT(out.has_process, 0);
  CHECK_U64(out.time_us, t0 + 300 * MS); /* the last repeat */
  {
    json_t *co = json_object_get(out.extra, "coalesced");
    CHECK_INT(json_integer_value(json_object_get(co, "count")), 3);
    CHECK_INT(json_integer_value(json_object_get(co, "first_seq")), 7);
    CHECK_INT(json_integer_value(json_object_get(co, "window_ms")), 1000);
    CHECK_INT(json_integer_value(json_object_get(co, "last_pid")), 103);
    CHECK_STR(json_string_value(json_object_get(co, "subject")), "image:C:\\w\\cmd.exe");
    CHECK_STR(json_string_value(json_object_get(co, "first")), "2025-12-02T04:33:20.000000Z");
    CHECK_STR(json_string_value(json_object_get(co, "last")), "2025-12-02T04:33:20.300000Z");
  }
  CHECK_CONTAINS(out.message, "3 more image_denied hit(s)");
  CHECK_STR(json_string_value(
                json_object_get(json_object_get(out.extra, "enforcement"), "configured_action")),
            "kill_process");
  json_decref(out.extra);
  /* Taken once. */
  CHECK_INT(jw__coalesce_take(&c, t0 + 2000 * MS, 0, &out), 0);

  /* After the window, the same hit opens a new one and is written. */
  hit(&ev, "image_denied", 110, 9, "C:\\w\\cmd.exe");
  CHECK_INT(jw__coalesce_hold(&c, &ev, t0 + 1500 * MS), 0);
}

/* Subjects: the image for the rules about what runs, the process for the
 * others, the job without a process. */
static void test_subjects(void) {
  jw_event_t ev;
  char s[200];
  hit(&ev, "abnormal_exit", 1, 0x01DC5A0B12345678ull, "C:\\a.exe");
  jw__coalesce_subject(&ev, s, sizeof(s));
  CHECK_STR(s, "image:C:\\a.exe");
  hit(&ev, "process_memory", 1, 0x01DC5A0B12345678ull, "C:\\a.exe");
  jw__coalesce_subject(&ev, s, sizeof(s));
  CHECK_STR(s, "process:1-01DC5A0B12345678");
  jw_event_init(&ev, JW_EVENT_VIOLATION, "job_memory", "blocked", "kernel", "port", JW_SEV_HIGH);
  jw__coalesce_subject(&ev, s, sizeof(s));
  CHECK_STR(s, "job");
}

/* Off (window 0): nothing is ever held. At the job's end every open window
 * with repeats is summarized; one without repeats gives nothing. A full
 * table never hides a hit. */
static void test_off_end_full(void) {
  jw__coalesce_t c;
  jw_event_t ev, out;
  int i, written = 0, n = 0;
  jw__coalesce_init(&c, 0);
  hit(&ev, "image_denied", 1, 1, "C:\\x.exe");
  jw__coalesce_opened(&c, &ev, 10);
  CHECK_INT(jw__coalesce_hold(&c, &ev, 11), 0);

  jw__coalesce_init(&c, 60000);
  hit(&ev, "process_memory", 1, 1, "C:\\x.exe");
  jw__coalesce_opened(&c, &ev, 10);
  CHECK_INT(jw__coalesce_hold(&c, &ev, 20), 1);
  hit(&ev, "process_memory", 2, 2, "C:\\x.exe");
  jw__coalesce_opened(&c, &ev, 30); /* another process: a window without repeats */
  CHECK_INT(jw__coalesce_take(&c, 40, 1, &out), 1);
  CHECK_INT(json_integer_value(json_object_get(json_object_get(out.extra, "coalesced"), "count")),
            1);
  json_decref(out.extra);
  CHECK_INT(jw__coalesce_take(&c, 40, 1, &out), 0);

  jw__coalesce_init(&c, 60000);
  for (i = 0; i < JW_COALESCE_SLOTS + 10; i++) {
    char image[32];
    snprintf(image, sizeof(image), "C:\\%d.exe", i);
    hit(&ev, "image_denied", (uint32_t)i, 1, image);
    if (!jw__coalesce_hold(&c, &ev, 100)) {
      written++;
      jw__coalesce_opened(&c, &ev, 100);
    }
    /* A repeat of each: held only while its window has a slot. */
    if (!jw__coalesce_hold(&c, &ev, 101))
      n++;
  }
  CHECK_INT(written, JW_COALESCE_SLOTS + 10);
  CHECK_INT(n, 10); /* the ten without a slot were written in full */
}

/* Runnable one by one: `test_coalesce DATA OUT --case window`. */
static const jw_test_case_t cases[] = {
    {"window", test_window, 30},
    {"subjects", test_subjects, 30},
    {"off_end_full", test_off_end_full, 30},
};

int main(int argc, char **argv) {
  return jw_test_run_cases("coalesce", argc, argv, cases, sizeof(cases) / sizeof(cases[0]));
}
