#!/usr/bin/env bash
# recur_onnx's errors: a missing file, a corrupt model, an unsupported attribute and a wrong
# shape each give one error line that names the problem, and exit 1; info lists the nodes.
#   onnx_cli.sh RECUR_ONNX ONNX_NODE_TESTDATA_DIR
set -u
tool=$1
data=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
expect() {  # name, expected exit code, pattern in stderr (or stdout for exit 0), command...
  local name=$1 code=$2 pattern=$3
  shift 3
  "$@" >"$tmp/out" 2>"$tmp/err"
  local got=$?
  local text
  if [ "$code" -eq 0 ]; then text=$(cat "$tmp/out"); else text=$(cat "$tmp/err"); fi
  if [ "$got" -ne "$code" ] || ! grep -q -- "$pattern" <<<"$text"; then
    echo "FAIL $name: exit $got (want $code), output:"; cat "$tmp/out" "$tmp/err"; fails=$((fails + 1))
  elif [ "$code" -eq 1 ] && [ "$(wc -l <"$tmp/err")" -ne 1 ]; then
    echo "FAIL $name: more than one error line:"; cat "$tmp/err"; fails=$((fails + 1))
  else
    echo "ok   $name"
  fi
}
expect info 0 "LSTM .*hidden_size=3 direction=forward" "$tool" info "$data/test_lstm_with_peepholes/model.onnx"
expect missing_file 1 "cannot open" "$tool" info "$tmp/none.onnx"
printf 'not a protobuf at all, just text' >"$tmp/corrupt.onnx"
expect corrupt 1 "error: onnx: .*corrupt.onnx" "$tool" info "$tmp/corrupt.onnx"
expect not_a_dir 1 "is not a directory" "$tool" check "$tmp/none"
mkdir -p "$tmp/case"
expect missing_model 1 "cannot open .*model.onnx" "$tool" check "$tmp/case"
expect usage 2 "usage" "$tool" frobnicate x
# An unsupported attribute, an unsupported activation, a wrong input shape
# (tests/reference/onnx/errors, written by tests/reference/make_onnx_cases.py).
errors=$(dirname "$0")/reference/onnx/errors
expect input_forget 1 "node '(unnamed LSTM)' (LSTM): attribute input_forget = 1" "$tool" info "$errors/input_forget.onnx"
expect activation 1 "activation 'Relu' (position 1) is not supported" "$tool" info "$errors/activation.onnx"
expect shape 1 "input W is \[1, 12, 5\], expected \[1, 12, 2\]" "$tool" check "$errors/wrong_shape"
exit $((fails > 0))
