# jobwarden report (src/report*.c; docs/forensics.md, "Report"). Included
# by tests/CMakeLists.txt in every tree.
#   <tree>.report.usage      bad input: exact messages and exit statuses
#   <tree>.report.scenarios  synthetic records (several runs, rotation in
#                            any order, killed, hostile, sealed, foreign
#                            lines) against check_report.py; native: the
#                            html of each in chromium too
#   asan.report.fuzz         400 damaged records (types, cycles, cuts...):
#                            no crash, the document keeps its schema
#   native.report.large      5,000 processes in under 2 s per format, alone
#   wine.report.real         a real run under Wine (hostile command lines,
#                            crashes, rotation) reported and checked, the
#                            html in chromium, jobwarden.exe's json = native
#   wine.report.records      every record the other tests wrote, reported
#                            and checked against it
set(JW_REPORT_DIR "${CMAKE_CURRENT_SOURCE_DIR}/report")
if(NOT WIN32)
  add_test(NAME ${JW_TEST_PREFIX}.report.usage
           COMMAND bash ${JW_REPORT_DIR}/usage.sh $<TARGET_FILE:jobwarden>
                   ${CMAKE_CURRENT_BINARY_DIR}/report-usage ${JW_TEST_DATA}/report/sample.jsonl)
  if(JW_TEST_PREFIX STREQUAL "native")
    set(JW_REPORT_HTML html)
  else()
    set(JW_REPORT_HTML "")
  endif()
  add_test(NAME ${JW_TEST_PREFIX}.report.scenarios
           COMMAND bash ${JW_REPORT_DIR}/scenarios.sh $<TARGET_FILE:jobwarden>
                   ${CMAKE_CURRENT_BINARY_DIR}/report-scenarios ${JW_REPORT_HTML})
  set_tests_properties(${JW_TEST_PREFIX}.report.usage ${JW_TEST_PREFIX}.report.scenarios
                       PROPERTIES LABELS "report;${JW_TEST_PREFIX}" TIMEOUT 300)
  if(JW_TEST_PREFIX STREQUAL "asan")
    add_test(NAME asan.report.fuzz
             COMMAND /usr/bin/python3 ${JW_REPORT_DIR}/fuzz.py $<TARGET_FILE:jobwarden>
                     ${CMAKE_SOURCE_DIR}/docs/jobwarden-report.schema.json
                     ${CMAKE_CURRENT_BINARY_DIR}/report-fuzz 400 ${JW_TEST_DATA}/hostile
                     ${JW_TEST_DATA}/report/sample.jsonl)
    set_tests_properties(asan.report.fuzz PROPERTIES LABELS "report;asan" TIMEOUT 600)
  endif()
  if(JW_TEST_PREFIX STREQUAL "native")
    add_test(NAME native.report.large
             COMMAND bash ${JW_REPORT_DIR}/large.sh $<TARGET_FILE:jobwarden>
                     ${CMAKE_CURRENT_BINARY_DIR}/report-large 5000)
    # Alone, so that its wall-clock limit measures the report, not the
    # other tests sharing the cores.
    set_tests_properties(native.report.large PROPERTIES LABELS "report;native" RUN_SERIAL TRUE
                         TIMEOUT 600)
  endif()
else()
  # The analyst's tool is the native build: it reads what jobwarden.exe wrote.
  set(JW_NATIVE_JOBWARDEN "${CMAKE_BINARY_DIR}/../native/jobwarden")
  add_test(NAME wine.report.real
           COMMAND bash ${JW_REPORT_DIR}/real_run.sh $<TARGET_FILE:jobwarden> $<TARGET_FILE:win_cli>
                   "${JW_WINEPREFIX}" "${JW_NATIVE_JOBWARDEN}" ${CMAKE_CURRENT_BINARY_DIR}/report-real)
  set_tests_properties(wine.report.real PROPERTIES LABELS "report;wine;real" TIMEOUT 300)
  add_test(NAME wine.report.records
           COMMAND bash ${JW_REPORT_DIR}/records.sh "${JW_NATIVE_JOBWARDEN}"
                   ${CMAKE_CURRENT_BINARY_DIR}/report-records 40 ${JW_TEST_EVENTS}
                   ${CMAKE_BINARY_DIR}/../native/test-events)
  set_tests_properties(wine.report.records PROPERTIES LABELS "report;wine"
                       FIXTURES_REQUIRED "wine_events;native.unit-events" TIMEOUT 600)
endif()
