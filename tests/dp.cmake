# Data parallelism under mpiexec (label "mpi"): the reducer on 2 and 3
# ranks (tests/mpi/test_dp.c), and the trainer: `mpirun -n 2 train_gpt
# --dp 2` against the single-rank run with the same global batch on the
# CPU and the simulated NPU, gradient accumulation, checkpoints, the NPU's
# comm stream in the trace, and bad configurations failing on every rank
# (tests/integration/dp_*.sh). Uses mpi.cmake's functions and environment.
hs_mpi_program(test_dp)
hs_mpi_test(mpi_dp_np2 test_dp 2)
hs_mpi_test(mpi_dp_np3 test_dp 3)

foreach(t dp_parity dp_train dp_errors)
  add_test(NAME ${t}
    COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/integration/${t}.sh ${CMAKE_BINARY_DIR} ${MPIEXEC_EXECUTABLE})
  set_tests_properties(${t} PROPERTIES LABELS mpi TIMEOUT 120 RUN_SERIAL TRUE ENVIRONMENT "${HS_MPI_ENV}")
endforeach()

# Tensor, sequence and pipeline parallelism through train_gpt (hs_engine):
# parity of every layout with one rank, bad layouts, the banner, bubbles
# and traces (tests/integration/layouts_*.sh).
foreach(t layouts_parity layouts_errors layouts_train)
  add_test(NAME ${t}
    COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/integration/${t}.sh ${CMAKE_BINARY_DIR} ${MPIEXEC_EXECUTABLE})
  set_tests_properties(${t} PROPERTIES LABELS mpi TIMEOUT 300 RUN_SERIAL TRUE ENVIRONMENT "${HS_MPI_ENV}")
endforeach()
