/* UUIDs: random v4 generation (libuuid) and strict validation of the canonical form. */
#include "gf/uuid.h"

#include <ctype.h>
#include <uuid/uuid.h>

void gf_uuid_generate(char out[GF_UUID_STRLEN + 1])
{
    uuid_t u;
    uuid_generate_random(u);
    uuid_unparse_lower(u, out);
}

bool gf_uuid_valid(const char *s, size_t len)
{
    if (s == NULL || len != GF_UUID_STRLEN)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return false;
        } else if (!isxdigit((unsigned char)s[i])) {
            return false;
        }
    }
    return true;
}

bool gf_uuid_normalize(const char *s, size_t len, char out[GF_UUID_STRLEN + 1])
{
    if (!gf_uuid_valid(s, len))
        return false;
    for (size_t i = 0; i < len; i++)
        out[i] = (char)tolower((unsigned char)s[i]);
    out[len] = '\0';
    return true;
}
