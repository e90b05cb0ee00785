# Shared by the end-to-end tests of the command line (cli_test.sh,
# cli_merge_test.sh): sourced after the script has set MERGESVD; the script
# then calls cli_setup NAME and ends with its "N checks, M failures" line.

# cli_setup NAME: $work is made, and removed at exit.
cli_setup() {
    work=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
    trap 'rm -rf "$work"' EXIT
}
failures=0
checks=0

fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

# expect_exit STATUS DESCRIPTION COMMAND...: runs COMMAND, output in
# $work/out and $work/err.
expect_exit() {
    local want=$1 what=$2
    shift 2
    checks=$((checks + 1))
    "$@" >"$work/out" 2>"$work/err"
    local got=$?
    if [ "$got" -ne "$want" ]; then
        fail "$what: exit $got, expected $want ($*)"
        sed 's/^/    /' "$work/err" | head -5 >&2
        return 1
    fi
    return 0
}

# expect_stderr_has DESCRIPTION TEXT: the last command's stderr holds TEXT.
expect_stderr_has() {
    checks=$((checks + 1))
    grep -q -- "$2" "$work/err" || fail "$1: stderr lacks '$2': $(head -c 300 "$work/err")"
}

# expect_stdout_has DESCRIPTION TEXT: the last command's stdout holds TEXT.
expect_stdout_has() {
    checks=$((checks + 1))
    grep -q -- "$2" "$work/out" || fail "$1: stdout lacks '$2': $(head -c 300 "$work/out")"
}
