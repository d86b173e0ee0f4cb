#!/usr/bin/env bash
# The OpenBLAS core check through the trainer (BUILD SHIM MPIEXEC):
#  - a user's OPENBLAS_CORETYPE=Prescott is kept (no restart) and the
#    library warns once, naming the core to set;
#  - without the variable, no restart where OpenBLAS's own pick is already
#    at the CPU's level (this project's machines), and no warning;
#  - the restart itself: SHIM (blas_core_shim.c, LD_PRELOAD) makes OpenBLAS
#    report "Prescott" while OPENBLAS_CORETYPE is unset, so the trainer
#    restarts with the best core, alone and as two ranks under MPIEXEC
#    (the restart comes before MPI_Init and keeps the process), and
#    HS_BLAS_CORE_REEXEC=0 turns the restart off (then the warning says why).
set -uo pipefail
build=$1 shim=$2 mpiexec=${3:-}
tg="$build/examples/train_gpt"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export HS_CACHE_DIR="$tmp/cache" HS_LOG_LEVEL=info
# A sanitizer build's runtime must come first; the shim is only a symbol.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
unset OPENBLAS_CORETYPE HS_BLAS_CORE_REEXEC
small=(--layers 1 --d-model 32 --d-ff 64 --batch 2 --seq 16 --val-batches 1 --sample 0 --steps 1)
failed=0 passed=0

fail() {
  echo "FAIL: $*" >&2
  failed=1
}
ok() { passed=$((passed + 1)); }

# run NAME ENV... --: one small train_gpt step with the environment, stdout
# to $tmp/NAME.out, stderr to $tmp/NAME.err; fails the test on a non-zero exit
run() {
  local name=$1
  shift
  local envs=()
  while [ "$1" != "--" ]; do
    envs+=("$1")
    shift
  done
  env "${envs[@]}" "$tg" "${small[@]}" >"$tmp/$name.out" 2>"$tmp/$name.err" ||
    { fail "$name: exit $?: $(cat "$tmp/$name.err")"; return 1; }
}

# core NAME: the OpenBLAS core in the banner of run NAME
core() { grep -o '(OpenBLAS [A-Za-z0-9_]*)' "$tmp/$1.out" | head -n 1 | sed 's/(OpenBLAS \(.*\))/\1/'; }
count() { grep -cF -- "$1" "$tmp/$2.err"; }

# The CPU's level and the class of a core name, as the library sees them.
flags=$(grep -m1 '^flags' /proc/cpuinfo)
cpu=baseline
grep -qw avx2 <<<"$flags" && cpu=avx2
grep -qw avx512f <<<"$flags" && grep -qw avx512vl <<<"$flags" && cpu=avx512
level() {
  case "$1" in
    SkylakeX | Cooperlake | SapphireRapids) echo avx512 ;;
    Haswell | Zen) echo avx2 ;;
    *) echo other ;;
  esac
}

# 1. The user's choice is kept, and warned about once.
if run user OPENBLAS_CORETYPE=Prescott --; then
  [ "$(core user)" = Prescott ] || fail "user: banner core '$(core user)', want Prescott"
  [ "$(count "restarting with" user)" -eq 0 ] || fail "user: restarted despite OPENBLAS_CORETYPE: $(cat "$tmp/user.err")"
  if [ $cpu != baseline ]; then
    n=$(count "[hs WARN] OPENBLAS_CORETYPE=Prescott in the environment" user)
    [ "$n" -eq 1 ] || fail "user: $n warnings about OPENBLAS_CORETYPE=Prescott, want 1: $(cat "$tmp/user.err")"
    grep -q "set OPENBLAS_CORETYPE=\(Cooperlake\|SkylakeX\|Haswell\|Zen\)" "$tmp/user.err" ||
      fail "user: the warning names no core to set: $(cat "$tmp/user.err")"
  fi
  ok
fi

# 2. Without the variable: OpenBLAS's own pick (restart off), then the
#    default run, which restarts only when that pick is below the CPU.
if run auto HS_BLAS_CORE_REEXEC=0 -- && run default --; then
  auto=$(core auto) got=$(core default)
  if [ $cpu = baseline ] || [ "$(level "$auto")" = $cpu ]; then
    [ "$(count "restarting with" default)" -eq 0 ] || fail "default: restarted from $auto on an $cpu CPU"
    [ "$got" = "$auto" ] || fail "default: core $got, OpenBLAS's own pick $auto"
    [ "$(count "[hs WARN] OpenBLAS" default)" -eq 0 ] || fail "default: warned: $(cat "$tmp/default.err")"
    echo "blas_core: OpenBLAS picks $auto on this $cpu CPU: no restart"
  else
    [ "$(count "restarting with" default)" -eq 1 ] || fail "default: OpenBLAS picked $auto on an $cpu CPU, no restart"
    [ "$(level "$got")" = $cpu ] || fail "default: restarted, still runs $got"
    echo "blas_core: OpenBLAS picks $auto on this $cpu CPU: restarted with $got"
  fi
  ok
fi

# 3. The restart, made to happen with the shim (a CPU without AVX2 has no
#    better core: nothing to restart for).
if [ $cpu != baseline ]; then
  if run shim LD_PRELOAD="$shim" --; then
    [ "$(count "OpenBLAS picked its Prescott kernels (sse) on this CPU; restarting with OPENBLAS_CORETYPE=" shim)" -eq 1 ] ||
      fail "shim: no restart: $(cat "$tmp/shim.err")"
    [ "$(level "$(core shim)")" = "$cpu" ] || fail "shim: runs $(core shim) after the restart on an $cpu CPU"
    [ "$(count "[hs WARN]" shim)" -eq 0 ] || fail "shim: warned after the restart: $(cat "$tmp/shim.err")"
    grep -q "final validation loss" "$tmp/shim.out" || fail "shim: no final validation loss: $(cat "$tmp/shim.out")"
    ok
  fi
  if run optout LD_PRELOAD="$shim" HS_BLAS_CORE_REEXEC=0 --; then
    [ "$(core optout)" = Prescott ] || fail "optout: core $(core optout), want the shim's Prescott"
    [ "$(count "restarting with" optout)" -eq 0 ] || fail "optout: restarted"
    [ "$(count "[hs WARN] OpenBLAS picked its Prescott kernels (sse)" optout)" -eq 1 ] ||
      fail "optout: no single warning: $(cat "$tmp/optout.err")"
    ok
  fi
fi

# 4. Two ranks under mpiexec: plain, and with the restart in every rank.
if [ -n "$mpiexec" ]; then
  dp=(--dp 2 --steps 2 --layers 1 --d-model 32 --d-ff 64 --batch 4 --seq 16 --val-batches 1 --sample 0)
  if "$mpiexec" -n 2 "$tg" "${dp[@]}" >"$tmp/mpi.out" 2>"$tmp/mpi.err"; then
    grep -q "data parallel: 2 ranks" "$tmp/mpi.out" || fail "mpi: no DP banner: $(cat "$tmp/mpi.out")"
    grep -q "final validation loss" "$tmp/mpi.out" || fail "mpi: no final validation loss"
    ok
  else
    fail "mpi: exit $?: $(cat "$tmp/mpi.err")"
  fi
  if [ $cpu != baseline ]; then
    if "$mpiexec" -n 2 env LD_PRELOAD="$shim" "$tg" "${dp[@]}" >"$tmp/mpishim.out" 2>"$tmp/mpishim.err"; then
      n=$(count "restarting with OPENBLAS_CORETYPE=" mpishim)
      [ "$n" -eq 2 ] || fail "mpishim: $n restarts, want one per rank: $(cat "$tmp/mpishim.err")"
      [ "$(level "$(core mpishim)")" = "$cpu" ] || fail "mpishim: runs $(core mpishim) on an $cpu CPU"
      grep -q "data parallel: 2 ranks" "$tmp/mpishim.out" || fail "mpishim: no DP banner: $(cat "$tmp/mpishim.out")"
      grep -q "final validation loss" "$tmp/mpishim.out" || fail "mpishim: no final validation loss"
      ok
    else
      fail "mpishim: exit $?: $(cat "$tmp/mpishim.err")"
    fi
  fi
fi

echo "blas_core: $passed checks passed"
exit $failed
