/* Clocks, sleeping that a stop flag can cut short, jittered back-off, ISO-8601 output. */
#include "gf/clock.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int64_t clock_us(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t gf_mono_us(void)
{
    return clock_us(CLOCK_MONOTONIC);
}
int64_t gf_mono_ms(void)
{
    return clock_us(CLOCK_MONOTONIC) / 1000;
}
int64_t gf_wall_us(void)
{
    return clock_us(CLOCK_REALTIME);
}

bool gf_sleep_ms(int64_t ms, const atomic_bool *stop)
{
    int64_t end = gf_mono_ms() + ms;
    for (;;) {
        if (stop && atomic_load(stop))
            return false;
        int64_t left = end - gf_mono_ms();
        if (left <= 0)
            return true;
        if (left > 50)
            left = 50;
        struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)left * 1000000L};
        nanosleep(&ts, NULL);
    }
}

struct gf_deadline gf_deadline_in_ms(int64_t ms)
{
    return (struct gf_deadline){gf_mono_us() + ms * 1000};
}

int64_t gf_deadline_left_ms(struct gf_deadline d)
{
    int64_t left = d.at_us - gf_mono_us();
    return left > 0 ? (left + 999) / 1000 : 0;
}

bool gf_deadline_passed(struct gf_deadline d)
{
    return gf_mono_us() >= d.at_us;
}

/* now (on clock id) plus what is left of d, cut to ms when ms >= 0. */
static struct timespec abs_ts(clockid_t id, struct gf_deadline d, int64_t ms)
{
    int64_t left_us = d.at_us - gf_mono_us();
    if (left_us < 0)
        left_us = 0;
    if (ms >= 0 && ms * 1000 < left_us)
        left_us = ms * 1000;
    struct timespec now;
    clock_gettime(id, &now);
    int64_t ns = (int64_t)now.tv_nsec + (left_us % 1000000) * 1000;
    return (struct timespec){.tv_sec = now.tv_sec + (time_t)(left_us / 1000000) +
                                       (time_t)(ns / 1000000000),
                             .tv_nsec = (long)(ns % 1000000000)};
}

struct timespec gf_deadline_mono_ts(struct gf_deadline d, int64_t ms)
{
    return abs_ts(CLOCK_MONOTONIC, d, ms);
}

struct timespec gf_deadline_real_ts(struct gf_deadline d, int64_t ms)
{
    return abs_ts(CLOCK_REALTIME, d, ms);
}

int gf_cond_init_mono(pthread_cond_t *cv)
{
    pthread_condattr_t ca;
    int rc = pthread_condattr_init(&ca);
    if (rc != 0)
        return rc;
    rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    if (rc == 0)
        rc = pthread_cond_init(cv, &ca);
    pthread_condattr_destroy(&ca);
    return rc;
}

void gf_backoff_init(struct gf_backoff *b, int64_t initial_ms, int64_t max_ms)
{
    b->initial_ms = initial_ms > 0 ? initial_ms : 1;
    b->max_ms = max_ms >= b->initial_ms ? max_ms : b->initial_ms;
    b->current_ms = b->initial_ms;
}

int64_t gf_backoff_next(struct gf_backoff *b)
{
    /* Jitter in [base/2, base] so that replicas that failed together retry apart. */
    int64_t base = b->current_ms;
    int64_t half = base / 2;
    int64_t delay = half + (int64_t)(gf_rand_unit() * (double)(half + 1));
    if (delay < 1)
        delay = 1;
    b->current_ms = base * 2 > b->max_ms ? b->max_ms : base * 2;
    return delay;
}

void gf_backoff_reset(struct gf_backoff *b)
{
    b->current_ms = b->initial_ms;
}

/* Writes v as n decimal digits (zero-padded). */
static void put_digits(char *p, int64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        p[i] = (char)('0' + v % 10);
        v /= 10;
    }
}

/* Lists answer one timestamp per row, so this is on the hot path: no gmtime_r (time zone
 * machinery) and no printf; the calendar is computed directly (the days-to-civil algorithm of
 * H. Hinnant, proleptic Gregorian, as gmtime_r). Years outside 0..9999 take the slow path. */
void gf_iso8601_ms(int64_t epoch_us, char out[25])
{
    int64_t secs = epoch_us / 1000000;
    int64_t rem = epoch_us % 1000000;
    if (rem < 0) {
        rem += 1000000;
        secs -= 1;
    }
    int64_t days = secs / 86400, sod = secs % 86400;
    if (sod < 0) {
        sod += 86400;
        days -= 1;
    }
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int64_t day = doy - (153 * mp + 2) / 5 + 1;
    int64_t month = mp < 10 ? mp + 3 : mp - 9;
    int64_t year = yoe + era * 400 + (month <= 2);
    if (year < 0 || year > 9999) {
        time_t t = (time_t)secs;
        struct tm tm;
        gmtime_r(&t, &tm);
        char buf[80];
        snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(rem / 1000));
        memcpy(out, buf, 24);
        out[24] = '\0';
        return;
    }
    memcpy(out, "0000-00-00T00:00:00.000Z", 25);
    put_digits(out, year, 4);
    put_digits(out + 5, month, 2);
    put_digits(out + 8, day, 2);
    put_digits(out + 11, sod / 3600, 2);
    put_digits(out + 14, sod / 60 % 60, 2);
    put_digits(out + 17, sod % 60, 2);
    put_digits(out + 20, rem / 1000, 3);
}

double gf_rand_unit(void)
{
    static _Thread_local uint64_t x;
    if (x == 0)
        x = ((uint64_t)clock_us(CLOCK_MONOTONIC) << 17) ^ (uint64_t)(uintptr_t)&x ^
            0x9e3779b97f4a7c15u;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    return (double)((x * 0x2545f4914f6cdd1du) >> 11) / (double)(1ull << 53);
}
