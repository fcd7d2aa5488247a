/* A raw TCP client for the HTTP server's tests (test_http.c, test_http_guard.c, test_http_api.c,
 * and the integration test http_pause_test.c): bytes exactly as a test writes them, which no
 * HTTP library would send. Fails the test (cmocka)
 * when the socket calls fail. */
#ifndef GF_TEST_RAW_CLIENT_H
#define GF_TEST_RAW_CLIENT_H

#include <stddef.h>

/* A connection to 127.0.0.1:port with a 5 s receive timeout. */
int client_connect(int port);
/* The same with receive and send timeouts of seconds. */
int client_connect_timeout(int port, int seconds);
/* Reads one answer into buf (NUL-terminated): until the peer closes, the read times out, buf is
 * full, or a whole head and its Content-Length bytes arrived. Its status, or -1 when no whole
 * status line came; *got (when not NULL) is the bytes received. */
int client_read_answer(int fd, char *buf, size_t n, size_t *got);
/* How many headers named name (any case) the answer's head in raw has (it ends at the blank
 * line or the string's end); the first one's value into out (when there is one). */
int client_header(const char *raw, const char *name, char *out, size_t n);
/* Sends all n bytes of s (or the string s). */
void send_all(int fd, const char *s, size_t n);
void send_str(int fd, const char *s);

#endif
