/* UUID helpers: correlation ids are canonical lowercase 8-4-4-4-12 hex strings. */
#ifndef GF_UUID_H
#define GF_UUID_H

#include <stdbool.h>
#include <stddef.h>

#define GF_UUID_STRLEN 36 /* without the NUL */

/* Writes a fresh random (version 4) UUID, lowercase, NUL-terminated, into out[37]: for
 * tokens and leases, where nothing should be guessable from the id. */
void gf_uuid_generate(char out[GF_UUID_STRLEN + 1]);

/* Writes a fresh time-ordered (version 7, RFC 9562) UUID into out[37]: 48 bits of Unix time in
 * milliseconds, then 74 random bits. For ids that become primary keys (correlation ids, event
 * ids): ids made in the same millisecond land on the same B-tree page, so inserts append at the
 * right edge of the index instead of touching a random leaf of an index that outgrows memory
 * as history grows (ARCHITECTURE §5, "Ids and history"). */
void gf_uuid_generate_v7(char out[GF_UUID_STRLEN + 1]);

/* True when s (len bytes, not necessarily NUL-terminated) is a canonical UUID: 36 chars,
 * hex digits in groups 8-4-4-4-12 separated by '-', either case. */
bool gf_uuid_valid(const char *s, size_t len);

/* Copies a valid UUID lowercased into out[37]; false (out untouched) when invalid. */
bool gf_uuid_normalize(const char *s, size_t len, char out[GF_UUID_STRLEN + 1]);

#endif
