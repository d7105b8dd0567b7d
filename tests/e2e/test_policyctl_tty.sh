#!/usr/bin/env bash
# e2e: `policyctl submit --follow` in a real terminal (tmux: new-session -d, send-keys,
# capture-pane) against the local stack, with a slow ARM long-running operation (azure-sim
# lroDurationMs 6 s, which reports percentComplete): the operation's line shows a progress bar
# that is redrawn in place (one line for the operation on every screen, its percentage rising)
# and ends as the succeeded line with before -> after, then the result line and exit 0.
# Then a plain `policyctl submit FILE` on the terminal follows by default.  Skips (77) without
# tmux.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
command -v tmux >/dev/null || pw_skip "tmux is not installed (deploy/install-deps.sh installs it)"
e2e_require
[ -x "$PW_BIN_DIR/policyctl" ] || pw_skip "$PW_BIN_DIR/policyctl not built"
e2e_stack
e2e_sim_settings '{"lroDurationMs": 6000}'
ctl=$PW_BIN_DIR/policyctl ex=$PW_SOURCE_DIR/examples
jq '.id = "tty-1"' "$ex/database.retention.json" >"$PW_TMP/tty-1.json"
jq '.id = "tty-2"' "$ex/table.caching.json" >"$PW_TMP/tty-2.json"

sock=$PW_TMP/tmux.sock
tmux_() { tmux -S "$sock" "$@"; }
cleanup_tmux() { tmux_ kill-server >/dev/null 2>&1 || true; pw_cleanup; }
trap cleanup_tmux EXIT
tmux_ -f /dev/null new-session -d -s ctl -x 230 -y 40 "env -i PATH=$PATH TERM=xterm HOME=$PW_TMP bash --norc --noprofile"
pane() { tmux_ capture-pane -p -t ctl; }
tmux_ send-keys -t ctl "$ctl submit -F $PW_TMP/worker.conf $PW_TMP/tty-1.json --follow --timeout 120; echo EXIT=\$?" Enter

# Snapshots of the screen until the command is over.
n=0 deadline=$(($(date +%s) + $(pw__scale 120)))
: >"$PW_TMP/percents"
while :; do
  n=$((n + 1))
  pane >"$PW_TMP/screen.$n"
  lines=$(grep -c '\[0\] database.retention' "$PW_TMP/screen.$n" || true)
  [ "$lines" -le 1 ] || pw_fail "screen $n: the operation has $lines lines (not redrawn in place): $(cat "$PW_TMP/screen.$n")"
  sed -nE 's/.*\[0\] database.retention .* lro Running \[[#.]{20}\] +([0-9]+)%.*/\1/p' "$PW_TMP/screen.$n" >>"$PW_TMP/percents"
  grep -q '^EXIT=' "$PW_TMP/screen.$n" && break
  [ "$(date +%s)" -lt "$deadline" ] || pw_fail "policyctl did not finish: $(cat "$PW_TMP/screen.$n")"
  sleep 0.1
done
final=$PW_TMP/screen.$n
pw_log "$n screens; percentages seen: $(sort -un "$PW_TMP/percents" | tr '\n' ' ')"
[ "$(sort -un "$PW_TMP/percents" | wc -l)" -ge 2 ] || pw_fail "no progress redrawn: percentages $(sort -un "$PW_TMP/percents" | tr '\n' ' ')"
grep -qE '^  \[0\] database.retention mykustocluster/mykustodatabase via arm  succeeded  attempts=[0-9]+  lro Succeeded \[#{20}\] 100%  (queued [0-9]+ms  )?softDeletePeriod=P365D -> softDeletePeriod=P10D *$' "$final" ||
  pw_fail "final operation line: $(cat "$final")"
grep -q '^tty-1 succeeded: 1 changed, 0 unchanged *$' "$final" || pw_fail "result line: $(cat "$final")"
grep -q '^EXIT=0 *$' "$final" || pw_fail "exit: $(cat "$final")"
# the result line comes right after the operation's line, then the exit
sed -n '/\[0\] database.retention/,$p' "$final" | sed '/^ *$/d' | sed -n 2,3p | tr '\n' '|' |
  grep -qE '^tty-1 succeeded: 1 changed, 0 unchanged *\|EXIT=0 *\|$' || pw_fail "order of the last lines: $(cat "$final")"

# On a terminal, submit follows without being asked.
tmux_ send-keys -t ctl "clear; $ctl submit -F $PW_TMP/worker.conf $PW_TMP/tty-2.json; echo EXIT=\$?" Enter
pw_wait_until 60 eval 'pane | grep -q "^EXIT="' || pw_fail "second submit: $(pane)"
pane | grep -q '^tty-2 succeeded: 1 changed, 0 unchanged' || pw_fail "default follow on a terminal: $(pane)"
pane | grep -q '^EXIT=0' || pw_fail "second submit exit: $(pane)"
pw_log PASS
