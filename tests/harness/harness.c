/* Test harness: spawns programs and throwaway PostgreSQL clusters for integration tests and
 * guarantees they are stopped (atexit here, tests/harness/reap.sh when the test was killed).
 * Records: $GF_TEST_TMP/pids/<pid>.pid and $GF_TEST_TMP/clusters/<owner>-<name>, key=value.
 * The run's RabbitMQ node belongs to the `broker` fixture; a process only makes a vhost in it. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef GF_HARNESS_DIR
#error "GF_HARNESS_DIR must be defined as the absolute path of tests/harness"
#endif

#define H_PG_SCRIPT GF_HARNESS_DIR "/pg-cluster.sh"
#define H_RMQ_SCRIPT GF_HARNESS_DIR "/rabbitmq.sh"
#define H_RMQ_OUT_MAX (4 << 20) /* rabbitmqctl output kept; the rest is read and dropped */
#define H_MAX_PROCS 64
#define H_MAX_CLUSTERS 32
#define H_PG_START_TRIES 5
#define H_CLEANUP_GRACE_MS 5000

extern char **environ;

struct h_proc {
    pid_t pid; /* 0 = free slot */
};

/* A cluster stays known after h_pg_stop (h_pg_restart brings it back) until h_cleanup_all. */
struct h_cluster {
    char datadir[512]; /* "" = free slot */
    int port;
    int flags;
    bool running;
    char record[PATH_MAX];
};

static pthread_mutex_t h_lock = PTHREAD_MUTEX_INITIALIZER;
static struct h_proc h_procs[H_MAX_PROCS];
static struct h_cluster h_clusters[H_MAX_CLUSTERS];
static pid_t h_owner; /* the process whose atexit handler cleans up; 0 = not installed */
static char h_tmp_root[PATH_MAX];
static char h_run[PATH_MAX];
static pid_t h_run_pid;
static struct h_rmq h_rmq_mine; /* this process's vhost; port 0 = none yet */
static pid_t h_rmq_pid;         /* the process that created it */

__attribute__((format(printf, 2, 3))) static void h_log(const char *fn, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "harness: %s: %s\n", fn, msg);
}

static long long h_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void h_sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Field 22 of /proc/PID/stat (start time in clock ticks): with the pid, it names a process
 * unambiguously, so the reaper never kills a recycled pid. 0 if unknown. */
static unsigned long long h_starttime(pid_t pid)
{
    char path[64], buf[1024];
    unsigned long long start = 0;
    const char *p;
    size_t n;
    FILE *f;

    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    f = fopen(path, "re");
    if (!f)
        return 0;
    n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    p = strrchr(buf, ')'); /* the command name may contain spaces and parentheses */
    if (!p)
        return 0;
    p++; /* now at the space before field 3 */
    for (int field = 3; field < 22 && p; field++)
        p = strchr(p + 1, ' ');
    if (p)
        start = strtoull(p + 1, NULL, 10);
    return start;
}

/* mkdir -p; every directory created gets exactly `mode` (umask ignored) so that the postgres
 * user can traverse the run directory when tests run as root. */
static int h_mkdir_p(const char *path, mode_t mode)
{
    char buf[PATH_MAX];
    size_t len = strlen(path);

    if (len == 0 || len >= sizeof buf) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(buf, path, len + 1);
    for (char *p = buf + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char saved = *p;
        *p = '\0';
        if (mkdir(buf, mode) == 0) {
            if (chmod(buf, mode) != 0)
                return -1;
        } else if (errno != EEXIST) {
            return -1;
        }
        *p = saved;
        if (saved == '\0')
            return 0;
    }
}

/* $GF_TEST_TMP made absolute, with its pids/ and clusters/ subdirectories. Caller holds h_lock. */
static const char *h_tmp_root_locked(void)
{
    const char *env = getenv("GF_TEST_TMP");
    char cwd[PATH_MAX], root[PATH_MAX], sub[PATH_MAX + 16];
    int n;

    if (h_tmp_root[0])
        return h_tmp_root;
    if (!env || !*env)
        env = "test-tmp";
    if (env[0] == '/') {
        n = snprintf(root, sizeof root, "%s", env);
    } else {
        if (!getcwd(cwd, sizeof cwd)) {
            h_log("h_run_dir", "getcwd: %s", strerror(errno));
            return NULL;
        }
        n = snprintf(root, sizeof root, "%s/%s", cwd, env);
    }
    if (n < 0 || (size_t)n >= sizeof root) {
        h_log("h_run_dir", "GF_TEST_TMP path too long");
        return NULL;
    }
    while (n > 1 && root[n - 1] == '/')
        root[--n] = '\0';
    for (int i = 0; i < 2; i++) {
        snprintf(sub, sizeof sub, "%s/%s", root, i == 0 ? "pids" : "clusters");
        if (h_mkdir_p(sub, 0755) != 0) {
            h_log("h_run_dir", "mkdir %s: %s", sub, strerror(errno));
            return NULL;
        }
    }
    memcpy(h_tmp_root, root, sizeof root);
    return h_tmp_root;
}

static const char *h_run_dir_locked(void)
{
    const char *root = h_tmp_root_locked();
    int n;

    if (!root)
        return NULL;
    if (h_run[0] && h_run_pid == getpid())
        return h_run;
    n = snprintf(h_run, sizeof h_run, "%s/%s-%d", root, program_invocation_short_name,
                 (int)getpid());
    if (n < 0 || (size_t)n >= sizeof h_run) {
        h_log("h_run_dir", "path too long");
        h_run[0] = '\0';
        return NULL;
    }
    if (h_mkdir_p(h_run, 0755) != 0) {
        h_log("h_run_dir", "mkdir %s: %s", h_run, strerror(errno));
        h_run[0] = '\0';
        return NULL;
    }
    h_run_pid = getpid();
    return h_run;
}

const char *h_run_dir(void)
{
    const char *dir;

    pthread_mutex_lock(&h_lock);
    dir = h_run_dir_locked();
    pthread_mutex_unlock(&h_lock);
    return dir;
}

/* Caller holds h_lock. */
static void h_ensure_atexit_locked(void)
{
    if (h_owner == getpid())
        return;
    h_owner = getpid();
    atexit(h_cleanup_all);
}

/* Writes a record atomically (tmp + rename) so the reaper never reads half a file. */
static int h_write_record(const char *path, const char *text)
{
    char tmp[PATH_MAX + 8];
    FILE *f;
    int ok;

    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", path) >= sizeof tmp) {
        errno = ENAMETOOLONG;
        return -1;
    }
    f = fopen(tmp, "we");
    if (!f)
        return -1;
    ok = fputs(text, f) >= 0;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

/* Ports for the services of integration tests: 31000-32767. Outside the kernel's ephemeral
 * range (32768-60999 here and by default), so no client connection takes one as its local
 * port while a test has a service down to restart it on the same port; and outside the other
 * pickers' (tests/harness/ports.sh 10000-19999, rabbitmq.sh 20000-29899) and the local stack's
 * (30000-30700). Processes agree through a lock file per port, held (flock) for the life of
 * the process that was given it: the kernel lets it go when that process ends, however. */
#define H_PORT_MIN 31000
#define H_PORT_MAX 32767
#define H_PORT_LOCKS "/tmp/gf-port-locks"

/* Whether 127.0.0.1:port can be bound now. */
static bool port_bindable(int port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    bool ok = bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    close(fd);
    return ok;
}

int h_free_port(void)
{
    static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    static unsigned next;
    pthread_mutex_lock(&mu);
    if (next == 0) {
        (void)mkdir(H_PORT_LOCKS, 0777);
        (void)chmod(H_PORT_LOCKS, 01777); /* any user's tests; the files stay, empty */
        next = (unsigned)getpid() * 7919u + (unsigned)time(NULL);
    }
    int span = H_PORT_MAX - H_PORT_MIN + 1, port = -1;
    for (int i = 0; i < span && port < 0; i++) {
        int p = H_PORT_MIN + (int)(next++ % (unsigned)span);
        char path[64];
        snprintf(path, sizeof path, H_PORT_LOCKS "/%d", p);
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
        if (fd < 0)
            continue;
        /* Another process's (or one this process was given already: a lock is per open
         * file, so a second open of the same file does not get it either). */
        if (flock(fd, LOCK_EX | LOCK_NB) != 0 || !port_bindable(p)) {
            close(fd);
            continue;
        }
        port = p; /* fd stays open, and locked, until this process exits */
    }
    pthread_mutex_unlock(&mu);
    if (port < 0)
        h_log("h_free_port", "no free port in %d-%d (locks in %s)", H_PORT_MIN, H_PORT_MAX,
              H_PORT_LOCKS);
    return port;
}

int h_wait_tcp(int port, int timeout_ms)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    long long deadline = h_now_ms() + timeout_ms;
    int last_errno = 0;

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (;;) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            h_log("h_wait_tcp", "socket: %s", strerror(errno));
            return -1;
        }
        int rc = connect(fd, (struct sockaddr *)&sa, sizeof sa);
        last_errno = errno;
        close(fd);
        if (rc == 0)
            return 0;
        if (h_now_ms() >= deadline)
            break;
        h_sleep_ms(20);
    }
    h_log("h_wait_tcp", "127.0.0.1:%d not accepting after %d ms: %s", port, timeout_ms,
          strerror(last_errno));
    return -1;
}

/* PATH lookup done in the parent, so the child only calls async-signal-safe functions. */
static int h_resolve(const char *name, char *out, size_t outsz)
{
    const char *path = getenv("PATH");

    if (strchr(name, '/')) {
        if ((size_t)snprintf(out, outsz, "%s", name) >= outsz)
            return -1;
        return access(out, X_OK);
    }
    if (!path || !*path)
        path = "/usr/local/bin:/usr/bin:/bin";
    while (*path) {
        size_t dirlen = strcspn(path, ":");
        struct stat st;
        int n = snprintf(out, outsz, "%.*s/%s", (int)dirlen, dirlen ? path : ".", name);
        if (n > 0 && (size_t)n < outsz && access(out, X_OK) == 0 && stat(out, &st) == 0 &&
            S_ISREG(st.st_mode))
            return 0;
        path += dirlen;
        if (*path == ':')
            path++;
    }
    return -1;
}

/* environ minus the keys that envp_extra overrides, plus envp_extra. Strings are borrowed. */
static char **h_build_env(const char *const extra[])
{
    size_t n = 0, m = 0, k = 0;
    char **env;

    while (environ && environ[n])
        n++;
    while (extra && extra[m]) {
        if (!strchr(extra[m], '=')) {
            h_log("h_spawn", "environment entry without '=': %s", extra[m]);
            return NULL;
        }
        m++;
    }
    env = calloc(n + m + 1, sizeof *env);
    if (!env) {
        h_log("h_spawn", "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        const char *eq = strchr(environ[i], '=');
        size_t keylen = eq ? (size_t)(eq - environ[i]) + 1 : strlen(environ[i]);
        bool overridden = false;
        for (size_t j = 0; j < m && !overridden; j++)
            overridden = strncmp(environ[i], extra[j], keylen) == 0;
        if (!overridden)
            env[k++] = environ[i];
    }
    for (size_t j = 0; j < m; j++)
        env[k++] = (char *)extra[j];
    return env;
}

/* In a forked child: a clean signal state (tests often block SIGTERM or ignore SIGPIPE, and
 * both survive exec) and no inherited descriptors beyond 0-2. Async-signal-safe only. */
static void h_child_reset(void)
{
    static const int sigs[] = {SIGPIPE, SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGCHLD};
    struct sigaction dfl;
    sigset_t none;

    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        sigaction(sigs[i], &dfl, NULL);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) != 0) {
        for (int fd = 3; fd < 4096; fd++)
            fcntl(fd, F_SETFD, FD_CLOEXEC);
    }
}

/* Caller holds h_lock. */
static void h_pidfile_path_locked(pid_t pid, char *out, size_t outsz)
{
    snprintf(out, outsz, "%s/pids/%d.pid", h_tmp_root, (int)pid);
}

static void h_register_proc(pid_t pid, const char *exe)
{
    char path[PATH_MAX + 32], text[PATH_MAX + 128];
    int slot = -1;

    pthread_mutex_lock(&h_lock);
    for (int i = 0; i < H_MAX_PROCS && slot < 0; i++)
        if (h_procs[i].pid == 0)
            slot = i;
    if (slot < 0)
        h_log("h_spawn", "more than %d live processes: pid %d will not be cleaned up", H_MAX_PROCS,
              (int)pid);
    else
        h_procs[slot].pid = pid;
    h_pidfile_path_locked(pid, path, sizeof path);
    snprintf(text, sizeof text, "pid=%d\nstart=%llu\nowner=%d %llu\nexe=%s\n", (int)pid,
             h_starttime(pid), (int)getpid(), h_starttime(getpid()), exe);
    if (h_write_record(path, text) != 0)
        h_log("h_spawn", "cannot write %s: %s", path, strerror(errno));
    pthread_mutex_unlock(&h_lock);
}

pid_t h_spawn(const char *const argv[], const char *const envp_extra[], const char *log_path)
{
    char exe[PATH_MAX];
    char **envp = NULL;
    int logfd = -1, nullfd = -1, errpipe[2] = {-1, -1}, child_errno = 0;
    pid_t parent = getpid(), pid = -1;
    ssize_t n;

    if (!argv || !argv[0] || !log_path) {
        h_log("h_spawn", "argv[0] and log_path are required");
        return -1;
    }
    pthread_mutex_lock(&h_lock);
    if (!h_tmp_root_locked()) {
        pthread_mutex_unlock(&h_lock);
        return -1;
    }
    h_ensure_atexit_locked();
    pthread_mutex_unlock(&h_lock);
    if (h_resolve(argv[0], exe, sizeof exe) != 0) {
        h_log("h_spawn", "%s: not found or not executable", argv[0]);
        goto out;
    }
    envp = h_build_env(envp_extra);
    if (!envp)
        goto out;
    logfd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (logfd < 0) {
        h_log("h_spawn", "open %s: %s", log_path, strerror(errno));
        goto out;
    }
    nullfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (nullfd < 0 || pipe2(errpipe, O_CLOEXEC) != 0) {
        h_log("h_spawn", "open /dev/null or pipe: %s", strerror(errno));
        goto out;
    }
    pid = fork();
    if (pid < 0) {
        h_log("h_spawn", "fork: %s", strerror(errno));
        goto out;
    }
    if (pid == 0) {
        /* SIGTERM when the forking thread dies; re-check in case it died before prctl. */
        if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() != parent)
            _exit(127);
        h_child_reset();
        if (dup2(nullfd, 0) >= 0 && dup2(logfd, 1) >= 0 && dup2(logfd, 2) >= 0)
            execve(exe, (char *const *)argv, envp);
        child_errno = errno;
        if (write(errpipe[1], &child_errno, sizeof child_errno) < 0) {
            /* nothing more we can do */
        }
        _exit(127);
    }
    close(errpipe[1]);
    errpipe[1] = -1;
    do
        n = read(errpipe[0], &child_errno, sizeof child_errno);
    while (n < 0 && errno == EINTR);
    if (n == (ssize_t)sizeof child_errno) { /* exec failed: the pipe closes on success only */
        h_log("h_spawn", "exec %s: %s", exe, strerror(child_errno));
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
        }
        pid = -1;
        goto out;
    }
    h_register_proc(pid, exe);
out:
    if (errpipe[0] >= 0)
        close(errpipe[0]);
    if (errpipe[1] >= 0)
        close(errpipe[1]);
    if (nullfd >= 0)
        close(nullfd);
    if (logfd >= 0)
        close(logfd);
    free(envp);
    return pid;
}

/* Removes pid from the registry and its record; returns false if it was not ours. */
static bool h_unregister_proc(pid_t pid)
{
    char path[PATH_MAX + 32];
    bool found = false;

    pthread_mutex_lock(&h_lock);
    for (int i = 0; i < H_MAX_PROCS; i++) {
        if (h_procs[i].pid == pid) {
            h_procs[i].pid = 0;
            found = true;
        }
    }
    if (found) {
        h_pidfile_path_locked(pid, path, sizeof path);
        unlink(path);
    }
    pthread_mutex_unlock(&h_lock);
    return found;
}

static bool h_is_ours(pid_t pid)
{
    bool found = false;

    pthread_mutex_lock(&h_lock);
    for (int i = 0; i < H_MAX_PROCS && !found; i++)
        found = pid > 0 && h_procs[i].pid == pid;
    pthread_mutex_unlock(&h_lock);
    return found;
}

int h_stop(pid_t pid, int grace_ms)
{
    long long deadline = h_now_ms() + (grace_ms > 0 ? grace_ms : 0);
    int status = -1;
    pid_t r;

    if (!h_is_ours(pid)) {
        h_log("h_stop", "pid %d was not started by h_spawn (or was already stopped)", (int)pid);
        return -1;
    }
    if (kill(pid, SIGTERM) != 0 && errno != ESRCH)
        h_log("h_stop", "kill %d: %s", (int)pid, strerror(errno));
    for (;;) {
        r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            goto out;
        if (r < 0 && errno != EINTR) {
            h_log("h_stop", "waitpid %d: %s", (int)pid, strerror(errno));
            status = -1;
            goto out;
        }
        if (h_now_ms() >= deadline)
            break;
        h_sleep_ms(10);
    }
    h_log("h_stop", "pid %d still running %d ms after SIGTERM: sending SIGKILL", (int)pid,
          grace_ms);
    kill(pid, SIGKILL);
    while ((r = waitpid(pid, &status, 0)) < 0 && errno == EINTR) {
    }
    if (r != pid) {
        h_log("h_stop", "waitpid %d: %s", (int)pid, strerror(errno));
        status = -1;
    }
out:
    h_unregister_proc(pid);
    return status;
}

/* Runs tests/harness/pg-cluster.sh with args; its output goes to our stderr. 0 on exit 0. */
static int h_pg_script(const char *fn, const char *const args[])
{
    const char *argv[10] = {"/bin/bash", H_PG_SCRIPT};
    int status, nullfd, i;
    pid_t pid, r;

    for (i = 0; i < 7 && args[i]; i++)
        argv[i + 2] = args[i];
    argv[i + 2] = NULL;
    nullfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (nullfd < 0) {
        h_log(fn, "open /dev/null: %s", strerror(errno));
        return -1;
    }
    fflush(stderr);
    pid = fork();
    if (pid < 0) {
        h_log(fn, "fork: %s", strerror(errno));
        close(nullfd);
        return -1;
    }
    if (pid == 0) {
        /* The postmaster that pg_ctl starts inherits our descriptors: close them all. */
        h_child_reset();
        if (dup2(nullfd, 0) >= 0 && dup2(2, 1) >= 0)
            execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(nullfd);
    while ((r = waitpid(pid, &status, 0)) < 0 && errno == EINTR) {
    }
    if (r != pid) {
        h_log(fn, "waitpid: %s", strerror(errno));
        return -1;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        h_log(fn, "pg-cluster.sh %s %s failed (status 0x%x)", args[0], args[1], status);
        return -1;
    }
    return 0;
}

static int h_pg_script_start(const char *datadir, int port, int flags)
{
    char portstr[16];
    const char *args[7] = {"start", datadir, portstr};
    int n = 3;

    snprintf(portstr, sizeof portstr, "%d", port);
    if (flags & H_PG_LOGICAL)
        args[n++] = "--logical";
    if (flags & H_PG_SUBSCRIBER)
        args[n++] = "--subscriber";
    if (flags & H_PG_SCRAM)
        args[n++] = "--scram";
    args[n] = NULL;
    return h_pg_script("h_pg_start", args);
}

static int h_pg_script_stop(const char *datadir)
{
    const char *args[] = {"stop", datadir, NULL};

    return h_pg_script("h_pg_stop", args);
}

/* Caller holds h_lock. Returns the slot index for datadir, or -1. */
static int h_find_cluster_locked(const char *datadir)
{
    for (int i = 0; i < H_MAX_CLUSTERS; i++)
        if (h_clusters[i].datadir[0] && strcmp(h_clusters[i].datadir, datadir) == 0)
            return i;
    return -1;
}

/* Records the cluster before it starts, so a test killed during start is still reaped.
 * A cluster this process stopped earlier may be started again. */
static int h_register_cluster(const char *name, const char *datadir, int flags)
{
    char text[1024];
    struct h_cluster *c = NULL;
    int rc = -1, n, i;

    pthread_mutex_lock(&h_lock);
    i = h_find_cluster_locked(datadir);
    if (i >= 0 && h_clusters[i].running) {
        h_log("h_pg_start", "%s is already running (started by this process)", datadir);
        goto out;
    }
    if (i >= 0) {
        h_clusters[i].flags = flags;
        rc = 0;
        goto out;
    }
    for (int i = 0; i < H_MAX_CLUSTERS && !c; i++)
        if (!h_clusters[i].datadir[0])
            c = &h_clusters[i];
    if (!c) {
        h_log("h_pg_start", "more than %d clusters", H_MAX_CLUSTERS);
        goto out;
    }
    n = snprintf(c->record, sizeof c->record, "%s/clusters/%d-%s", h_tmp_root, (int)getpid(), name);
    if (n < 0 || (size_t)n >= sizeof c->record) {
        h_log("h_pg_start", "record path too long");
        c = NULL;
        goto out;
    }
    snprintf(text, sizeof text, "datadir=%s\nowner=%d %llu\n", datadir, (int)getpid(),
             h_starttime(getpid()));
    if (h_write_record(c->record, text) != 0) {
        h_log("h_pg_start", "cannot write %s: %s", c->record, strerror(errno));
        goto out;
    }
    snprintf(c->datadir, sizeof c->datadir, "%s", datadir);
    c->flags = flags;
    c->port = 0;
    c->running = false;
    rc = 0;
out:
    pthread_mutex_unlock(&h_lock);
    return rc;
}

static void h_unregister_cluster(const char *datadir)
{
    int i;

    pthread_mutex_lock(&h_lock);
    i = h_find_cluster_locked(datadir);
    if (i >= 0) {
        unlink(h_clusters[i].record);
        memset(&h_clusters[i], 0, sizeof h_clusters[i]);
    }
    pthread_mutex_unlock(&h_lock);
}

static void h_set_cluster_running(const char *datadir, bool running, int port)
{
    int i;

    pthread_mutex_lock(&h_lock);
    i = h_find_cluster_locked(datadir);
    if (i >= 0) {
        h_clusters[i].running = running;
        if (port > 0)
            h_clusters[i].port = port;
    }
    pthread_mutex_unlock(&h_lock);
}

int h_pg_start(struct h_pg *pg, const char *name, int flags)
{
    char datadir[sizeof pg->datadir];
    const char *run;
    int port = -1, n, i;

    if (!pg || !name || !*name || strchr(name, '/') || strcmp(name, "..") == 0 ||
        strcmp(name, ".") == 0) {
        h_log("h_pg_start", "a cluster name (no '/') is required");
        return -1;
    }
    pthread_mutex_lock(&h_lock);
    run = h_run_dir_locked();
    if (run)
        h_ensure_atexit_locked();
    n = run ? snprintf(datadir, sizeof datadir, "%s/%s", run, name) : -1;
    pthread_mutex_unlock(&h_lock);
    if (!run)
        return -1;
    if (n < 0 || (size_t)n >= sizeof datadir) {
        h_log("h_pg_start", "data directory path too long for %s", name);
        return -1;
    }
    if (h_register_cluster(name, datadir, flags) != 0)
        return -1;
    for (i = 0; i < H_PG_START_TRIES; i++) { /* the free port may be taken before we bind it */
        port = h_free_port();
        if (port > 0 && h_pg_script_start(datadir, port, flags) == 0)
            break;
    }
    if (i == H_PG_START_TRIES) {
        h_log("h_pg_start", "cluster %s did not start after %d tries", datadir, i);
        /* In case it came up after pg_ctl gave up; if even that fails, cleanup tries again. */
        h_set_cluster_running(datadir, h_pg_script_stop(datadir) != 0, 0);
        return -1;
    }
    h_set_cluster_running(datadir, true, port);
    memcpy(pg->datadir, datadir, sizeof datadir);
    pg->port = port;
    snprintf(pg->conninfo, sizeof pg->conninfo,
             "host=127.0.0.1 port=%d user=postgres dbname=postgres connect_timeout=5", port);
    return 0;
}

int h_pg_stop(struct h_pg *pg)
{
    if (!pg || !pg->datadir[0]) {
        h_log("h_pg_stop", "no cluster");
        return -1;
    }
    if (h_pg_script_stop(pg->datadir) != 0)
        return -1;
    h_set_cluster_running(pg->datadir, false, 0);
    return 0;
}

int h_pg_restart(struct h_pg *pg)
{
    int i, flags = 0;

    if (!pg || !pg->datadir[0]) {
        h_log("h_pg_restart", "no cluster");
        return -1;
    }
    pthread_mutex_lock(&h_lock);
    i = h_find_cluster_locked(pg->datadir);
    if (i >= 0)
        flags = h_clusters[i].flags;
    pthread_mutex_unlock(&h_lock);
    if (i < 0) {
        h_log("h_pg_restart", "%s was not started by h_pg_start", pg->datadir);
        return -1;
    }
    if (h_pg_script_stop(pg->datadir) != 0)
        return -1;
    h_set_cluster_running(pg->datadir, false, 0);
    if (h_pg_script_start(pg->datadir, pg->port, flags) != 0)
        return -1;
    h_set_cluster_running(pg->datadir, true, pg->port);
    return 0;
}

/* ---- the run's RabbitMQ node -------------------------------------------------------------- */

/* Runs `rabbitmq.sh ctl $GF_TEST_TMP/broker args...`; its stdout into *out (malloc'd,
 * NUL-terminated, trailing blanks trimmed) when out is not NULL, its stderr to ours. Returns
 * its exit code (128 + signal if it was killed), or -1 if it could not run. */
static int h_rmq_run(const char *fn, const char *const args[], char **out)
{
    char dir[PATH_MAX], *buf = NULL;
    const char **argv = NULL;
    size_t nargs = 0, len = 0, cap = 0;
    int fds[2] = {-1, -1}, nullfd = -1, status, rc = -1;
    const char *root;
    pid_t pid, r;
    ssize_t got;

    if (out)
        *out = NULL;
    pthread_mutex_lock(&h_lock);
    root = h_tmp_root_locked();
    if (root)
        snprintf(dir, sizeof dir, "%s/broker", root);
    pthread_mutex_unlock(&h_lock);
    if (!root)
        return -1;
    while (args && args[nargs])
        nargs++;
    argv = calloc(nargs + 5, sizeof *argv);
    if (!argv) {
        h_log(fn, "out of memory");
        return -1;
    }
    argv[0] = "/bin/bash";
    argv[1] = H_RMQ_SCRIPT;
    argv[2] = "ctl";
    argv[3] = dir;
    for (size_t i = 0; i < nargs; i++)
        argv[i + 4] = args[i];
    nullfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (nullfd < 0 || pipe2(fds, O_CLOEXEC) != 0) {
        h_log(fn, "open /dev/null or pipe: %s", strerror(errno));
        goto out;
    }
    fflush(stderr);
    pid = fork();
    if (pid < 0) {
        h_log(fn, "fork: %s", strerror(errno));
        goto out;
    }
    if (pid == 0) {
        h_child_reset();
        if (dup2(nullfd, 0) >= 0 && dup2(fds[1], 1) >= 0)
            execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(fds[1]);
    fds[1] = -1;
    for (;;) {
        char chunk[4096];
        got = read(fds[0], chunk, sizeof chunk);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        if (!out || len + (size_t)got > H_RMQ_OUT_MAX)
            continue;
        if (len + (size_t)got + 1 > cap) {
            size_t ncap = cap ? cap * 2 : 8192;
            while (ncap < len + (size_t)got + 1)
                ncap *= 2;
            char *nbuf = realloc(buf, ncap);
            if (!nbuf)
                continue; /* keep draining: the child must not block on a full pipe */
            buf = nbuf;
            cap = ncap;
        }
        memcpy(buf + len, chunk, (size_t)got);
        len += (size_t)got;
    }
    while ((r = waitpid(pid, &status, 0)) < 0 && errno == EINTR) {
    }
    if (r != pid) {
        h_log(fn, "waitpid: %s", strerror(errno));
        goto out;
    }
    rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (out) {
        if (!buf && (buf = malloc(1)) == NULL) {
            h_log(fn, "out of memory");
            rc = -1;
            goto out;
        }
        while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == ' ' || buf[len - 1] == '\t' ||
                           buf[len - 1] == '\r'))
            len--;
        buf[len] = '\0';
        *out = buf;
        buf = NULL;
    }
out:
    if (fds[0] >= 0)
        close(fds[0]);
    if (fds[1] >= 0)
        close(fds[1]);
    if (nullfd >= 0)
        close(nullfd);
    free(buf);
    free(argv);
    return rc;
}

int h_rmq_ctl(const char *const args[], char *out, size_t n)
{
    char *text = NULL;
    int rc = h_rmq_run("h_rmq_ctl", args, out ? &text : NULL);

    if (out && n > 0) {
        snprintf(out, n, "%s", text ? text : "");
    }
    free(text);
    return rc;
}

/* The AMQP port from $GF_TEST_TMP/broker/env (written by rabbitmq.sh start), or -1. */
static int h_rmq_port(void)
{
    char path[PATH_MAX + 16], line[256];
    const char *root;
    int port = -1;
    FILE *f;

    pthread_mutex_lock(&h_lock);
    root = h_tmp_root_locked();
    if (root)
        snprintf(path, sizeof path, "%s/broker/env", root);
    pthread_mutex_unlock(&h_lock);
    if (!root)
        return -1;
    f = fopen(path, "re");
    if (!f) {
        h_log("h_rmq_open", "no broker: %s: %s (did the `broker` fixture run?)", path,
              strerror(errno));
        return -1;
    }
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "port=", 5) == 0)
            port = atoi(line + 5);
    fclose(f);
    if (port <= 0 || port > 65535) {
        h_log("h_rmq_open", "%s has no valid port", path);
        return -1;
    }
    return port;
}

int h_rmq_open(struct h_rmq *r)
{
    char vhost[sizeof r->vhost], prog[32], defs[PATH_MAX + 32], text[1024];
    const char *run;
    size_t i;
    int port, rc;

    if (!r) {
        h_log("h_rmq_open", "no h_rmq");
        return -1;
    }
    pthread_mutex_lock(&h_lock);
    if (h_rmq_pid == getpid() && h_rmq_mine.port > 0) { /* opened before: the same vhost */
        *r = h_rmq_mine;
        pthread_mutex_unlock(&h_lock);
        return 0;
    }
    run = h_run_dir_locked();
    if (run) {
        h_ensure_atexit_locked();
        snprintf(defs, sizeof defs, "%s/rmq-definitions.json", run);
    }
    pthread_mutex_unlock(&h_lock);
    if (!run)
        return -1;
    port = h_rmq_port();
    if (port < 0)
        return -1;
    /* Program name (only characters that need no quoting in a URL, JSON or shell), pid and the
     * process's start time: unique even if a pid comes round again during one run. */
    snprintf(prog, sizeof prog, "%s", program_invocation_short_name);
    for (i = 0; prog[i]; i++)
        if (!((prog[i] >= 'a' && prog[i] <= 'z') || (prog[i] >= 'A' && prog[i] <= 'Z') ||
              (prog[i] >= '0' && prog[i] <= '9') || prog[i] == '-' || prog[i] == '_'))
            prog[i] = '_';
    snprintf(vhost, sizeof vhost, "%s-%d-%llu", prog, (int)getpid(), h_starttime(getpid()));
    /* One rabbitmqctl call (each costs ~0.7 s) for the vhost and guest's permissions. */
    snprintf(text, sizeof text,
             "{\"vhosts\": [{\"name\": \"%s\"}],\n"
             " \"permissions\": [{\"user\": \"guest\", \"vhost\": \"%s\", \"configure\": \".*\","
             " \"write\": \".*\", \"read\": \".*\"}]}\n",
             vhost, vhost);
    if (h_write_record(defs, text) != 0) {
        h_log("h_rmq_open", "cannot write %s: %s", defs, strerror(errno));
        return -1;
    }
    const char *args[] = {"-q", "import_definitions", defs, NULL};
    rc = h_rmq_run("h_rmq_open", args, NULL);
    unlink(defs);
    if (rc != 0) {
        h_log("h_rmq_open", "rabbitmqctl import_definitions (vhost %s) failed: exit %d", vhost, rc);
        return -1;
    }
    pthread_mutex_lock(&h_lock);
    memset(&h_rmq_mine, 0, sizeof h_rmq_mine);
    h_rmq_mine.port = port;
    memcpy(h_rmq_mine.vhost, vhost, sizeof vhost);
    snprintf(h_rmq_mine.url, sizeof h_rmq_mine.url, "amqp://guest:guest@127.0.0.1:%d/%s", port,
             vhost);
    h_rmq_pid = getpid();
    *r = h_rmq_mine;
    pthread_mutex_unlock(&h_lock);
    return 0;
}

/* The value of client property connection_name in a client_properties column as rabbitmqctl
 * prints it ([{"product","rabbitmq-c"},...,{"connection_name","a \"b\""}]), unescaped into
 * out; false when there is none. */
static bool h_rmq_connection_name(const char *props, char *out, size_t n)
{
    static const char key[] = "{\"connection_name\",\"";
    const char *p = strstr(props, key);
    size_t len = 0;

    if (!p || n == 0)
        return false;
    for (p += sizeof key - 1; *p && *p != '"'; p++) {
        char c = *p;
        if (c == '\\' && p[1]) {
            c = *++p;
            c = c == 't' ? '\t' : c == 'n' ? '\n' : c == 'r' ? '\r' : c;
        }
        if (len + 1 < n)
            out[len++] = c;
    }
    out[len] = '\0';
    return *p == '"';
}

int h_rmq_close_connections(const struct h_rmq *r, const char *name_part)
{
    const char *list[] = {"-s", "list_connections", "vhost", "pid", "client_properties", NULL};
    char *text = NULL, *line, *save = NULL, name[1024];
    int closed = 0, rc;

    if (!r || !r->vhost[0]) {
        h_log("h_rmq_close_connections", "no vhost (h_rmq_open first)");
        return -1;
    }
    rc = h_rmq_run("h_rmq_close_connections", list, &text);
    if (rc != 0) {
        h_log("h_rmq_close_connections", "rabbitmqctl list_connections failed: exit %d", rc);
        free(text);
        return -1;
    }
    /* One line per connection: vhost TAB pid TAB client_properties (tabs inside strings are
     * printed as \t). */
    for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *vhost = line, *pid = strchr(line, '\t'), *props;
        if (!pid)
            continue;
        *pid++ = '\0';
        props = strchr(pid, '\t');
        if (!props)
            continue;
        *props++ = '\0';
        if (strcmp(vhost, r->vhost) != 0)
            continue;
        if (name_part &&
            (!h_rmq_connection_name(props, name, sizeof name) || !strstr(name, name_part)))
            continue;
        const char *close[] = {"-q", "close_connection", pid, "closed by the test harness", NULL};
        rc = h_rmq_run("h_rmq_close_connections", close, NULL);
        if (rc == 0)
            closed++;
        else
            h_log("h_rmq_close_connections", "close_connection %s failed: exit %d", pid, rc);
    }
    free(text);
    return closed;
}

long h_rmq_queue_depth(const struct h_rmq *r, const char *queue)
{
    char *text = NULL, *line, *save = NULL;
    long depth = -1;
    int rc;

    if (!r || !r->vhost[0] || !queue) {
        h_log("h_rmq_queue_depth", "no vhost or queue");
        return -1;
    }
    const char *args[] = {"-s", "list_queues", "-p", r->vhost, "name", "messages", NULL};
    rc = h_rmq_run("h_rmq_queue_depth", args, &text);
    if (rc != 0) {
        h_log("h_rmq_queue_depth", "rabbitmqctl list_queues failed: exit %d", rc);
        free(text);
        return -1;
    }
    for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *tab = strrchr(line, '\t'), *end;
        if (!tab)
            continue;
        *tab = '\0';
        if (strcmp(line, queue) != 0)
            continue;
        errno = 0;
        depth = strtol(tab + 1, &end, 10);
        if (errno || end == tab + 1 || depth < 0)
            depth = -1;
        break;
    }
    free(text);
    return depth;
}

int h_rmq_delete_queue(const struct h_rmq *r, const char *queue)
{
    int rc;

    if (!r || !r->vhost[0] || !queue) {
        h_log("h_rmq_delete_queue", "no vhost or queue");
        return -1;
    }
    const char *args[] = {"-q", "delete_queue", "-p", r->vhost, queue, NULL};
    rc = h_rmq_run("h_rmq_delete_queue", args, NULL);
    if (rc != 0) {
        h_log("h_rmq_delete_queue", "rabbitmqctl delete_queue %s failed: exit %d", queue, rc);
        return -1;
    }
    return 0;
}

void h_cleanup_all(void)
{
    pid_t pids[H_MAX_PROCS];
    char datadirs[H_MAX_CLUSTERS][512];
    bool running[H_MAX_CLUSTERS];
    int np = 0, nc = 0;
    long long deadline;

    pthread_mutex_lock(&h_lock);
    if (h_owner != getpid()) { /* a forked child exiting must not stop its parent's things */
        pthread_mutex_unlock(&h_lock);
        return;
    }
    for (int i = 0; i < H_MAX_PROCS; i++)
        if (h_procs[i].pid > 0)
            pids[np++] = h_procs[i].pid;
    for (int i = 0; i < H_MAX_CLUSTERS; i++) {
        if (h_clusters[i].datadir[0]) {
            running[nc] = h_clusters[i].running;
            memcpy(datadirs[nc++], h_clusters[i].datadir, sizeof datadirs[0]);
        }
    }
    pthread_mutex_unlock(&h_lock);

    /* Programs first (they hold connections to the clusters), all at once, one shared grace. */
    for (int i = 0; i < np; i++)
        kill(pids[i], SIGTERM);
    deadline = h_now_ms() + H_CLEANUP_GRACE_MS;
    for (int i = 0; i < np; i++) {
        long long left = deadline - h_now_ms();
        h_stop(pids[i], left > 0 ? (int)left : 0);
    }
    for (int i = 0; i < nc; i++) /* a cluster that refuses to stop is left to reap.sh */
        if (!running[i] || h_pg_script_stop(datadirs[i]) == 0)
            h_unregister_cluster(datadirs[i]);

    /* The vhost last, once no program of ours is connected to it (the node itself belongs to
     * the run, not to this process). */
    pthread_mutex_lock(&h_lock);
    bool have_vhost = h_rmq_pid == getpid() && h_rmq_mine.port > 0;
    char vhost[sizeof h_rmq_mine.vhost];
    memcpy(vhost, h_rmq_mine.vhost, sizeof vhost);
    memset(&h_rmq_mine, 0, sizeof h_rmq_mine);
    pthread_mutex_unlock(&h_lock);
    if (have_vhost) {
        const char *args[] = {"-q", "delete_vhost", vhost, NULL};
        int rc = h_rmq_run("h_cleanup_all", args, NULL);
        if (rc != 0)
            h_log("h_cleanup_all", "rabbitmqctl delete_vhost %s failed: exit %d", vhost, rc);
    }
}
