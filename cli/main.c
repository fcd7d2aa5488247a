/* gf: the command-line client of the backend's HTTP API (SPEC §7).
 * The story: parse the command line → help, version, or the login for the URL (GF_TOKEN or the
 * token store) and the command → its exit code (0 ok, 1 the server refused, 2 usage, 3 cannot
 * connect). */
#include <stdlib.h>

#include <curl/curl.h>

#include "cli.h"

int main(int argc, char **argv)
{
    struct cli_inv inv = {.out = stdout, .err = stderr};
    char why[512];
    if (cli_parse(argc, argv, getenv("GF_URL"), getenv("GF_EVENTLOG_URL"), &inv, why, sizeof why) !=
        CLI_OK) {
        fprintf(stderr, "gf: %s\nTry 'gf%s%s --help'.\n", why, inv.cmd != NULL ? " " : "",
                inv.cmd != NULL ? inv.cmd->name : "");
        return CLI_USAGE;
    }
    if (inv.version) {
        printf("gf %s\n", CLI_VERSION);
        return CLI_OK;
    }
    if (inv.help) {
        if (inv.cmd != NULL)
            cli_command_usage(inv.cmd, stdout);
        else
            cli_usage(stdout);
        return CLI_OK;
    }
    char refused[4400];
    if (cli_login_load(inv.url, getenv("GF_TOKEN"), &inv.login, refused, sizeof refused) !=
        CLI_OK) {
        fprintf(stderr, "gf: %s\n", refused);
        return CLI_REFUSED;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "gf: cannot initialise libcurl\n");
        cli_login_cleanup(&inv.login);
        return CLI_UNREACHABLE;
    }
    int rc = inv.cmd->run(&inv);
    curl_global_cleanup();
    cli_login_cleanup(&inv.login);
    return rc;
}
