# Shared by the examples' CLI tests (char_rnn, amp): source it after `set -uo pipefail`.
fail() { echo "FAIL: $*" >&2; exit 1; }
# Runs a command that must fail: non-zero exit, no hang, no crash, one error line on stderr
# holding the expected substring.
expect_error() {  # expected-substring command...
  local want="$1"; shift
  local err code
  err=$(timeout 60 "$@" 2>&1 >/dev/null); code=$?
  [ $code -ne 0 ] || fail "exit 0 for: $*"
  [ $code -ne 124 ] || fail "hang for: $*"
  [ $code -lt 128 ] || fail "crash ($code) for: $*: $err"
  [ "$(printf '%s\n' "$err" | wc -l)" -eq 1 ] || fail "more than one error line for: $*: $err"
  [[ "$err" == *"$want"* ]] || fail "expected '$want' for: $* -- got: $err"
  echo "ok ($code): $err"
}
