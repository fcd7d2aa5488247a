#include "raw_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <cmocka.h>

static int connect_with(int port, int rcv_s, int snd_s)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct timeval tv = {.tv_sec = rcv_s};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (snd_s > 0) {
        struct timeval sv = {.tv_sec = snd_s};
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &sv, sizeof sv);
    }
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    return fd;
}

int client_connect(int port)
{
    return connect_with(port, 5, 0);
}

int client_connect_timeout(int port, int seconds)
{
    return connect_with(port, seconds, seconds);
}

int client_read_answer(int fd, char *buf, size_t n, size_t *got)
{
    size_t have = 0;
    buf[0] = '\0';
    for (;;) {
        ssize_t r = recv(fd, buf + have, n - 1 - have, 0);
        if (r <= 0)
            break;
        have += (size_t)r;
        buf[have] = '\0';
        char *end = strstr(buf, "\r\n\r\n");
        if (end != NULL) {
            const char *cl = strcasestr(buf, "Content-Length:");
            size_t want = cl != NULL && cl < end ? strtoul(cl + 15, NULL, 10) : 0;
            if (have >= (size_t)(end + 4 - buf) + want)
                break;
        }
        if (have == n - 1)
            break;
    }
    if (got != NULL)
        *got = have;
    int status = 0;
    return sscanf(buf, "HTTP/1.1 %d", &status) == 1 ? status : -1;
}

void send_all(int fd, const char *s, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
        assert_true(w > 0);
        s += w;
        n -= (size_t)w;
    }
}

void send_str(int fd, const char *s)
{
    send_all(fd, s, strlen(s));
}

int client_header(const char *raw, const char *name, char *out, size_t n)
{
    int count = 0;
    size_t len = strlen(name);
    const char *end = strstr(raw, "\r\n\r\n");
    for (const char *l = strstr(raw, "\r\n"); l != NULL && (end == NULL || l < end);
         l = strstr(l, "\r\n")) {
        l += 2;
        if (strncasecmp(l, name, len) == 0 && l[len] == ':') {
            const char *v = l + len + 1;
            while (*v == ' ')
                v++;
            if (count++ == 0)
                snprintf(out, n, "%.*s", (int)strcspn(v, "\r\n"), v);
        }
    }
    return count;
}
