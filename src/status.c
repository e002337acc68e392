/* Exit status decoding: is a process's exit code a crash, and which NTSTATUS
 * is it? Portable: the values are plain numbers, so this builds and is tested
 * on Linux too. Every value below is checked against mingw-w64's ntstatus.h
 * (and DBG_TERMINATE_PROCESS against its winnt.h definition); the unit test
 * repeats that check against the SDK headers when built for Windows. */
#include "internal.h"

/* Severity bits 31..30 of an NTSTATUS: 11 = error, 10 = warning. Bit 29 is
 * the "customer" flag: C++ exceptions (0xE06D7363) and other user-defined
 * codes set it, and those are a program's own choice, not a system verdict. */
#define SEVERITY_CUSTOMER_MASK 0xE0000000u
#define SEVERITY_ERROR_SYSTEM  0xC0000000u

jw_exit_class_t jw_exit_classify(uint32_t code) {
  if (code == 0)
    return JW_EXIT_SUCCESS;
  if ((code & SEVERITY_CUSTOMER_MASK) == SEVERITY_ERROR_SYSTEM)
    return JW_EXIT_ABNORMAL;
  /* The four exception codes of warning severity that end a process when
   * nobody handles them: guard page, misalignment, breakpoint, single step.
   * Other warnings (0x80000005 BUFFER_OVERFLOW...) are ordinary results a
   * program may pass to ExitProcess itself. */
  if (code >= 0x80000001u && code <= 0x80000004u)
    return JW_EXIT_ABNORMAL;
  return JW_EXIT_FAILURE;
}

struct status_name {
  uint32_t code;
  const char *name;
};

/* Sorted by code so that the lookup can bisect. Only codes that a process
 * actually exits with (unhandled exceptions, loader and fail-fast errors,
 * Ctrl+C, debugger kills) are listed: the table names exit codes, it is not
 * a copy of ntstatus.h. */
static const struct status_name status_names[] = {
    {0x40000015u, "STATUS_FATAL_APP_EXIT"},
    {0x40010004u, "DBG_TERMINATE_PROCESS"},
    {0x80000001u, "STATUS_GUARD_PAGE_VIOLATION"},
    {0x80000002u, "STATUS_DATATYPE_MISALIGNMENT"},
    {0x80000003u, "STATUS_BREAKPOINT"},
    {0x80000004u, "STATUS_SINGLE_STEP"},
    {0xC0000001u, "STATUS_UNSUCCESSFUL"},
    {0xC0000005u, "STATUS_ACCESS_VIOLATION"},
    {0xC0000006u, "STATUS_IN_PAGE_ERROR"},
    {0xC0000008u, "STATUS_INVALID_HANDLE"},
    {0xC000000Du, "STATUS_INVALID_PARAMETER"},
    {0xC0000017u, "STATUS_NO_MEMORY"},
    {0xC000001Du, "STATUS_ILLEGAL_INSTRUCTION"},
    {0xC0000022u, "STATUS_ACCESS_DENIED"},
    {0xC0000025u, "STATUS_NONCONTINUABLE_EXCEPTION"},
    {0xC0000026u, "STATUS_INVALID_DISPOSITION"},
    {0xC0000028u, "STATUS_BAD_STACK"},
    {0xC0000029u, "STATUS_INVALID_UNWIND_TARGET"},
    {0xC0000044u, "STATUS_QUOTA_EXCEEDED"},
    {0xC000007Bu, "STATUS_INVALID_IMAGE_FORMAT"},
    {0xC000008Cu, "STATUS_ARRAY_BOUNDS_EXCEEDED"},
    {0xC000008Du, "STATUS_FLOAT_DENORMAL_OPERAND"},
    {0xC000008Eu, "STATUS_FLOAT_DIVIDE_BY_ZERO"},
    {0xC000008Fu, "STATUS_FLOAT_INEXACT_RESULT"},
    {0xC0000090u, "STATUS_FLOAT_INVALID_OPERATION"},
    {0xC0000091u, "STATUS_FLOAT_OVERFLOW"},
    {0xC0000092u, "STATUS_FLOAT_STACK_CHECK"},
    {0xC0000093u, "STATUS_FLOAT_UNDERFLOW"},
    {0xC0000094u, "STATUS_INTEGER_DIVIDE_BY_ZERO"},
    {0xC0000095u, "STATUS_INTEGER_OVERFLOW"},
    {0xC0000096u, "STATUS_PRIVILEGED_INSTRUCTION"},
    {0xC00000FDu, "STATUS_STACK_OVERFLOW"},
    {0xC000012Du, "STATUS_COMMITMENT_LIMIT"},
    {0xC0000135u, "STATUS_DLL_NOT_FOUND"},
    {0xC0000138u, "STATUS_ORDINAL_NOT_FOUND"},
    {0xC0000139u, "STATUS_ENTRYPOINT_NOT_FOUND"},
    {0xC000013Au, "STATUS_CONTROL_C_EXIT"},
    {0xC0000142u, "STATUS_DLL_INIT_FAILED"},
    {0xC0000194u, "STATUS_POSSIBLE_DEADLOCK"},
    {0xC00002B4u, "STATUS_FLOAT_MULTIPLE_FAULTS"},
    {0xC00002B5u, "STATUS_FLOAT_MULTIPLE_TRAPS"},
    {0xC0000374u, "STATUS_HEAP_CORRUPTION"},
    {0xC0000409u, "STATUS_STACK_BUFFER_OVERRUN"},
    {0xC0000417u, "STATUS_INVALID_CRUNTIME_PARAMETER"},
    {0xC0000420u, "STATUS_ASSERTION_FAILURE"},
    {0xC0000602u, "STATUS_FAIL_FAST_EXCEPTION"},
};

const char *jw_ntstatus_name(uint32_t code) {
  size_t lo = 0, hi = sizeof(status_names) / sizeof(status_names[0]);
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (status_names[mid].code == code)
      return status_names[mid].name;
    if (status_names[mid].code < code)
      lo = mid + 1;
    else
      hi = mid;
  }
  return NULL;
}
