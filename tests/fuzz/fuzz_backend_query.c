/* Fuzz target: the query parameters of the backend's GET routes, as the handlers read them
 * (api.c): ?limit=&after= of every list (validate_page), ?userId= of /user/gxp
 * (validate_query_id), ?correlationId= of /gxp/transaction (validate_query_uuid) and the paging of
 * /gxp/get-all (validate_gxp_page). Input: the
 * parameters as libmicrohttpd hands them on, decoded: "k=v&k&k=" with any bytes (NULs too). */
#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "validate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_param ps[FUZZ_PARAMS_MAX];
    size_t n = fuzz_params(data, size, ps, FUZZ_PARAMS_MAX);
    const char *limit = fuzz_param_get(ps, n, "limit");
    const char *after = fuzz_param_get(ps, n, "after");

    /* BACKEND_LIST_CAP's bounds and default. */
    static const int64_t caps[] = {1, 10000, 1000000};
    for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++) {
        struct be_err err = {0};
        struct be_page page;
        if (validate_page(limit, after, caps[i], &page, &err) == GF_OK) {
            FUZZ_CHECK(page.limit >= 1 && page.limit <= caps[i]);
            FUZZ_CHECK(page.after >= 0 && page.after <= VALIDATE_ID_MAX);
        } else {
            FUZZ_CHECK(fuzz_code_ok(err.code) && fuzz_json_text_ok(err.message));
        }
    }

    struct be_err err = {0};
    int64_t user_id = 0;
    if (validate_query_id(fuzz_param_get(ps, n, "userId"), "userId", &user_id, &err) == GF_OK)
        FUZZ_CHECK(user_id >= 1 && user_id <= VALIDATE_ID_MAX);
    else
        FUZZ_CHECK(fuzz_code_ok(err.code) && fuzz_json_text_ok(err.message));

    char cid[GF_UUID_STRLEN + 1];
    err = (struct be_err){0};
    if (validate_query_uuid(fuzz_param_get(ps, n, "correlationId"), "correlationId", cid, &err) ==
        GF_OK)
        FUZZ_CHECK(fuzz_uuid_lower(cid));
    else
        FUZZ_CHECK(fuzz_code_ok(err.code) && fuzz_json_text_ok(err.message));

    struct be_gxp_page gp;
    err = (struct be_err){0};
    const char *after_balance = fuzz_param_get(ps, n, "afterBalance");
    const char *order = fuzz_param_get(ps, n, "order");
    if (validate_gxp_page(limit, after, after_balance, order, &gp, &err) == GF_OK) {
        FUZZ_CHECK(gp.limit >= 0 && gp.limit <= UINT32_MAX);
        FUZZ_CHECK(limit == NULL || gp.limit >= 1);
        FUZZ_CHECK(gp.after_tx >= 0 && gp.after_tx <= VALIDATE_ID_MAX);
        FUZZ_CHECK(gp.after_balance >= 0 && gp.after_balance <= UINT32_MAX);
        FUZZ_CHECK(gp.paged == (limit || after || after_balance || order));
    } else {
        FUZZ_CHECK(fuzz_code_ok(err.code) && fuzz_json_text_ok(err.message));
    }

    fuzz_params_free(ps, n);
    return 0;
}
