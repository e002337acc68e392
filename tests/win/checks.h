/* Checks shared by the Windows test executables. They count in the
 * including test's harness.h counters, so they live here (static inline),
 * not in helpers.c. Include after harness.h and helpers.h. */
#ifndef JW_TEST_WIN_CHECKS_H
#define JW_TEST_WIN_CHECKS_H

#define TW_SID_SYSTEM "S-1-5-18"

/* The object behind h is this user's alone: owner this user, a protected
 * DACL of exactly two entries allowing full access to this user, then to
 * SYSTEM (the DACL jobwarden gives its pipes). */
static inline void tw_check_private_dacl(HANDLE h) {
  tw_acl_t a;
  DWORD i;
  CHECK_INT(tw_acl_read(h, NULL, 1, &a), ERROR_SUCCESS);
  CHECK(tw_user_sid()[0] != '\0');
  CHECK_STR(a.owner, tw_user_sid());
  CHECK(a.have_control);
  CHECK(a.is_protected); /* no inherited entries */
  CHECK(a.have_dacl);
  CHECK_INT(a.ace_count, 2);
  for (i = 0; i < a.ace_count && i < 2; i++) {
    CHECK(a.ace[i].read);
    CHECK_INT(a.ace[i].type, ACCESS_ALLOWED_ACE_TYPE);
    CHECK(a.ace[i].mask == GENERIC_ALL || a.ace[i].mask == FILE_ALL_ACCESS);
    CHECK_STR(a.ace[i].sid, i == 0 ? tw_user_sid() : TW_SID_SYSTEM);
  }
}

/* The events of a run made with .events_path (tw_jw_wait read them), as a
 * new reference, after a check that they were read (the file exists and
 * parses, no torn last line); an empty array when they were not, so that
 * the checks that follow fail on counts instead of crashing. */
static inline json_t *tw_check_events(const tw_run_t *r) {
  CHECK(r->events != NULL);
  return r->events != NULL ? json_incref(r->events) : json_array();
}

/* The one event of evs matching (event, rule) about process pid, or NULL
 * after a failed check when there is not exactly one. Borrowed from evs. */
static inline json_t *tw_only_for(json_t *evs, const char *event, const char *rule, long long pid) {
  json_t *f = tw_filter(evs, event, rule), *ev, *hit = NULL;
  size_t i, n = 0;
  json_array_foreach(f, i, ev) {
    if (tw_int(ev, "process.pid") == pid) {
      hit = ev;
      n++;
    }
  }
  json_decref(f);
  CHECK_INT(n, 1);
  return n == 1 ? hit : NULL;
}

#endif
