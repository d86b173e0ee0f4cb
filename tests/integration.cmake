# Tests that run whole programs: the trainer's behaviour on good and bad
# input, checkpoint resume, precision against PyTorch, and the installed
# tree used from an outside project.
hs_program(parity_dump ${CMAKE_CURRENT_SOURCE_DIR}/python/parity_dump.c)

add_test(NAME torch_parity
  COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/python/test_torch_parity.py $<TARGET_FILE:parity_dump>)
set_tests_properties(torch_parity PROPERTIES LABELS python TIMEOUT 600 ENVIRONMENT "HS_NUM_THREADS=2")

foreach(t resume trainer_errors install train_npu)
  add_test(NAME ${t}
    COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/integration/${t}.sh ${CMAKE_BINARY_DIR} ${CMAKE_SOURCE_DIR})
  set_tests_properties(${t} PROPERTIES LABELS integration TIMEOUT 600 ENVIRONMENT "HS_NUM_THREADS=2")
endforeach()
