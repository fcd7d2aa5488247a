/* Fuzz target: the request headers and path segment the services parse: If-Match
 * (validate_if_match, PATCH /item/:id), Idempotency-Key (validate_idempotency_key, POSTs), the
 * :id of /item/:id (lib's gf_http_path_id) and the correlation id of X-Correlation-Id and of gRPC's
 * x-correlation-id metadata (gf_uuid_normalize, lib/src/http.c and grpc_server.c). Input: one
 * header value; each parser gets it. */
#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "gf/http_api.h"
#include "gf/uuid.h"
#include "validate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *h = fuzz_strndup(data, size); /* HTTP headers reach the handler as C strings */
    size_t len = strlen(h);

    int64_t version = -1;
    if (validate_if_match(h, &version))
        FUZZ_CHECK(version >= 0);

    if (validate_idempotency_key(h)) {
        FUZZ_CHECK(len >= 1 && len <= VALIDATE_KEY_MAX);
        for (size_t i = 0; i < len; i++)
            FUZZ_CHECK(h[i] >= 0x20 && h[i] <= 0x7e);
    }

    int64_t id = 0;
    if (gf_http_path_id(h, &id))
        FUZZ_CHECK(id >= 1 && id <= VALIDATE_ID_MAX);

    char cid[GF_UUID_STRLEN + 1];
    if (gf_uuid_normalize(h, len, cid)) /* the HTTP header */
        FUZZ_CHECK(fuzz_uuid_lower(cid));
    /* gRPC metadata: a slice of exactly size bytes, not NUL-terminated. */
    uint8_t *slice = fuzz_alloc(size);
    if (size > 0)
        memcpy(slice, data, size);
    if (gf_uuid_normalize((const char *)slice, size, cid))
        FUZZ_CHECK(fuzz_uuid_lower(cid) && gf_uuid_valid((const char *)slice, size));
    free(slice);
    free(h);
    return 0;
}
