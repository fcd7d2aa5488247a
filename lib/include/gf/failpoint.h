/* Failpoints: named places in the protocol where a test or the chaos run can make a process
 * pause or die, so that every window of the transaction protocol can be hit on purpose (a
 * kill between prepare and local commit, between commit and answer, inside
 * ResolveTransaction, between a publish and its mark, ...).
 *
 * They are compiled into every build and off unless the environment variable GF_FAILPOINTS
 * names them when the process starts:
 *
 *     GF_FAILPOINTS="buy.after_prepare=kill:0.05,relay.after_publish=pause:3000"
 *
 * Each entry is NAME=ACTION[:ARG][@PROBABILITY]:
 *   kill         the process dies at once by SIGKILL, as kill -9 would do (no atexit, no flush)
 *   kill:P       the same with probability P (0..1) each time the point is reached
 *   pause:MS     the calling thread sleeps MS milliseconds (holding whatever it holds)
 *   pause:MS@P   the same with probability P
 *   wait:PATH    the calling thread waits (holding whatever it holds) until the file PATH (an
 *                absolute path under 256 bytes, no ',' or '@') exists, at most 120 s: a test
 *                releases it exactly when the race it stages is in place, instead of
 *                guessing a pause long enough for a loaded machine
 * An invalid GF_FAILPOINTS is reported once at start and ignored as a whole. A disabled point
 * costs one relaxed atomic load. GF_FAILPOINTS_SEED (an integer) seeds the probability draws,
 * so that a run can be replayed (per thread, in the order threads first draw); without it they
 * are seeded from the clock. */
#ifndef GF_FAILPOINT_H
#define GF_FAILPOINT_H

#include <stdbool.h>

/* Reads GF_FAILPOINTS (once; later calls do nothing). Called by gf_service_start; a program
 * that does not use it may call it itself. false when the variable is set but invalid. */
bool gf_failpoints_init(void);

/* The failpoint called name: does what GF_FAILPOINTS says for it, or nothing. name is a
 * string literal of the form "<area>.<place>". */
void gf_failpoint(const char *name);

/* How many times the failpoint called name fired (for tests). */
unsigned long gf_failpoint_hits(const char *name);

#endif
