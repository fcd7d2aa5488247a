/* Helpers shared by the benchmarks (bench_util.c). */
#ifndef GF_BENCH_UTIL_H
#define GF_BENCH_UTIL_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct h_pg;

int env_int(const char *name, int def);               /* an integer knob from the environment */
void die(const char *what) __attribute__((noreturn)); /* stops what the harness started, exits 1 */
void sql(PGconn *c, const char *q);                   /* runs q or dies */
long long sql_ll(PGconn *c, const char *q); /* the first field as a number, -1 on failure */
int cmp_i64(const void *a, const void *b);
int cmp_double(const void *a, const void *b);
double median(double *v, int n);             /* sorts v */
int64_t pct(int64_t *v, size_t n, double p); /* v sorted */
double proc_cpu_ms(pid_t pid, bool waited_children);
double cpu_ms(pid_t pid);           /* user + system CPU of a process, ms */
double children_cpu_ms(pid_t ppid); /* a postmaster with its backends, live or gone */
pid_t postmaster_pid(const struct h_pg *pg);
long rss_kib(pid_t pid, const char *key); /* "VmHWM:" or "VmRSS:" of /proc/PID/status */

#endif
