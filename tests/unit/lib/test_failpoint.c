/* Failpoints (lib/src/failpoint.c): an armed kill ends the process as kill -9 would, a pause
 * sleeps and counts, a wait holds the thread until its file exists, a probability fires about
 * that often and repeats under a seed, and an invalid GF_FAILPOINTS arms nothing.
 * GF_FAILPOINTS is read once per process, so each case runs in a child of its own. */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "gf/clock.h"
#include "gf/failpoint.h"

/* Runs fn in a child with GF_FAILPOINTS=spec (NULL: unset) and GF_FAILPOINTS_SEED=seed (NULL:
 * unset); its wait status. What fn writes to fd reaches *out (up to n bytes). */
static int in_child(const char *spec, const char *seed, int (*fn)(int fd), char *out, size_t n)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        if (spec)
            setenv("GF_FAILPOINTS", spec, 1);
        else
            unsetenv("GF_FAILPOINTS");
        if (seed)
            setenv("GF_FAILPOINTS_SEED", seed, 1);
        else
            unsetenv("GF_FAILPOINTS_SEED");
        _exit(fn(p[1]));
    }
    close(p[1]);
    size_t got = 0;
    ssize_t r;
    while (out != NULL && got + 1 < n && (r = read(p[0], out + got, n - 1 - got)) > 0)
        got += (size_t)r;
    if (out != NULL)
        out[got] = '\0';
    close(p[0]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return status;
}

static int hit_kill_point(int fd)
{
    (void)fd;
    gf_failpoint("fp.other"); /* not armed: nothing */
    gf_failpoint("fp.kill");
    return 3; /* not reached when armed */
}

static void an_armed_kill_ends_the_process_as_kill_9_would(void **state)
{
    (void)state;
    int st = in_child("fp.kill=kill", NULL, hit_kill_point, NULL, 0);
    assert_true(WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), SIGKILL);
    /* Unarmed, or another point armed: the process goes on. */
    st = in_child(NULL, NULL, hit_kill_point, NULL, 0);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 3);
    st = in_child("fp.elsewhere=kill", NULL, hit_kill_point, NULL, 0);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 3);
}

static int pause_twice(int fd)
{
    (void)fd;
    int64_t t0 = gf_mono_ms();
    gf_failpoint("fp.pause");
    gf_failpoint("fp.pause");
    int64_t took = gf_mono_ms() - t0;
    if (took < 2 * 80 || took > 2000)
        return 1;
    return gf_failpoint_hits("fp.pause") == 2 && gf_failpoint_hits("fp.none") == 0 ? 0 : 2;
}

static void a_pause_sleeps_its_time_and_counts_its_hits(void **state)
{
    (void)state;
    int st = in_child("fp.x=kill@0.001,fp.pause=pause:80", NULL, pause_twice, NULL, 0);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

static int init_verdict(int fd)
{
    (void)fd;
    if (gf_failpoints_init())
        return 10;
    gf_failpoint("a"); /* nothing may be armed */
    return gf_failpoint_hits("a") == 0 ? 0 : 11;
}

static void an_invalid_spec_is_refused_and_arms_nothing(void **state)
{
    (void)state;
    static const char *const bad[] = {"a=bogus", "a=pause",        "a=kill@2",   "=kill",
                                      "a",       "a=pause:-1",     "a=kill:0",   "a=pause:5@x",
                                      "a=kill,", "a=kill,b",       "a=pause:1x", "a=wait",
                                      "a=wait:", "a=wait:rel/path"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int st = in_child(bad[i], NULL, init_verdict, NULL, 0);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            fail_msg("GF_FAILPOINTS=%s was not refused (status %d)", bad[i], st);
    }
}

/* The path a wait point waits for (set by the parent before the fork). */
static char wait_path[128];

static int wait_until_released(int fd)
{
    int64_t t0 = gf_mono_ms();
    gf_failpoint("fp.wait");
    dprintf(fd, "%lld", (long long)(gf_mono_ms() - t0));
    return gf_failpoint_hits("fp.wait") == 1 ? 0 : 1;
}

static void *release_later(void *arg)
{
    (void)arg;
    usleep(300 * 1000);
    FILE *f = fopen(wait_path, "w");
    if (f != NULL)
        fclose(f);
    return NULL;
}

static void a_wait_holds_the_thread_until_its_file_exists(void **state)
{
    (void)state;
    char dir[] = "/tmp/gf-fp-XXXXXX", spec[200], out[32];
    assert_non_null(mkdtemp(dir));
    snprintf(wait_path, sizeof wait_path, "%s/go", dir);
    snprintf(spec, sizeof spec, "fp.wait=wait:%s", wait_path);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, release_later, NULL), 0);
    assert_int_equal(in_child(spec, NULL, wait_until_released, out, sizeof out), 0);
    pthread_join(th, NULL);
    long long waited = atoll(out);
    if (waited < 250 || waited > 5000)
        fail_msg("the wait point held the thread %lld ms, not until its file appeared (300 ms)",
                 waited);
    /* The file is there already: the point passes at once. */
    assert_int_equal(in_child(spec, NULL, wait_until_released, out, sizeof out), 0);
    assert_true(atoll(out) < 250);
    unlink(wait_path);
    rmdir(dir);
}

/* 2,000 draws at p = 0.5: which fired, as a string of 0 and 1 (the first 64) and the count. */
static int draw_pattern(int fd)
{
    char bits[80];
    unsigned long before = 0;
    for (int i = 0; i < 2000; i++) {
        gf_failpoint("fp.coin");
        unsigned long now = gf_failpoint_hits("fp.coin");
        if (i < 64)
            bits[i] = now > before ? '1' : '0';
        before = now;
    }
    bits[64] = '\0';
    dprintf(fd, "%s %lu", bits, before);
    return 0;
}

static void a_probability_fires_that_often_and_repeats_under_a_seed(void **state)
{
    (void)state;
    char a[128], b[128], c[128];
    assert_int_equal(in_child("fp.coin=pause:0@0.5", "42", draw_pattern, a, sizeof a), 0);
    assert_int_equal(in_child("fp.coin=pause:0@0.5", "42", draw_pattern, b, sizeof b), 0);
    assert_int_equal(in_child("fp.coin=pause:0@0.5", "43", draw_pattern, c, sizeof c), 0);
    assert_string_equal(a, b);     /* the same seed, the same draws */
    assert_string_not_equal(a, c); /* another seed, other draws */
    unsigned long hits = strtoul(strchr(a, ' ') + 1, NULL, 10);
    if (hits < 850 || hits > 1150)
        fail_msg("p = 0.5 fired %lu times in 2000", hits);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(an_armed_kill_ends_the_process_as_kill_9_would),
        cmocka_unit_test(a_pause_sleeps_its_time_and_counts_its_hits),
        cmocka_unit_test(an_invalid_spec_is_refused_and_arms_nothing),
        cmocka_unit_test(a_wait_holds_the_thread_until_its_file_exists),
        cmocka_unit_test(a_probability_fires_that_often_and_repeats_under_a_seed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
