# Flags live on two INTERFACE targets that every qseal target links privately, so nothing
# leaks into third-party code and a component's CMakeLists stays a few lines long.
add_library(qseal_warnings INTERFACE)
add_library(qseal::warnings ALIAS qseal_warnings)
target_compile_options(qseal_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wnon-virtual-dtor -Wold-style-cast
  -Woverloaded-virtual -Wimplicit-fallthrough -Wformat=2
  $<$<CXX_COMPILER_ID:Clang>:-Wthread-safety>
  # GCC 12 reports false -Wrestrict positives inside libstdc++'s string concatenation at -O3
  # (GCC bug 105651); the warning stays on for clang.
  $<$<CXX_COMPILER_ID:GNU>:-Wno-restrict>
  $<$<BOOL:${QSEAL_WERROR}>:-Werror>)

add_library(qseal_options INTERFACE)
add_library(qseal::options ALIAS qseal_options)
target_compile_features(qseal_options INTERFACE cxx_std_20)
if(QSEAL_SANITIZER)
  # GCC's -Wtsan flags the atomic_thread_fence inside Boost.Asio, and instrumented builds give
  # false -Wmaybe-uninitialized reports inside libstdc++ (std::regex); neither is a finding.
  target_compile_options(qseal_options INTERFACE -fsanitize=${QSEAL_SANITIZER} -fno-omit-frame-pointer
                         $<$<CXX_COMPILER_ID:GNU>:-Wno-error=tsan -Wno-error=maybe-uninitialized>)
  target_link_options(qseal_options INTERFACE -fsanitize=${QSEAL_SANITIZER})
  if(QSEAL_SANITIZER MATCHES "undefined")
    # UBSan only prints and carries on by default; abort instead, so a report fails its test even
    # in a child process (the daemon) whose environment lacks UBSAN_OPTIONS=halt_on_error=1.
    target_compile_options(qseal_options INTERFACE -fno-sanitize-recover=undefined)
  endif()
endif()

# qseal_add_component(NAME SOURCES a.cc ... [DEPS x y] [PRIVATE_DEPS z])
# Creates the static library qseal_NAME with alias qseal::NAME. Includes are relative to the
# repository root ("hsm/signer.h").
function(qseal_add_component name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(qseal_${name} STATIC ${ARG_SOURCES})
  add_library(qseal::${name} ALIAS qseal_${name})
  target_include_directories(qseal_${name} PUBLIC ${PROJECT_SOURCE_DIR})
  target_link_libraries(qseal_${name} PUBLIC ${ARG_DEPS} PRIVATE ${ARG_PRIVATE_DEPS}
                        qseal::warnings qseal::options)
endfunction()

# qseal_add_executable(NAME SOURCES a.cc ... DEPS x y)
function(qseal_add_executable name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} qseal::warnings qseal::options)
endfunction()

include(QsealTsanTests)

# qseal_add_test(NAME SOURCES a_test.cc ... DEPS x y LABELS unit|integration|hsm|e2e [TIMEOUT s])
# One GoogleTest binary; every TEST becomes one ctest test carrying the labels.
function(qseal_add_test name)
  cmake_parse_arguments(ARG "" "TIMEOUT" "SOURCES;DEPS;LABELS" ${ARGN})
  if(name IN_LIST QSEAL_TSAN_TESTS)
    list(APPEND ARG_LABELS tsan)
  endif()
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 300)
  endif()
  add_executable(${name} ${ARG_SOURCES})
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gtest GTest::gtest_main GTest::gmock
                        qseal::warnings qseal::options)
  target_compile_definitions(${name} PRIVATE
    QSEAL_SOURCE_DIR="${PROJECT_SOURCE_DIR}" QSEAL_BINARY_DIR="${PROJECT_BINARY_DIR}")
  gtest_discover_tests(${name}
    DISCOVERY_MODE PRE_TEST
    TEST_LIST ${name}_TESTS
    PROPERTIES TIMEOUT ${ARG_TIMEOUT})
  # gtest_discover_tests flattens list-valued properties, so labels are set by a script of ours
  # that ctest runs after the discovered tests are defined.
  set(label_script "${CMAKE_CURRENT_BINARY_DIR}/${name}_labels.cmake")
  file(WRITE "${label_script}"
    "foreach(t IN LISTS ${name}_TESTS)\n"
    "  set_tests_properties(\"\${t}\" PROPERTIES LABELS \"${ARG_LABELS}\")\n"
    "endforeach()\n")
  set_property(DIRECTORY APPEND PROPERTY TEST_INCLUDE_FILES "${label_script}")
endfunction()

# qseal_add_bench(NAME SOURCES a_bench.cc ... DEPS x y)
function(qseal_add_bench name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} benchmark::benchmark
                        qseal::warnings qseal::options)
  target_compile_definitions(${name} PRIVATE
    QSEAL_SOURCE_DIR="${PROJECT_SOURCE_DIR}" QSEAL_BINARY_DIR="${PROJECT_BINARY_DIR}")
endfunction()

# qseal_add_fuzzer(NAME SOURCES a_fuzzer.cc ... DEPS x y [MAX_TOTAL_TIME s (QSEAL_FUZZ_SECONDS)])
# A libFuzzer target (QSEAL_FUZZ=ON only) and a ctest test (labels fuzz, reliability) that runs it
# on its committed seed corpus tests/fuzz/corpus/NAME for MAX_TOTAL_TIME seconds and fails on a
# crash, a leak or a sanitizer report. New inputs go to a scratch copy, never into the repository.
function(qseal_add_fuzzer name)
  cmake_parse_arguments(ARG "" "MAX_TOTAL_TIME" "SOURCES;DEPS" ${ARGN})
  if(NOT ARG_MAX_TOTAL_TIME)
    set(ARG_MAX_TOTAL_TIME ${QSEAL_FUZZ_SECONDS})
  endif()
  add_executable(${name} ${ARG_SOURCES})
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} qseal::warnings qseal::options)
  target_link_options(${name} PRIVATE -fsanitize=fuzzer)
  math(EXPR timeout "${ARG_MAX_TOTAL_TIME} * 4 + 60")
  add_test(NAME ${name}
    COMMAND ${PROJECT_SOURCE_DIR}/tests/fuzz/run-fuzzer $<TARGET_FILE:${name}>
            ${PROJECT_SOURCE_DIR}/tests/fuzz/corpus/${name} ${CMAKE_CURRENT_BINARY_DIR}/${name}.out
            ${ARG_MAX_TOTAL_TIME})
  set_tests_properties(${name} PROPERTIES LABELS "fuzz;reliability" TIMEOUT ${timeout})
endfunction()
