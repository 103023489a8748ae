#!/usr/bin/env bash
# Tests of the char_rnn binary, one scenario per ctest test:
#   cli_test.sh CHAR_RNN WORKDIR SCENARIO
# learns     a short run on a small text brings the validation loss far below the unigram
#            entropy the binary reports
# sample     sampling is deterministic for a seed and streams exactly --length characters
# resume     a run resumed from a mid-run checkpoint writes the same final model, byte for byte
# pytorch    the checkpoint loads into PyTorch with strict=True and gives the same greedy
#            text (skipped, exit 77, without python3-torch)
# interrupt  Ctrl-C saves a loadable checkpoint and exits with 130
# bad_input  every bad input gives one error line on stderr and a non-zero exit, no crash/hang
# hardening  hostile and careless use: numbers that overflow, a model too big for the machine,
#            stdout on a full device, an unwritable or busy checkpoint folder, a mixed or broken
#            model/state pair, --weights-only
# killed     kill -9 at random moments of a run that saves at every iteration: every model
#            file left is paired with its own training state, and the next run clears the rest
# full_file  a save that fails (the file-size limit) ends the run with one error line, and
#            every pair left is whole
# threads    --threads 1 trains on one thread (the process never has a second one), and
#            --threads 2 on two (the control: the check can see threads)
# mpi_equal  (with MPI; $MPIEXEC) 2 ranks x batch 4 train as 1 process x batch 8: the same
#            validation losses and checkpoint names (4 decimals), the same greedy text; one
#            report (rank 0's)
# mpi_resume a 2-rank run resumed from its mid-run checkpoint under 2 ranks ends with the same
#            weights byte for byte; resumed on 1 process, with the same losses
# mpi_fail   a rank killed with SIGKILL, or failing (a save past the file-size limit), ends
#            the whole job with a non-zero exit within 60 s; a batch that does not divide among
#            the ranks is one error line
set -uo pipefail
bin="$1"; work="$2"; scenario="$3"
here="$(cd "$(dirname "$0")" && pwd)"
rm -rf "$work"; mkdir -p "$work"; cd "$work"

source "$here/../common/cli_test_lib.sh"  # fail, expect_error
# The training-state file a model file names (its header's "recur.training_state").
state_of() {
  local n; n=$(od -An -tu8 -N8 "$1" | tr -d ' ')
  head -c $((n + 8)) "$1" | tail -c "$n" | LC_ALL=C sed -n 's/.*"recur.training_state":"\([^"]*\)".*/\1/p'
}
# The data section of a safetensors file (its tensors' bytes, without the header).
data_of() { local n; n=$(od -An -tu8 -N8 "$1" | tr -d ' '); tail -c +$((n + 9)) "$1"; }

# A small text with structure to learn: a rhyme repeated with variations.
make_text() {
  for i in $(seq 1 60); do
    echo "the cat sat on the mat $((i % 7)) times."
    echo "a dog ran in the fog, $((i % 5)) dogs ran."
  done > small.txt
}
small=(--data small.txt --rnn-size 32 --num-layers 1 --embedding-size 16 --batch-size 8 --seq-length 20 --quiet --sample-length 0)

case "$scenario" in
threads)
  make_text
  peak() {  # the most threads `train --threads $1` has at once, sampled every 20 ms
    "$bin" train "${small[@]}" --rnn-size 128 --batch-size 16 --max-epochs 1000 --max-seconds 3 \
      --eval-every 1000000 --checkpoint-dir "t$1" --threads "$1" >/dev/null &
    local pid=$! max=0 n
    while kill -0 "$pid" 2>/dev/null; do
      n=$(awk '/^Threads:/ {print $2}' "/proc/$pid/status" 2>/dev/null)
      if [ -n "$n" ] && [ "$n" -gt "$max" ]; then max=$n; fi
      sleep 0.02
    done
    wait "$pid" || { echo "train --threads $1 failed" >&2; echo -1; return; }
    echo "$max"
  }
  one=$(peak 1)
  [ "$one" -eq 1 ] || fail "--threads 1 ran on $one threads at once"
  if [ "$(nproc)" -ge 2 ]; then
    two=$(peak 2)
    [ "$two" -ge 2 ] || fail "--threads 2 ran on $two threads (the check does not see threads)"
  fi
  echo "threads: --threads 1 -> $one, --threads 2 -> ${two:-skipped}"
  ;;
learns)
  make_text
  out=$(timeout 300 "$bin" train "${small[@]}" --max-iters 250 --eval-every 250 --learning-rate 0.01 --val-frac 0.1) || fail "train failed: $out"
  echo "$out"
  unigram=$(echo "$out" | sed -n 's/.*unigram entropy \([0-9.]*\) nats.*/\1/p')
  val=$(echo "$out" | sed -n 's/.*validation loss \([0-9.]*\) nats.*/\1/p' | tail -1)
  [ -n "$unigram" ] && [ -n "$val" ] || fail "no losses in the output"
  awk -v v="$val" -v u="$unigram" 'BEGIN { exit !(v < 0.4 * u) }' || fail "validation loss $val is not below 0.4 x unigram entropy $unigram"
  [ -s cv/log.csv ] && [ -s cv/loss.svg ] && [ -s cv/best.safetensors ] || fail "missing log.csv, loss.svg or best.safetensors"
  grep -q '<polyline' cv/loss.svg || fail "loss.svg has no curve"
  ;;
sample)
  make_text
  timeout 300 "$bin" train "${small[@]}" --max-iters 40 --eval-every 40 >/dev/null || fail "train failed"
  a=$(timeout 60 "$bin" sample --checkpoint cv/best.safetensors --length 300 --seed 5 --prime "the ") || fail "sample failed"
  b=$(timeout 60 "$bin" sample --checkpoint cv/best.safetensors --length 300 --seed 5 --prime "the ")
  c=$(timeout 60 "$bin" sample --checkpoint cv/best.safetensors --length 300 --seed 6 --prime "the ")
  [ "$a" == "$b" ] || fail "same seed, different samples"
  [ "$a" != "$c" ] || fail "different seeds, same sample"
  [ "${a:0:4}" == "the " ] || fail "the sample does not start with the prime"
  timeout 60 "$bin" sample --checkpoint cv/best.safetensors --length 300 --seed 5 --prime "the " > s.txt
  n=$(wc -m < s.txt)
  [ "$n" -eq 305 ] || fail "expected 4 + 300 characters and a newline, got $n"
  d=$(timeout 60 "$bin" sample --checkpoint cv/best.safetensors --length 50 --argmax --seed 1)
  e=$(timeout 60 "$bin" sample --checkpoint cv/best.safetensors --length 50 --argmax --seed 2)
  [ "$d" == "$e" ] || fail "--argmax depends on the seed"
  timeout 60 "$bin" sample --checkpoint cv/best.safetensors --length 50 --top-k 3 --temperature 0.5 >/dev/null || fail "top-k sampling failed"
  ;;
resume)
  make_text
  args=("${small[@]}" --dropout 0.2 --num-layers 2 --max-iters 40 --eval-every 20)
  timeout 300 "$bin" train "${args[@]}" --checkpoint-dir a >/dev/null || fail "first run failed"
  mid=$(ls a/lm_*_epoch*.safetensors | grep -v optim | sort | head -1)
  final=$(ls a/lm_*_epoch*.safetensors | grep -v optim | sort | tail -1)
  [ "$mid" != "$final" ] || fail "expected two checkpoints"
  mkdir b && cp "$mid" "${mid%.safetensors}".s*.optim.safetensors b/
  timeout 300 "$bin" train "${args[@]}" --checkpoint-dir b --init-from "b/$(basename "$mid")" > resumed.txt || fail "resumed run failed"
  grep -q "resuming" resumed.txt || fail "did not resume"
  # The same tensors, byte for byte (the headers differ: each save has its own stamp).
  cmp <(data_of "$final") <(data_of "b/$(basename "$final")") || fail "the resumed run ended with different weights"
  ;;
pytorch)
  # The checkpoint loads into PyTorch (strict=True) and gives the same greedy text.
  [ -x /usr/bin/python3 ] && /usr/bin/python3 -c "import torch" 2>/dev/null || { echo "no python3-torch: skipped"; exit 77; }
  make_text
  timeout 300 "$bin" train "${small[@]}" --max-iters 60 --eval-every 60 >/dev/null || fail "train failed"
  ours=$(timeout 60 "$bin" sample --checkpoint cv/best.safetensors --prime "the cat" --length 60 --argmax) || fail "sample failed"
  theirs=$(/usr/bin/python3 "$here/load_in_pytorch.py" cv/best.safetensors "the cat" 60 2>/dev/null) || fail "PyTorch could not load the checkpoint"
  [ "$ours" == "$theirs" ] || fail "PyTorch's greedy text differs: '$theirs' vs ours '$ours'"
  ;;
interrupt)
  make_text
  "$bin" train "${small[@]}" --max-epochs 100000000 --eval-every 100000000 > out.txt 2>&1 &
  pid=$!
  for i in $(seq 1 100); do grep -q "^training:" out.txt 2>/dev/null && break; sleep 0.1; done
  sleep 1
  kill -INT $pid
  wait $pid; code=$?
  [ $code -eq 130 ] || fail "exit code $code after Ctrl-C (expected 130): $(cat out.txt)"
  grep -q "interrupted: saved" out.txt || fail "no checkpoint message: $(cat out.txt)"
  ls cv/lm_lstm_epoch*.safetensors >/dev/null || fail "no checkpoint written"
  "$bin" sample --checkpoint cv/best.safetensors --length 20 >/dev/null || fail "the checkpoint does not load"
  ;;
bad_input)
  make_text
  timeout 300 "$bin" train "${small[@]}" --max-iters 5 --eval-every 5 >/dev/null || fail "train failed"
  printf '' > empty.txt
  printf 'abc' > short.txt
  printf 'ab\xffcd%.0s' $(seq 1 300) > latin1.txt
  head -c 100 cv/best.safetensors > truncated.safetensors
  cp cv/best.safetensors copy.safetensors
  expect_error "cannot open" "$bin" train --data missing.txt
  expect_error "the file is empty" "$bin" train --data empty.txt
  expect_error "is a directory" "$bin" train --data cv
  expect_error "fewer than one batch needs" "$bin" train --data short.txt
  expect_error "not valid UTF-8" "$bin" train --data latin1.txt
  expect_error "unknown flag --bogus" "$bin" train --bogus 1
  expect_error "--rnn-size: 'abc' is not a whole number" "$bin" train --rnn-size abc
  expect_error "--dropout must be in [0, 1)" "$bin" train --dropout 2
  expect_error "--model: 'transformer'" "$bin" train --model transformer
  expect_error "--optimizer: 'lbfgs'" "$bin" train --optimizer lbfgs
  expect_error "--learning-rate needs a value" "$bin" train --learning-rate
  expect_error "unknown command" "$bin" fly
  expect_error "which --model contradicts" "$bin" train "${small[@]}" --init-from cv/best.safetensors --model gru
  expect_error "header length" "$bin" train "${small[@]}" --init-from truncated.safetensors
  expect_error "header length" "$bin" sample --checkpoint truncated.safetensors
  expect_error "cannot open" "$bin" sample --checkpoint missing.safetensors
  expect_error "--checkpoint is required" "$bin" sample
  expect_error "is not in the model's vocabulary" "$bin" sample --checkpoint cv/best.safetensors --prime "QZX@"
  expect_error "--temperature must be positive" "$bin" sample --checkpoint cv/best.safetensors --temperature 0
  expect_error "--length must be >= 0" "$bin" sample --checkpoint cv/best.safetensors --length -3
  { cat small.txt; echo "#Zebra#"; } > other.txt
  expect_error "character '#' is not in the vocabulary of" "$bin" train "${small[@]}" --data other.txt --init-from cv/best.safetensors
  # A model file that is valid safetensors but not a char_rnn model (an optimizer file).
  state=$(ls cv/best.s*.optim.safetensors | head -1)
  expect_error "not a char_rnn checkpoint" "$bin" sample --checkpoint "$state"
  "$bin" train --help | grep -q -- "--rnn-size" || fail "train --help"
  "$bin" sample --help | grep -q -- "--temperature" || fail "sample --help"
  ;;
hardening)
  make_text
  timeout 300 "$bin" train "${small[@]}" --max-iters 6 --eval-every 3 >/dev/null || fail "train failed"
  big=9223372036854775807
  expect_error "--seq-length must be in [1, 1048576]" "$bin" train "${small[@]}" --seq-length $big
  expect_error "--batch-size must be in [1, 1048576]" "$bin" train "${small[@]}" --batch-size $big
  expect_error "--max-epochs must be in [1, 1000000000]" "$bin" train "${small[@]}" --max-epochs $big
  expect_error "--seq-length: '99999999999999999999' is not a whole number" "$bin" train --seq-length 99999999999999999999
  expect_error "this model needs at least" "$bin" train "${small[@]}" --rnn-size 65536
  expect_error "is a directory" "$bin" sample --checkpoint cv
  expect_error "the checkpoint folder is not writable" "$bin" train "${small[@]}" --checkpoint-dir /proc/self
  expect_error "cannot create the checkpoint folder" "$bin" train "${small[@]}" --checkpoint-dir /proc/self/x
  # stdout on a full device: the error, exit 1 (it was exit 0).
  err=$(timeout 60 "$bin" sample --checkpoint cv/best.safetensors --length 10000 2>&1 >/dev/full); code=$?
  [ $code -eq 1 ] && [[ "$err" == *"cannot write to standard output"* ]] || fail "sample > /dev/full: exit $code: $err"
  err=$(timeout 60 "$bin" check cv 2>&1 >/dev/full); code=$?
  [ $code -eq 1 ] || fail "check > /dev/full: exit $code: $err"
  # A second run into a folder a run is writing to.
  "$bin" train "${small[@]}" --max-epochs 100000 --eval-every 100000 --checkpoint-dir busy >/dev/null 2>&1 &
  pid=$!
  for i in $(seq 1 100); do [ -e busy/.char_rnn.lock ] && break; sleep 0.05; done
  expect_error "another char_rnn train is writing checkpoints into this folder" "$bin" train "${small[@]}" --checkpoint-dir busy
  kill -INT $pid; wait $pid
  # Pairs: a state from another save, a missing state, and --weights-only.
  "$bin" check cv > check.txt || fail "check of a good folder failed: $(cat check.txt)"
  grep -q "^ok cv/best.safetensors (training state at iteration" check.txt || fail "check: $(cat check.txt)"
  mid=$(ls cv/lm_*_epoch*.safetensors | grep -v optim | sort | head -1)
  mkdir mixed && cp cv/best.safetensors mixed/ && cp "${mid%.safetensors}".s*.optim.safetensors "mixed/$(state_of cv/best.safetensors)"
  expect_error "are from different saves" "$bin" train "${small[@]}" --init-from mixed/best.safetensors --checkpoint-dir m2
  "$bin" check mixed > /dev/null && fail "check passed a mixed pair"
  mkdir lone && cp cv/best.safetensors lone/
  expect_error "is missing" "$bin" train "${small[@]}" --init-from lone/best.safetensors --checkpoint-dir m3
  out=$(timeout 300 "$bin" train "${small[@]}" --init-from lone/best.safetensors --weights-only --max-iters 2 \
        --checkpoint-dir m4) || fail "--weights-only failed: $out"
  [[ "$out" == *"--weights-only: fresh optimizer, iteration 0"* ]] || fail "--weights-only: $out"
  expect_error "--weights-only needs --init-from" "$bin" train "${small[@]}" --weights-only
  ;;
killed)
  # kill -9 at random moments of runs that save at every iteration (model file, best.*, state
  # files, log): whatever survives must be whole pairs; the next run clears the leftovers.
  make_text
  RANDOM=7
  for round in $(seq 1 12); do
    "$bin" train "${small[@]}" --max-iters 100000 --eval-every 1 --checkpoint-dir cv >/dev/null 2>&1 &
    pid=$!
    sleep "0.$((RANDOM % 9 + 1))$((RANDOM % 10))"
    kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
    ls cv/*.safetensors >/dev/null 2>&1 || continue
    "$bin" check cv > check.txt || fail "round $round: a model file without its own state: $(grep FAILED check.txt)"
  done
  n=$(grep -c '^ok' check.txt)
  [ "$n" -ge 3 ] || fail "only $n checkpoints survived: the kills came too early to test anything"
  "$bin" train "${small[@]}" --max-iters 1 --eval-every 1 --checkpoint-dir cv >/dev/null || fail "the run after the kills failed"
  leftovers=$(ls -a cv | grep -c '\.tmp\.' || true)
  [ "$leftovers" -eq 0 ] || fail "temporary files left: $(ls -a cv)"
  models=$(ls cv | grep -c -v -e '\.optim\.safetensors$' -e '\.csv$' -e '\.svg$')
  states=$(ls cv | grep -c '\.optim\.safetensors$')
  [ "$models" -eq "$states" ] || fail "$models model files but $states state files: $(ls cv)"
  "$bin" check cv >/dev/null || fail "check after the cleanup"
  echo "killed: $n pairs checked, all whole"
  ;;
full_file)
  # Saves that cannot complete (the state file exceeds the file-size limit; SIGXFSZ ignored,
  # so write() fails with EFBIG as on a full disk): one error line naming the file, exit 1,
  # no temporary file, and every pair left whole.
  make_text
  timeout 300 "$bin" train "${small[@]}" --max-iters 2 --eval-every 1 --checkpoint-dir cv >/dev/null || fail "train failed"
  model_kb=$(( ($(stat -c %s cv/best.safetensors) + 1023) / 1024 ))
  err=$( (trap '' XFSZ; ulimit -f $((model_kb + 2)); exec timeout 300 "$bin" train "${small[@]}" --init-from cv/best.safetensors \
          --max-iters 4 --eval-every 1 --checkpoint-dir cv) 2>&1 >/dev/null); code=$?
  [ $code -eq 1 ] || fail "exit $code when saves fail: $err"
  [ "$(printf '%s\n' "$err" | grep -c .)" -eq 1 ] || fail "not one error line: $err"
  [[ "$err" == *"optim.safetensors: write failed: File too large"* ]] || fail "unexpected error: $err"
  [ "$(ls -a cv | grep -c '\.tmp\.')" -eq 0 ] || fail "temporary files left: $(ls -a cv)"
  "$bin" check cv >/dev/null || fail "a pair is broken after the failed save"
  echo "full_file: $err"
  ;;
mpi_equal)
  make_text
  args=("${small[@]}" --num-layers 2 --max-iters 30 --eval-every 15 --threads 1)
  timeout 300 "$bin" train "${args[@]}" --checkpoint-dir one > one.txt || fail "1 process failed"
  timeout 300 "$MPIEXEC" -n 2 "$bin" train "${args[@]}" --checkpoint-dir two > two.txt || fail "2 ranks failed"
  cat two.txt
  grep -q "2 MPI ranks of 4 streams" two.txt || fail "did not run on 2 ranks"
  [ "$(grep -c '^model:' two.txt)" -eq 1 ] || fail "more than one rank reported"
  diff <(grep "validation loss" one.txt) <(grep "validation loss" two.txt) || fail "validation losses differ"
  diff <(cd one && ls lm_* | grep -v optim) <(cd two && ls lm_* | grep -v optim) ||
    fail "checkpoints differ (names hold epoch and loss)"
  final=$(cd one && ls lm_*_epoch*.safetensors | grep -v optim | sort | tail -1)
  "$bin" sample --checkpoint "one/$final" --argmax --length 300 > s1.txt || fail "sample 1"
  "$bin" sample --checkpoint "two/$final" --argmax --length 300 > s2.txt || fail "sample 2"
  cmp s1.txt s2.txt || fail "the greedy texts differ"
  ;;
mpi_resume)
  make_text
  args=("${small[@]}" --num-layers 2 --max-iters 40 --eval-every 20 --threads 1)
  timeout 300 "$MPIEXEC" -n 2 "$bin" train "${args[@]}" --checkpoint-dir a > a.txt || fail "first run failed"
  mid=$(ls a/lm_*_epoch*.safetensors | grep -v optim | sort | head -1)
  final=$(ls a/lm_*_epoch*.safetensors | grep -v optim | sort | tail -1)
  [ "$mid" != "$final" ] || fail "expected two checkpoints"
  for d in b c; do mkdir $d && cp "$mid" "${mid%.safetensors}".s*.optim.safetensors $d/; done
  timeout 300 "$MPIEXEC" -n 2 "$bin" train "${args[@]}" --checkpoint-dir b --init-from "b/$(basename "$mid")" > b.txt ||
    fail "resumed run failed"
  grep -q "resuming" b.txt || fail "did not resume"
  cmp <(data_of "$final") <(data_of "b/$(basename "$final")") || fail "the resumed 2-rank run ended with different weights"
  timeout 300 "$bin" train "${args[@]}" --checkpoint-dir c --init-from "c/$(basename "$mid")" > c.txt ||
    fail "resumed on 1 process failed"
  [ -f "c/$(basename "$final")" ] || fail "resumed on 1 process: not the same final loss ($(ls c))"
  ;;
mpi_fail)
  make_text
  args=("${small[@]}" --rnn-size 64 --max-epochs 100000 --eval-every 50)
  # A rank killed: the job ends, non-zero, within 60 s.
  timeout 120 "$MPIEXEC" -n 2 "$bin" train "${args[@]}" --max-seconds 300 --checkpoint-dir k > k.txt 2> k.err &
  job=$!
  for _ in $(seq 1 200); do ls k/lm_* >/dev/null 2>&1 && break; sleep 0.1; done
  victim=""
  for p in $(pgrep -f "$bin train"); do  # (this test's job only: ctest runs others beside it)
    [ "$(readlink "/proc/$p/cwd" 2>/dev/null)" = "$(pwd -P)" ] || continue
    if { tr '\0' '\n' < "/proc/$p/environ"; } 2>/dev/null | grep -q '^OMPI_COMM_WORLD_RANK=1$'; then victim=$p; fi
  done
  [ -n "$victim" ] || fail "no rank 1 process found"
  start=$(date +%s)
  kill -9 "$victim"
  wait "$job"; code=$?
  took=$(( $(date +%s) - start ))
  echo "killed rank 1: the job ended with exit $code after ${took} s"
  [ $code -ne 0 ] || fail "exit 0 after a rank was killed"
  [ $code -ne 124 ] || fail "the job hung after a rank was killed"
  [ $took -le 60 ] || fail "the job took $took s to end"
  # A rank failing: rank 0's next save, once its checkpoint folder is a file (rank 1 waits
  # for it in a collective).
  timeout 120 "$MPIEXEC" -n 2 "$bin" train "${args[@]}" --max-seconds 300 --checkpoint-dir f > f.txt 2> f.err &
  job=$!
  for _ in $(seq 1 200); do ls f/lm_* >/dev/null 2>&1 && break; sleep 0.1; done
  mv f f.gone && touch f
  start=$(date +%s)
  wait "$job"; code=$?
  took=$(( $(date +%s) - start ))
  echo "failed save: exit $code after ${took} s: $(grep -m1 'error' f.err)"
  [ $code -ne 0 ] && [ $code -ne 124 ] || fail "exit $code after a failed save"
  [ $took -le 60 ] || fail "the job took $took s to end"
  [ "$(grep -c 'char_rnn train: error: rank 0:' f.err)" -eq 1 ] || fail "no error line from rank 0: $(cat f.err)"
  # A batch that does not divide among the ranks.
  timeout 60 "$MPIEXEC" -n 2 "$bin" train "${small[@]}" --batch-size 7 --checkpoint-dir d > d.txt 2> d.err
  code=$?
  [ $code -ne 0 ] && [ $code -ne 124 ] || fail "exit $code for --batch-size 7 on 2 ranks"
  [ "$(grep -c 'does not divide among 2 ranks' d.err)" -eq 1 ] || fail "not one error line: $(cat d.err)"
  ;;
*)
  fail "unknown scenario $scenario"
  ;;
esac
echo "PASS: $scenario"
