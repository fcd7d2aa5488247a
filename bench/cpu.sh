# shellcheck shell=bash
# CPU time of a process tree from /proc, sourced by bench/suite.sh and bench/floor/floor.sh.

# stat_ticks PID [1]: the clock ticks PID used (user + system); with 1, those of the exited
# children it waited for too (a postmaster's ended backends, nginx's old workers). 0 for a
# process that is gone.
stat_ticks() {
    local s
    s=$(cat "/proc/$1/stat" 2>/dev/null) || {
        echo 0
        return
    }
    s=${s##*) }
    read -r -a f <<<"$s"
    # fields after comm: state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14)
    if [[ ${2:-} == 1 ]]; then echo $((f[11] + f[12] + f[13] + f[14])); else echo $((f[11] + f[12])); fi
}

# tree_ticks PID: the ticks of PID and of its descendants, the exited ones it waited for included
tree_ticks() {
    local total c
    total=$(stat_ticks "$1" 1)
    for c in $(pgrep -P "$1" 2>/dev/null); do total=$((total + $(tree_ticks "$c"))); done
    echo "$total"
}
