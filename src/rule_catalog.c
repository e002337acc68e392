/* The rule catalog (rule_catalog.h). Ids are stable: a rule keeps its id
 * for ever, a retired rule's id is never given to another one. Numbering:
 * 0xxx lifecycle, 10xx kernel limits, 11xx monitor rules, 12xx process
 * outcomes, 13xx attacks on the sandbox, 20xx sandbox health notices,
 * 21xx telemetry. Tags: "attack.tNNNN[.NNN]" (lowercase, as Sigma writes
 * them) where a MITRE ATT&CK technique fits what the rule detects, and
 * "jobwarden.<category>" always. */
#include "rule_catalog.h"

#include <ctype.h>
#include <string.h>

static const jw_rule_info_t catalog[] = {
    {"job",
     "JW-0001",
     "Sandbox job",
     "lifecycle",
     "The job itself: its start with the effective policy, and its end with the run's totals.",
     {"jobwarden.lifecycle"}},
    {"root_process",
     "JW-0002",
     "Root process",
     "lifecycle",
     "The process jobwarden started inside the job: its start, its identity, its exit.",
     {"jobwarden.lifecycle"}},
    {"child_process",
     "JW-0003",
     "Process in the job",
     "lifecycle",
     "A process the sandboxed program started inside the job: its start, its identity, its exit.",
     {"jobwarden.lifecycle"}},
    {"escaped_process",
     "JW-0004",
     "Escaped process ended",
     "lifecycle",
     "The end of a process that had escaped the job.",
     {"jobwarden.lifecycle"}},
    {"active_processes",
     "JW-1001",
     "Active-process limit",
     "limit",
     "A process creation went over the job's active-process limit: the kernel refused it, or it "
     "ran because the kernel did not enforce the limit.",
     {"jobwarden.limit"}},
    {"process_memory",
     "JW-1002",
     "Process memory limit",
     "limit",
     "A process tried to commit more memory than the policy's per-process limit.",
     {"jobwarden.limit"}},
    {"job_memory",
     "JW-1003",
     "Job memory limit",
     "limit",
     "The job tried to commit more memory than the policy's job limit.",
     {"jobwarden.limit"}},
    {"process_cpu_time",
     "JW-1004",
     "Process CPU time limit",
     "limit",
     "A process used up the user-mode CPU time the policy allows it; Windows terminated it.",
     {"jobwarden.limit"}},
    {"job_cpu_time",
     "JW-1005",
     "Job CPU time limit",
     "limit",
     "The job used up its user-mode CPU time; Windows terminated every process.",
     {"jobwarden.limit"}},
    {"job_memory_warning",
     "JW-1006",
     "Job memory warning",
     "limit",
     "The job's committed memory passed the warning threshold below its limit.",
     {"jobwarden.limit"}},
    {"job_cpu_time_warning",
     "JW-1007",
     "Job CPU time warning",
     "limit",
     "The job's user-mode CPU time passed the warning threshold below its limit.",
     {"jobwarden.limit"}},
    {"notification_limit",
     "JW-1008",
     "Unidentified notification limit",
     "limit",
     "A notification limit was exceeded but Windows did not say which one.",
     {"jobwarden.limit"}},
    {"job_cycle_time",
     "JW-1009",
     "Job CPU cycle limit",
     "limit",
     "The job's CPU cycle limit was exceeded (a limit jobwarden never sets).",
     {"jobwarden.limit"}},
    {"timeout",
     "JW-1101",
     "Run timeout",
     "monitor_rule",
     "The run lasted longer than the policy's timeout.",
     {"jobwarden.monitor_rule"}},
    {"total_processes",
     "JW-1102",
     "Process count cap",
     "monitor_rule",
     "More processes were started in the job's lifetime than the policy allows.",
     {"jobwarden.monitor_rule"}},
    {"image_denied",
     "JW-1103",
     "Denied image started",
     "monitor_rule",
     "A process runs an image that the policy's deny list names (by file name, hash, original file "
     "name or signer).",
     {"jobwarden.monitor_rule"}},
    {"image_not_allowed",
     "JW-1104",
     "Image not on the allow list",
     "monitor_rule",
     "A process runs an image that the policy's allow list does not name.",
     {"jobwarden.monitor_rule"}},
    {"image_unknown",
     "JW-1105",
     "Unreadable image",
     "monitor_rule",
     "An image list is set and a process's image could not be read, so it could not be checked.",
     {"jobwarden.monitor_rule"}},
    {"abnormal_exit",
     "JW-1201",
     "Abnormal exit",
     "process",
     "A process ended with a crash or a system verdict (an NTSTATUS error code).",
     {"jobwarden.process"}},
    {"process_left_job",
     "JW-1202",
     "Process left the job",
     "process",
     "A process that was a member of the job runs outside it.",
     {"jobwarden.process"}},
    {"orphan_processes",
     "JW-1203",
     "Processes outlived the root",
     "process",
     "Processes were still running when the root process exited; jobwarden ended the job.",
     {"jobwarden.process"}},
    {"job_escape",
     "JW-1301",
     "Job escape",
     "attack",
     "A process runs outside the job although it descends from it: it was started with a parent "
     "named outside the job.",
     {"attack.t1134.004", "attack.defense_evasion", "jobwarden.attack"}},
    {"monitor_tampering",
     "JW-1302",
     "Monitor tampering",
     "attack",
     "A packet the kernel did not send was posted to the job's completion port.",
     {"attack.t1562.001", "attack.defense_evasion", "jobwarden.attack"}},
    {"pipe_reader_refused",
     "JW-1303",
     "Telemetry reader refused",
     "attack",
     "A pipe sink refused a reader: a process of the job, an escaped one, an unidentifiable one, "
     "or one over the sink's reader cap.",
     {"attack.t1562.001", "attack.defense_evasion", "jobwarden.attack"}},
    {"member_control",
     "JW-1304",
     "Control request",
     "attack",
     "A request on jobwarden's control channel terminated something or was refused.",
     {"attack.t1562.001", "jobwarden.attack"}},
    {"silo_terminated",
     "JW-2001",
     "Silo terminated",
     "sandbox_health",
     "The job's silo was terminated.",
     {"jobwarden.sandbox_health"}},
    {"unknown_job_message",
     "JW-2002",
     "Unknown job message",
     "sandbox_health",
     "The job's port delivered a message id jobwarden does not know.",
     {"jobwarden.sandbox_health"}},
    {"kill_on_close_unavailable",
     "JW-2003",
     "Kill-on-close unavailable",
     "sandbox_health",
     "Windows refused to end the job's processes when jobwarden's handle closes.",
     {"jobwarden.sandbox_health"}},
    {"notification_limits_unavailable",
     "JW-2004",
     "Notification limits unavailable",
     "sandbox_health",
     "Windows refused the warning thresholds below the job limits.",
     {"jobwarden.sandbox_health"}},
    {"setup_failed",
     "JW-2005",
     "Setup failed",
     "sandbox_health",
     "The job or the program's token could not be set up; nothing was started.",
     {"jobwarden.sandbox_health"}},
    {"token_not_applied",
     "JW-2006",
     "Token weaker than asked",
     "sandbox_health",
     "The program runs with a token that has more rights than the policy asks.",
     {"jobwarden.sandbox_health"}},
    {"self_protection_unavailable",
     "JW-2007",
     "Self-protection unavailable",
     "sandbox_health",
     "jobwarden could not protect its own process or a thread against the program.",
     {"jobwarden.sandbox_health"}},
    {"spawn_failed",
     "JW-2008",
     "Spawn failed",
     "sandbox_health",
     "The program could not be started inside the job.",
     {"jobwarden.sandbox_health"}},
    {"interrupted",
     "JW-2009",
     "Interrupted",
     "sandbox_health",
     "jobwarden was interrupted and ended the job.",
     {"jobwarden.sandbox_health"}},
    {"monitor_failed",
     "JW-2010",
     "Monitor failed",
     "sandbox_health",
     "The monitor can no longer read the job's port.",
     {"jobwarden.sandbox_health"}},
    {"unknown_completion_key",
     "JW-2011",
     "Unknown completion key (retired)",
     "sandbox_health",
     "Retired in 1.3.0: a packet under a foreign key is a monitor_tampering violation.",
     {"jobwarden.sandbox_health"}},
    {"sink_failed",
     "JW-2101",
     "Sink failed",
     "telemetry",
     "An exporter failed to write an event.",
     {"jobwarden.telemetry"}},
    {"sink_unreachable",
     "JW-2103",
     "Sink unreachable",
     "telemetry",
     "A network sink cannot deliver; its lines wait in its spool.",
     {"jobwarden.telemetry"}},
    {"sink_recovered",
     "JW-2104",
     "Sink recovered",
     "telemetry",
     "A network sink delivers again after an outage; its spooled lines follow.",
     {"jobwarden.telemetry"}},
    {"telemetry_gap",
     "JW-2102",
     "Telemetry gap",
     "telemetry",
     "Events that did not reach a sink, or job messages the port never delivered.",
     {"jobwarden.telemetry"}},
};

const jw_rule_info_t *jw_rule_info(const char *rule) {
  size_t i;
  if (rule == NULL)
    return NULL;
  for (i = 0; i < sizeof(catalog) / sizeof(catalog[0]); i++)
    if (strcmp(catalog[i].name, rule) == 0)
      return &catalog[i];
  return NULL;
}

const jw_rule_info_t *jw_rule_catalog(size_t *n) {
  if (n != NULL)
    *n = sizeof(catalog) / sizeof(catalog[0]);
  return catalog;
}

/* Interpreters an agent reaches for to run commands, with their ATT&CK
 * sub-technique of T1059 (Command and Scripting Interpreter). */
static const struct {
  const char *name;
  const char *tag;
} interpreters[] = {
    {"powershell", "attack.t1059.001"},     {"pwsh", "attack.t1059.001"},
    {"powershell_ise", "attack.t1059.001"}, {"cmd", "attack.t1059.003"},
    {"wscript", "attack.t1059.005"},        {"cscript", "attack.t1059.005"},
    {"mshta", "attack.t1218.005"},          {"python", "attack.t1059.006"},
    {"pythonw", "attack.t1059.006"},        {"node", "attack.t1059.007"},
};

const char *jw_rule_image_tag(const char *file_name) {
  char base[64];
  size_t n, i;
  if (file_name == NULL)
    return NULL;
  n = strlen(file_name);
  if (n >= 4 && (file_name[n - 4] == '.') && tolower((unsigned char)file_name[n - 3]) == 'e' &&
      tolower((unsigned char)file_name[n - 2]) == 'x' &&
      tolower((unsigned char)file_name[n - 1]) == 'e')
    n -= 4;
  if (n == 0 || n >= sizeof(base))
    return NULL;
  for (i = 0; i < n; i++)
    base[i] = (char)tolower((unsigned char)file_name[i]);
  base[n] = '\0';
  for (i = 0; i < sizeof(interpreters) / sizeof(interpreters[0]); i++)
    if (strcmp(interpreters[i].name, base) == 0)
      return interpreters[i].tag;
  return NULL;
}
