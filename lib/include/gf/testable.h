/* GF_TESTABLE marks a helper that is static in the programs yet reachable from a unit test:
 * the test compiles the helper's file into itself with GF_TESTABLE defined empty (every
 * gf_unit_test target does, tests/CMakeLists.txt), which gives the helper external linkage,
 * and declares the helper's prototype itself. So no header is widened for tests [curl's
 * UNITTEST]. A file that marks a helper used before its definition declares it first with
 * GF_TESTABLE too. */
#ifndef GF_TESTABLE_H
#define GF_TESTABLE_H

#ifndef GF_TESTABLE
#define GF_TESTABLE static
#endif

#endif
