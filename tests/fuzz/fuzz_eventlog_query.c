/* Fuzz target: the query string of eventlog's GET /eventlog/events (query_parse,
 * eventlog/query.c), fed as eventlog/api.c feeds it: every parameter in order, duplicates and
 * unknown names included, none when there are more than 8 or a value holds a NUL (api.c
 * answers 400 itself then). Input: the decoded parameters, "k=v&k&k=" with any bytes. */
#include <stdint.h>
#include <string.h>

#include "eventlog.h"
#include "fuzz.h"

#define API_ARGS_MAX 8 /* eventlog/api.c: run_events */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_param ps[FUZZ_PARAMS_MAX];
    size_t n = fuzz_params(data, size, ps, FUZZ_PARAMS_MAX);
    bool refused = n > API_ARGS_MAX;
    struct query_arg args[API_ARGS_MAX];
    for (size_t i = 0; i < n && !refused; i++) {
        if (ps[i].value != NULL && strlen(ps[i].value) != ps[i].value_len)
            refused = true;
        else
            args[i] = (struct query_arg){ps[i].key, ps[i].value};
    }
    /* EVENTLOG_LIST_CAP's bounds and default. */
    static const int64_t caps[] = {1, 1000, 100000};
    for (size_t c = 0; c < sizeof caps / sizeof caps[0] && !refused; c++) {
        struct events_query q;
        struct api_err err = {0};
        if (query_parse(args, n, caps[c], &q, &err) == GF_OK) {
            FUZZ_CHECK(q.limit >= 1 && q.limit <= caps[c]);
            FUZZ_CHECK(q.after >= -1);
            FUZZ_CHECK(q.user_id >= 0 && q.user_id <= QUERY_USER_MAX);
            FUZZ_CHECK(!q.has_correlation_id || fuzz_uuid_lower(q.correlation_id));
        } else {
            FUZZ_CHECK(fuzz_code_ok(err.code) && fuzz_json_text_ok(err.message));
        }
    }
    fuzz_params_free(ps, n);
    return 0;
}
