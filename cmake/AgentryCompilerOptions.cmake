# Compiler flags shared by every Agentry target, applied through agentry_target_defaults().

if(NOT CMAKE_CXX_COMPILER_LAUNCHER)
  find_program(CCACHE_PROGRAM ccache)
  if(CCACHE_PROGRAM)
    set(CMAKE_C_COMPILER_LAUNCHER ${CCACHE_PROGRAM})
    set(CMAKE_CXX_COMPILER_LAUNCHER ${CCACHE_PROGRAM})
  endif()
endif()

# LLVM's lld when the toolchain can use it (scripts/bootstrap installs it): a test binary
# links in 1.0 s instead of 2.8 s with ld, and CI links a few hundred of them.
include(CheckLinkerFlag)
check_linker_flag(CXX -fuse-ld=lld AGENTRY_HAVE_LLD)
if(AGENTRY_HAVE_LLD)
  add_link_options(-fuse-ld=lld)
endif()

add_library(agentry_defaults INTERFACE)
target_compile_options(agentry_defaults INTERFACE -Wall -Wextra)
if(AGENTRY_WERROR)
  target_compile_options(agentry_defaults INTERFACE -Werror)
endif()
# cpprestsdk's U() macro collides with GoogleTest; see DESIGN.md.
target_compile_definitions(agentry_defaults INTERFACE _TURN_OFF_PLATFORM_STRING)

if(AGENTRY_SANITIZE)
  # -fno-sanitize=vptr: UBSan's dynamic-type check reports false positives on cpprestsdk's
  # stream buffers, whose type_info lives in the uninstrumented libcpprest.so.
  set(_san -fsanitize=address,undefined -fno-sanitize=vptr -fno-omit-frame-pointer
           -fno-sanitize-recover=undefined)
  target_compile_options(agentry_defaults INTERFACE ${_san})
  target_link_options(agentry_defaults INTERFACE ${_san})
endif()

if(AGENTRY_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "AGENTRY_FUZZ needs clang (use the 'fuzz' preset)")
  endif()
  # Instrument everything for coverage; only fuzz targets link the libFuzzer main.
  target_compile_options(agentry_defaults INTERFACE -fsanitize=fuzzer-no-link,address,undefined)
  target_link_options(agentry_defaults INTERFACE -fsanitize=address,undefined)
endif()

# agentry_add_test(NAME name SOURCES ... LIBS ... [LABELS ...] [FIXTURES fixture]
#                  [LSAN_SUPPRESSIONS file]): one GoogleTest binary whose tests are registered
# with CTest individually, so `ctest -R` can pick one; FIXTURES names a CTest fixture (a setup
# test) they all require; LSAN_SUPPRESSIONS a LeakSanitizer suppression file for the asan build.
function(agentry_add_test)
  cmake_parse_arguments(ARG "" "NAME;FIXTURES;LSAN_SUPPRESSIONS" "SOURCES;LIBS;LABELS" ${ARGN})
  if(NOT BUILD_TESTING)
    return()
  endif()
  add_executable(${ARG_NAME} ${ARG_SOURCES})
  target_link_libraries(${ARG_NAME} PRIVATE agentry_defaults ${ARG_LIBS} GTest::gtest
                                            GTest::gmock GTest::gtest_main)
  # A test's own sources at -O1 in optimized builds (the last -O wins): the libraries under
  # test keep -O2, and GoogleTest's expanded macros compile in about 30 % less time (one
  # unity batch of session_api_test: 28.7 s at -O2, 19.8 s at -O1), which is CI time.
  target_compile_options(${ARG_NAME} PRIVATE $<$<NOT:$<CONFIG:Debug>>:-O1>)
  if(NOT ARG_LABELS)
    set(ARG_LABELS unit)
  endif()
  # `unit_tests` builds just what `ctest -L unit` runs (the sanitizer pass of CI).
  if("unit" IN_LIST ARG_LABELS)
    if(NOT TARGET unit_tests)
      add_custom_target(unit_tests)
    endif()
    add_dependencies(unit_tests ${ARG_NAME})
  endif()
  set(extra)
  if(ARG_FIXTURES)
    list(APPEND extra FIXTURES_REQUIRED ${ARG_FIXTURES})
  endif()
  # Leaks inside a third-party library that the test cannot avoid (the file says which and
  # why); only the sanitizer build reads it.
  if(ARG_LSAN_SUPPRESSIONS AND AGENTRY_SANITIZE)
    list(APPEND extra ENVIRONMENT "LSAN_OPTIONS=suppressions=${ARG_LSAN_SUPPRESSIONS}")
  endif()
  gtest_discover_tests(${ARG_NAME} PROPERTIES LABELS "${ARG_LABELS}" ${extra}
                       DISCOVERY_TIMEOUT 60)
endfunction()
