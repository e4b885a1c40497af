#!/bin/sh
# Runs one program of the C suite for `make check`:
#   run.sh NAME COMMAND [ARGS...]
# Its output goes to NAME.log in the current directory; it passes when it
# exits 0 and its last line is "<n> passed, 0 failed". Prints one line,
# PASS or FAIL (then the end of the log), and exits 0 or 1 accordingly.
#
# SPDX-License-Identifier: MIT OR Apache-2.0
name=$1
shift
if "$@" >"$name.log" 2>&1 && tail -n 1 "$name.log" | grep -Eq '^[1-9][0-9]* passed, 0 failed$'; then
    echo "PASS: $name ($(tail -n 1 "$name.log"))"
    exit 0
fi
echo "FAIL: $name (log: $PWD/$name.log)"
tail -n 20 "$name.log" | sed 's/^/    /'
exit 1
