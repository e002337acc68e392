# Writes ${OUT}: the build identity jobwarden puts into agent.build (the
# git commit of the source tree, "+dirty" when it has uncommitted changes).
# Run at every build (target jw_build_info), rewritten only when the value
# changes, so that a commit never leaves a stale identity in the binary and
# an unchanged tree recompiles nothing. Outside a git checkout the macro is
# left undefined and events name agent.build as unavailable.
execute_process(COMMAND git -C "${SRC}" rev-parse --short=12 HEAD
                OUTPUT_VARIABLE commit OUTPUT_STRIP_TRAILING_WHITESPACE
                RESULT_VARIABLE rc ERROR_QUIET)
if(rc EQUAL 0 AND commit)
  execute_process(COMMAND git -C "${SRC}" status --porcelain --untracked-files=no
                  OUTPUT_VARIABLE changes OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  if(changes)
    set(commit "${commit}+dirty")
  endif()
  set(text "#define JW_BUILD \"${commit}\"\n")
else()
  set(text "/* not built from a git checkout: JW_BUILD undefined */\n")
endif()
if(EXISTS "${OUT}")
  file(READ "${OUT}" old)
else()
  set(old "")
endif()
if(NOT old STREQUAL text)
  file(WRITE "${OUT}" "${text}")
endif()
