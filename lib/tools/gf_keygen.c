/* gf-keygen: writes a new Ed25519 key pair for the services' access tokens (gf/auth.h) and
 * prints its kid, the name tokens signed with it carry. */
#include <stdio.h>
#include <string.h>

#include "gf/auth.h"
#include "gf/log.h"

static const char usage[] =
    "usage: gf-keygen PRIVATE.pem PUBLIC.pem\n"
    "Writes a new Ed25519 key pair: the private key (mode 0600) signs access tokens, the public\n"
    "key (0644) joins the key directory of every service that verifies them. Existing files\n"
    "are never overwritten. Prints the key's kid.\n";

int main(int argc, char **argv)
{
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        fputs(usage, stdout);
        return 0;
    }
    if (argc != 3 || argv[1][0] == '-' || argv[2][0] == '-') {
        fputs(usage, stderr);
        return 64; /* EX_USAGE */
    }
    gf_log_init("gf-keygen", GF_LOG_INFO);
    enum gf_status st = gf_auth_keygen(argv[1], argv[2]);
    if (st != GF_OK) {
        fprintf(stderr, "gf-keygen: no key pair written (%s)\n", gf_status_str(st));
        return 1;
    }
    /* The kid as every service will compute it: by loading the new key. */
    char err[512];
    struct gf_auth_keys *k =
        gf_auth_keys_load(NULL, argv[1], "gf-keygen", "gf-keygen", err, sizeof err);
    if (k == NULL) {
        fprintf(stderr, "gf-keygen: %s\n", err);
        return 1;
    }
    printf("%s\n", gf_auth_signing_kid(k));
    gf_auth_keys_free(k);
    return 0;
}
