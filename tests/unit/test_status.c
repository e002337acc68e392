/* Exit status decoding: classification of exit codes and NTSTATUS names.
 * usage: test_status DATA_DIR OUT_DIR (neither is used). */
#include <stdint.h>

#include "harness.h"
#include "jobwarden.h"

#ifdef _WIN32
/* The real definitions, to check the table against the SDK: ntstatus.h
 * needs windows.h's own STATUS_* subset suppressed first. */
#define WIN32_NO_STATUS
#include <windows.h>
#undef WIN32_NO_STATUS
#include <winternl.h> /* NTSTATUS */
#include <ntstatus.h>
#define ROW(value, name)                                                                           \
  { value, #name, (uint32_t)(name) }
#else
#define ROW(value, name)                                                                           \
  { value, #name, value }
#endif

struct named {
  uint32_t code;
  const char *name;
  uint32_t sdk; /* the SDK's value of `name` on Windows, else `code` */
};

/* Every name jobwarden must know, with its value written out here (not
 * taken from the implementation). */
static const struct named expected_names[] = {
    ROW(0xC0000005u, STATUS_ACCESS_VIOLATION),
    ROW(0xC0000409u, STATUS_STACK_BUFFER_OVERRUN),
    ROW(0xC00000FDu, STATUS_STACK_OVERFLOW),
    ROW(0xC0000017u, STATUS_NO_MEMORY),
    ROW(0xC000001Du, STATUS_ILLEGAL_INSTRUCTION),
    ROW(0xC0000094u, STATUS_INTEGER_DIVIDE_BY_ZERO),
    ROW(0xC0000095u, STATUS_INTEGER_OVERFLOW),
    ROW(0xC000008Cu, STATUS_ARRAY_BOUNDS_EXCEEDED),
    ROW(0xC000008Du, STATUS_FLOAT_DENORMAL_OPERAND),
    ROW(0xC000008Eu, STATUS_FLOAT_DIVIDE_BY_ZERO),
    ROW(0xC000008Fu, STATUS_FLOAT_INEXACT_RESULT),
    ROW(0xC0000090u, STATUS_FLOAT_INVALID_OPERATION),
    ROW(0xC0000091u, STATUS_FLOAT_OVERFLOW),
    ROW(0xC0000092u, STATUS_FLOAT_STACK_CHECK),
    ROW(0xC0000093u, STATUS_FLOAT_UNDERFLOW),
    ROW(0xC0000096u, STATUS_PRIVILEGED_INSTRUCTION),
    ROW(0xC0000006u, STATUS_IN_PAGE_ERROR),
    ROW(0xC0000008u, STATUS_INVALID_HANDLE),
    ROW(0xC000013Au, STATUS_CONTROL_C_EXIT),
    ROW(0xC0000142u, STATUS_DLL_INIT_FAILED),
    ROW(0xC0000135u, STATUS_DLL_NOT_FOUND),
    ROW(0xC0000139u, STATUS_ENTRYPOINT_NOT_FOUND),
    ROW(0xC0000374u, STATUS_HEAP_CORRUPTION),
    ROW(0xC0000602u, STATUS_FAIL_FAST_EXCEPTION),
    ROW(0xC0000420u, STATUS_ASSERTION_FAILURE),
    ROW(0xC0000025u, STATUS_NONCONTINUABLE_EXCEPTION),
    ROW(0xC0000026u, STATUS_INVALID_DISPOSITION),
    ROW(0xC00002B4u, STATUS_FLOAT_MULTIPLE_FAULTS),
    ROW(0xC00002B5u, STATUS_FLOAT_MULTIPLE_TRAPS),
    ROW(0xC0000044u, STATUS_QUOTA_EXCEEDED),
    ROW(0xC000012Du, STATUS_COMMITMENT_LIMIT),
    ROW(0xC0000022u, STATUS_ACCESS_DENIED),
    ROW(0x80000003u, STATUS_BREAKPOINT),
    ROW(0x80000004u, STATUS_SINGLE_STEP),
    ROW(0x80000002u, STATUS_DATATYPE_MISALIGNMENT),
    ROW(0x80000001u, STATUS_GUARD_PAGE_VIOLATION),
    ROW(0x40010004u, DBG_TERMINATE_PROCESS),
    ROW(0xC0000001u, STATUS_UNSUCCESSFUL),
    ROW(0xC000000Du, STATUS_INVALID_PARAMETER),
    ROW(0xC0000028u, STATUS_BAD_STACK),
    ROW(0xC0000029u, STATUS_INVALID_UNWIND_TARGET),
    ROW(0xC000007Bu, STATUS_INVALID_IMAGE_FORMAT),
    ROW(0xC0000138u, STATUS_ORDINAL_NOT_FOUND),
    ROW(0xC0000194u, STATUS_POSSIBLE_DEADLOCK),
    ROW(0xC0000417u, STATUS_INVALID_CRUNTIME_PARAMETER),
    ROW(0x40000015u, STATUS_FATAL_APP_EXIT),
};

/* Codes that must have no name: success, plain exit codes, C++ exceptions,
 * neighbours of listed codes, and real NTSTATUS values that are not exit
 * codes (STATUS_PENDING, STATUS_TIMEOUT, STATUS_BUFFER_OVERFLOW...). */
static const uint32_t unnamed[] = {
    0x00000000u, 0x00000001u, 0x00000002u, 0x00000003u, 0x00000102u, 0x00000103u,
    0xFFFFFFFFu, 0xE06D7363u, 0xE0434352u, 0x80000005u, 0xC0000000u, 0xC0000002u,
    0xC0000004u, 0xC0000007u, 0xC00000FCu, 0xC00000FEu, 0xC0000408u, 0xC000040Au,
    0xC0000603u, 0xC00001ADu, 0x40010005u, 0x7FFFFFFFu, 0x80000000u,
};

struct classified {
  uint32_t code;
  jw_exit_class_t want;
};

static const struct classified classes[] = {
    {0x00000000u, JW_EXIT_SUCCESS},
    /* Plain exit codes a program chooses. */
    {0x00000001u, JW_EXIT_FAILURE},
    {0x00000002u, JW_EXIT_FAILURE},
    {0x00000003u, JW_EXIT_FAILURE}, /* abort() in the MSVC runtime */
    {0x000000FFu, JW_EXIT_FAILURE},
    {0x00000103u, JW_EXIT_FAILURE}, /* 259, STILL_ACTIVE as an exit code */
    {0xFFFFFFFFu, JW_EXIT_FAILURE}, /* exit(-1) */
    {0xFFFFFFFEu, JW_EXIT_FAILURE}, /* exit(-2) */
    {0x7FFFFFFFu, JW_EXIT_FAILURE},
    /* Customer bit set: user-defined, e.g. an unhandled C++ / .NET
     * exception. The program's own code, not a system verdict. */
    {0xE06D7363u, JW_EXIT_FAILURE},
    {0xE0434352u, JW_EXIT_FAILURE},
    {0xE0000000u, JW_EXIT_FAILURE},
    {0xF0000000u, JW_EXIT_FAILURE},
    /* Informational and the other warnings. */
    {0x40000015u, JW_EXIT_FAILURE},
    {0x40010004u, JW_EXIT_FAILURE},
    {0x80000000u, JW_EXIT_FAILURE},
    {0x80000005u, JW_EXIT_FAILURE},
    {0x80000029u, JW_EXIT_FAILURE},
    {0xA0000001u, JW_EXIT_FAILURE}, /* warning + customer */
    /* The four exception warnings. */
    {0x80000001u, JW_EXIT_ABNORMAL},
    {0x80000002u, JW_EXIT_ABNORMAL},
    {0x80000003u, JW_EXIT_ABNORMAL},
    {0x80000004u, JW_EXIT_ABNORMAL},
    /* Error severity, system-defined: every one, named or not. */
    {0xC0000000u, JW_EXIT_ABNORMAL},
    {0xC0000001u, JW_EXIT_ABNORMAL},
    {0xC0000005u, JW_EXIT_ABNORMAL},
    {0xC0000409u, JW_EXIT_ABNORMAL},
    {0xC000013Au, JW_EXIT_ABNORMAL},
    {0xC0000602u, JW_EXIT_ABNORMAL},
    {0xC00001ADu, JW_EXIT_ABNORMAL},
    {0xDFFFFFFFu, JW_EXIT_ABNORMAL}, /* highest without the customer bit */
};

/* Each written-out name is the one jw_ntstatus_name gives, and the table
 * holds no typo. */
static void test_names(void) {
  size_t i, j;
  for (i = 0; i < sizeof(expected_names) / sizeof(expected_names[0]); i++) {
    const struct named *n = &expected_names[i];
    const char *got = jw_ntstatus_name(n->code);
    CHECK_STR(got, n->name);
    if (got == NULL || strcmp(got, n->name) != 0)
      fprintf(stderr, "  for code 0x%08" PRIX32 "\n", n->code);
    /* Written-out value == SDK value (a tautology off Windows). */
    CHECK_U64(n->sdk, n->code);
    /* No two rows share a code or a name (a typo in the table above). */
    for (j = i + 1; j < sizeof(expected_names) / sizeof(expected_names[0]); j++) {
      CHECK(expected_names[j].code != n->code);
      CHECK(strcmp(expected_names[j].name, n->name) != 0);
    }
  }
}

static void test_unnamed(void) {
  size_t i;
  for (i = 0; i < sizeof(unnamed) / sizeof(unnamed[0]); i++) {
    const char *got = jw_ntstatus_name(unnamed[i]);
    CHECK_STR(got, NULL);
    if (got != NULL)
      fprintf(stderr, "  for code 0x%08" PRIX32 "\n", unnamed[i]);
  }
}

static void test_classes(void) {
  size_t i;
  for (i = 0; i < sizeof(classes) / sizeof(classes[0]); i++) {
    jw_exit_class_t got = jw_exit_classify(classes[i].code);
    CHECK_INT(got, classes[i].want);
    if (got != classes[i].want)
      fprintf(stderr, "  for code 0x%08" PRIX32 "\n", classes[i].code);
  }
  /* Every named error-severity code is abnormal, whatever its name. */
  for (i = 0; i < sizeof(expected_names) / sizeof(expected_names[0]); i++)
    if ((expected_names[i].code & 0xC0000000u) == 0xC0000000u)
      CHECK_INT(jw_exit_classify(expected_names[i].code), JW_EXIT_ABNORMAL);
}

/* Runnable one by one: `test_status DATA OUT --case names`. */
static const jw_test_case_t cases[] = {
    {"names", test_names, 30},
    {"unnamed", test_unnamed, 30},
    {"classes", test_classes, 30},
};

int main(int argc, char **argv) {
  return jw_test_run_cases("status", argc, argv, cases, sizeof(cases) / sizeof(cases[0]));
}
