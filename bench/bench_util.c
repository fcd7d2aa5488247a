/* Helpers shared by the benchmarks: environment knobs, SQL, statistics, and the CPU time
 * and memory of processes read from /proc. */
#include "bench_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

int env_int(const char *name, int def)
{
    const char *v = getenv(name);
    return v && *v ? atoi(v) : def;
}

void die(const char *what)
{
    fprintf(stderr, "gxp_bench: %s\n", what);
    h_cleanup_all();
    exit(1);
}

void sql(PGconn *c, const char *q)
{
    PGresult *r = PQexec(c, q);
    ExecStatusType t = PQresultStatus(r);
    if (t != PGRES_COMMAND_OK && t != PGRES_TUPLES_OK) {
        fprintf(stderr, "SQL failed: %s\n%s\n", PQresultErrorMessage(r), q);
        PQclear(r);
        die("sql");
    }
    PQclear(r);
}

long long sql_ll(PGconn *c, const char *q)
{
    PGresult *r = PQexec(c, q);
    long long v =
        PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) ? atoll(PQgetvalue(r, 0, 0)) : -1;
    PQclear(r);
    return v;
}

int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double median(double *v, int n)
{
    if (n <= 0)
        return 0;
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int64_t pct(int64_t *v, size_t n, double p)
{
    if (n == 0)
        return 0;
    size_t i = (size_t)(p * (double)(n - 1) + 0.5);
    return v[i];
}

/* CPU time (user + system) of one process, ms; with waited_children, also that of its
 * children it has waited for (a postmaster's exited backends). -1 when unknown. */
double proc_cpu_ms(pid_t pid, bool waited_children)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    if (!p)
        return -1;
    unsigned long ut = 0, st = 0;
    long cut = 0, cst = 0;
    /* fields after ") ": state ppid pgrp session tty tpgid flags minflt cminflt majflt
     * cmajflt utime stime cutime cstime */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu %ld %ld", &ut, &st, &cut,
               &cst) != 4)
        return -1;
    double ticks = (double)(ut + st) + (waited_children ? (double)(cut + cst) : 0);
    return ticks * 1000.0 / (double)sysconf(_SC_CLK_TCK);
}

double cpu_ms(pid_t pid)
{
    return proc_cpu_ms(pid, false);
}

/* CPU time of a postmaster and all its backends and workers, live or exited. */
double children_cpu_ms(pid_t ppid)
{
    double sum = 0;
    FILE *p = popen("ps -e -o pid=,ppid=", "r");
    if (!p)
        return -1;
    int pid, pp;
    while (fscanf(p, "%d %d", &pid, &pp) == 2)
        if (pp == ppid)
            sum += cpu_ms(pid);
    pclose(p);
    return sum + proc_cpu_ms(ppid, true);
}

pid_t postmaster_pid(const struct h_pg *pg)
{
    char path[600];
    snprintf(path, sizeof path, "%s/postmaster.pid", pg->datadir);
    FILE *f = fopen(path, "r");
    int pid = -1;
    if (f) {
        if (fscanf(f, "%d", &pid) != 1)
            pid = -1;
        fclose(f);
    }
    return (pid_t)pid;
}

long rss_kib(pid_t pid, const char *key)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long v = -1;
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, key, strlen(key)) == 0)
            v = atol(line + strlen(key) + 1);
    fclose(f);
    return v;
}
