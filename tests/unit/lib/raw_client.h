/* A raw TCP client for the HTTP server's unit tests (test_http.c, test_http_guard.c): bytes
 * exactly as a test writes them, which no HTTP library would send. Fails the test (cmocka)
 * when the socket calls fail. */
#ifndef GF_TEST_RAW_CLIENT_H
#define GF_TEST_RAW_CLIENT_H

#include <stddef.h>

/* A connection to 127.0.0.1:port with a 5 s receive timeout. */
int client_connect(int port);
/* Sends all n bytes of s (or the string s). */
void send_all(int fd, const char *s, size_t n);
void send_str(int fd, const char *s);

#endif
