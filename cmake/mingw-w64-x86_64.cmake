# Toolchain file for the Windows x86-64 build with Debian's mingw-w64.
set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR x86_64)
set(JW_MINGW_PREFIX x86_64-w64-mingw32)

# The posix thread model is not needed; the win32 one keeps the runtime
# free of winpthreads, so the .exe depends on system DLLs only.
find_program(CMAKE_C_COMPILER NAMES ${JW_MINGW_PREFIX}-gcc-win32 ${JW_MINGW_PREFIX}-gcc REQUIRED)
find_program(CMAKE_RC_COMPILER NAMES ${JW_MINGW_PREFIX}-windres)

set(CMAKE_FIND_ROOT_PATH /usr/${JW_MINGW_PREFIX})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
