/* Fuzz target: what gf (cli/) makes of a server's answer: the body parsed as cli/http.c parses
 * it, then the formatter of one command (cli/format.c), writing to /dev/null. A wrong column
 * width would pad forever (a timeout), a bad cell a crash. Input: one digit choosing the
 * formatter (0 users, 1 items, 2 marketplace, 3 user items, 4 gxp get-all, 5 events,
 * 6 created, 7 gxp added, 8 bought, 9 user gxp, then trace, refusal, text, raw), then the
 * body. The trace reads the transaction and the events from the same document. */
#include <stdint.h>
#include <string.h>

#include "cli.h"
#include "fuzz.h"

#define NFORMATS 14

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static FILE *out;
    if (out == NULL && (out = fopen("/dev/null", "w")) == NULL)
        abort();
    if (size < 1)
        return 0;
    char *body = fuzz_strndup(data + 1, size - 1); /* cli/http.c: NUL-terminated */
    json_t *j = json_loadb(body, size - 1, JSON_DECODE_ANY, NULL);
    switch ((unsigned char)(data[0] - '0') % NFORMATS) {
    case 0:
        format_users(j, out);
        break;
    case 1:
        format_items(j, out);
        break;
    case 2:
        format_marketplace_items(j, out);
        break;
    case 3:
        format_user_items(j, out);
        break;
    case 4:
        format_gxp_all(j, out);
        break;
    case 5:
        format_events(j, out);
        break;
    case 6:
        format_created("user", "userId", j, out);
        break;
    case 7:
        format_gxp_added(1, 2, j, out);
        break;
    case 8:
        format_bought(1, 2, j, out);
        break;
    case 9:
        format_user_gxp(1, j, out);
        break;
    case 10:
        format_trace(j, j, "the event log did not answer", out);
        break;
    case 11:
        format_refusal(400, j, out);
        break;
    case 12:
        format_text(body, out);
        break;
    default:
        format_raw(body, size - 1, out);
        break;
    }
    json_decref(j);
    free(body);
    return 0;
}
