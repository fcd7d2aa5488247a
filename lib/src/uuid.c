/* UUIDs: random v4 and time-ordered v7 generation (libuuid's randomness) and strict validation
 * of the canonical form. */
#include "gf/uuid.h"

#include <ctype.h>
#include <stdint.h>
#include <time.h>
#include <uuid/uuid.h>

void gf_uuid_generate(char out[GF_UUID_STRLEN + 1])
{
    uuid_t u;
    uuid_generate_random(u);
    uuid_unparse_lower(u, out);
}

void gf_uuid_generate_v7(char out[GF_UUID_STRLEN + 1])
{
    uuid_t u;
    uuid_generate_random(u); /* the random bits; the time, version and variant go over them */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t ms = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
    for (int i = 0; i < 6; i++)
        u[i] = (unsigned char)(ms >> (8 * (5 - i)));
    u[6] = (unsigned char)(0x70 | (u[6] & 0x0f)); /* version 7 */
    u[8] = (unsigned char)(0x80 | (u[8] & 0x3f)); /* variant 10 */
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
