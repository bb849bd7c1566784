# nasforge_cc_library(NAME SRCS DEPS): one small target per concern (after absl_cc_library).
function(nasforge_cc_library)
  cmake_parse_arguments(A "" "NAME" "SRCS;DEPS" ${ARGN})
  add_library(${A_NAME} STATIC ${A_SRCS})
  target_include_directories(${A_NAME} PUBLIC ${PROJECT_SOURCE_DIR})
  target_link_libraries(${A_NAME} PUBLIC ${A_DEPS})
endfunction()

# nasforge_cc_test(NAME SRCS DEPS LABELS): a GoogleTest binary registered with CTest.
function(nasforge_cc_test)
  cmake_parse_arguments(A "" "NAME" "SRCS;DEPS;LABELS;WRAPPER" ${ARGN})
  add_executable(${A_NAME} ${A_SRCS})
  target_link_libraries(${A_NAME} PRIVATE ${A_DEPS} GTest::gtest GTest::gmock GTest::gtest_main)
  add_test(NAME ${A_NAME} COMMAND ${A_WRAPPER} $<TARGET_FILE:${A_NAME}>)
  if(A_LABELS)
    set_tests_properties(${A_NAME} PROPERTIES LABELS "${A_LABELS}")
  endif()
endfunction()
