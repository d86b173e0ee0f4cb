# MPI tests: each tests/mpi/test_*.c is one program, run by ctest through
# mpiexec with 2 and/or 4 ranks (label "mpi"). The environment lets
# OpenMPI run as root and oversubscribe this 2-core machine; with 4 ranks
# on 2 cores its blocking waits yield.
set(HS_MPI_ENV OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
  HS_NUM_THREADS=1)

function(hs_mpi_program name)
  add_executable(${name} ${CMAKE_CURRENT_SOURCE_DIR}/mpi/${name}.c)
  target_compile_options(${name} PRIVATE ${HS_WARN} -O2 ${HS_SAN_FLAGS})
  target_link_options(${name} PRIVATE ${HS_SAN_FLAGS})
  target_link_libraries(${name} PRIVATE hyperspeed MPI::MPI_C ${M_LIB})
endfunction()

# hs_mpi_test(<test name> <program> <ranks> [args...])
function(hs_mpi_test tname prog np)
  add_test(NAME ${tname}
    COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} ${np} ${MPIEXEC_PREFLAGS} $<TARGET_FILE:${prog}>
            ${MPIEXEC_POSTFLAGS} ${ARGN})
  set(env ${HS_MPI_ENV})
  if(np GREATER 2)
    list(APPEND env OMPI_MCA_mpi_yield_when_idle=1)
  endif()
  set_tests_properties(${tname} PROPERTIES LABELS mpi TIMEOUT 120 RUN_SERIAL TRUE ENVIRONMENT "${env}")
endfunction()

foreach(prog test_collectives test_grid test_bad_grid watchdog_skip test_engine)
  hs_mpi_program(${prog})
endforeach()
# The sequence-parallel collectives are private (src/parallel/tp_comm.h):
# their test links the static archive instead of the shared library.
add_executable(test_sp_comm ${CMAKE_CURRENT_SOURCE_DIR}/mpi/test_sp_comm.c)
target_compile_options(test_sp_comm PRIVATE ${HS_WARN} -O2 ${HS_SAN_FLAGS})
target_link_options(test_sp_comm PRIVATE ${HS_SAN_FLAGS})
target_include_directories(test_sp_comm PRIVATE ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(test_sp_comm PRIVATE hyperspeed_static ${OPENBLAS_LINK_LIBRARIES} OpenMP::OpenMP_C MPI::MPI_C
  ${M_LIB})

hs_mpi_test(mpi_collectives_np1 test_collectives 1)
hs_mpi_test(mpi_collectives_np2 test_collectives 2)
hs_mpi_test(mpi_collectives_np3 test_collectives 3)
hs_mpi_test(mpi_collectives_np4 test_collectives 4 --tp 2)
hs_mpi_test(mpi_grid_np4 test_grid 4)
hs_mpi_test(mpi_sp_comm_np2 test_sp_comm 2)
hs_mpi_test(mpi_sp_comm_np4 test_sp_comm 4)
hs_mpi_test(mpi_engine_np2 test_engine 2 --tp 2)
hs_mpi_test(mpi_engine_pp2_dp2 test_engine 4 --pp 2)
hs_mpi_test(mpi_engine_dp2_zero1 test_engine 2 --zero 1)
# GPT-2's head on the last stage is tied to wte on the first: ZeRO-1 shards wte alike on both ends
hs_mpi_test(mpi_engine_pp2_dp2_zero1 test_engine 4 --pp 2 --zero 1)
hs_mpi_test(mpi_engine_tp2_dp2_zero1 test_engine 4 --tp 2 --zero 1)
hs_mpi_test(mpi_bad_grid_np4 test_bad_grid 4)

# The watchdog ends the job: a script checks the exit status, the time and
# the report.
add_test(NAME mpi_watchdog_np4
  COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/mpi/watchdog.sh ${MPIEXEC_EXECUTABLE} $<TARGET_FILE:watchdog_skip>)
set_tests_properties(mpi_watchdog_np4 PROPERTIES LABELS mpi TIMEOUT 60 RUN_SERIAL TRUE
  ENVIRONMENT "${HS_MPI_ENV};OMPI_MCA_mpi_yield_when_idle=1")
