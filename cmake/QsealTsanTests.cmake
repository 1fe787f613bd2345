# Test binaries that scripts/test-sanitizers also runs under ThreadSanitizer: qseal_add_test gives
# them the extra label "tsan". The engine is exercised through the daemon by sealing_e2e_test.
# `cmake -P cmake/QsealTsanTests.cmake` prints the list (the script builds only these).
set(QSEAL_TSAN_TESTS sanitizer_tier_test queue_unit_test queue_integration_test hsm_unit_test
    signer_test recovery_test sealing_e2e_test)
if(CMAKE_SCRIPT_MODE_FILE STREQUAL CMAKE_CURRENT_LIST_FILE)
  string(REPLACE ";" " " list "${QSEAL_TSAN_TESTS}")
  execute_process(COMMAND ${CMAKE_COMMAND} -E echo "${list}")
endif()
