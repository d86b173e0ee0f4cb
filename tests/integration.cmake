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

# The OpenBLAS core check through whole programs (tests/integration/
# blas_core.sh): a user's OPENBLAS_CORETYPE is kept and warned about once,
# no restart where OpenBLAS picked the right core, and the restart itself
# (one rank and two under mpiexec) with a shim that makes OpenBLAS's pick
# look weak.
add_library(blas_core_shim MODULE ${CMAKE_CURRENT_SOURCE_DIR}/integration/blas_core_shim.c)
target_compile_options(blas_core_shim PRIVATE ${HS_WARN} -O2)
target_link_libraries(blas_core_shim PRIVATE ${CMAKE_DL_LIBS})
add_test(NAME blas_core
  COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/integration/blas_core.sh ${CMAKE_BINARY_DIR} $<TARGET_FILE:blas_core_shim>
          ${MPIEXEC_EXECUTABLE})
set_tests_properties(blas_core PROPERTIES LABELS integration TIMEOUT 300 RUN_SERIAL TRUE
  ENVIRONMENT "HS_NUM_THREADS=1;OMPI_ALLOW_RUN_AS_ROOT=1;OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1;OMPI_MCA_rmaps_base_oversubscribe=1;OMPI_MCA_mpi_yield_when_idle=1")
