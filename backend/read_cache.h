/* The read cache (read_cache.c): GET /user and GET /item answered from memory while their table
 * has not changed, checked on every request, so that a change committed before a request is
 * always in its answer (read-your-writes, across replicas), at the cost of one version probe
 * shared by the requests that arrive together. */
#ifndef BACKEND_READ_CACHE_H
#define BACKEND_READ_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "backend.h"

enum read_table { READ_USERS, READ_ITEMS, READ_TABLES };

struct read_cache;

/* A cache keeping answers of at most max_bytes in all (0: no cache, NULL, which
 * read_cache_list takes as "always read the table"). NULL also when out of memory: the cache is
 * an optimisation, never a reason not to serve. */
struct read_cache *read_cache_new(size_t max_bytes);
void read_cache_free(struct read_cache *rc);
/* Its figures on GET /metrics: answers served from memory, read from the table, and probes. */
void read_cache_register_metrics(struct read_cache *rc);

/* The list of table t (store_list_users or store_list_items: same page, key, answer and
 * errors), from memory when the answer kept for this page was read at the version that the
 * table has now, by a probe sent after this call began. */
enum gf_status read_cache_list(struct backend_app *app, enum read_table t,
                               const struct be_page *page, const char *key, char **out, size_t *len,
                               struct be_err *err) GF_MUSTCHECK;

#endif
