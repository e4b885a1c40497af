# Shared by the .ci scripts: sourced, not run.

# The C library's sources as paths from the repository root, from the one
# list (csrc/sources.mk) that the Makefile and build.rs also read.
ucoro_sources() {
    local s
    for s in $(sed -n 's/^UCORO_SOURCES *= *//p' csrc/sources.mk); do
        printf 'csrc/%s ' "$s"
    done
}

# The -D flag that selects a switch mode (default, setjmp, ucontext).
ucoro_mode_flag() {
    case $1 in
        default) ;;
        setjmp) printf -- '-DUCORO_SWITCH_SETJMP' ;;
        ucontext) printf -- '-DUCORO_SWITCH_UCONTEXT' ;;
        *) echo "unknown switch mode: $1" >&2; return 1 ;;
    esac
}
