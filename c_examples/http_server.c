/*
 * http_server.c - an `ab`-compatible server on resock_server_*: each request gets a fixed
 * small HTTP response; HTTP/1.0 connections close after it unless the client asked for
 * "Connection: Keep-Alive" (what `ab -k` sends); HTTP/1.1 ones stay open unless
 * "Connection: close".
 *
 * The handler reads the whole request head before answering: closing a socket with
 * unread data sends an RST, and `ab` reports that as "Connection reset by peer (104)".
 * The response leaves in one writev_sync, so Nagle never holds the body back.
 *
 * With --per-request, idle keep-alive connections wait in resock's epoll (one thread for
 * all of them) and a pool thread serves each request as it arrives; without it, each
 * connection holds a thread for its whole life, as in the seed.
 *
 * usage: http_server [--per-request] PORT [REQUESTS]
 *        (stops after REQUESTS requests; default: never)
 */
#define _GNU_SOURCE
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "resock.h"
#include "check.h"

#define BODY "Hello, world\n"

struct app {
    resock_server *server;
    long max_requests;               /* 0: serve for ever */
    atomic_long requests;
};

/* Whether a request head asks to keep the connection open (HTTP/1.1 unless
 * "Connection: close"; HTTP/1.0 only with "Connection: Keep-Alive"). */
static int wants_keep_alive(const char *head, int http11)
{
    const char *c = strcasestr(head, "\nConnection:");

    if (c == NULL)
        return http11;
    c += strlen("\nConnection:");
    return strncasecmp(c + strspn(c, " \t"), "close", 5) != 0;
}

/* Reads one request head without reading past it, so a pipelined next request stays in
 * the socket. Fast path: the whole head has arrived — peek it, find the blank line, then
 * consume exactly that much (2 syscalls). Slow path, for a head still arriving: a line at
 * a time with readline_sync. Returns 1 to keep the connection, 0 to close it after the
 * answer, -1 at EOF or on error. */
static int read_request(int fd, int *http11)
{
    char head[2048];
    ssize_t n = recv(fd, head, sizeof(head) - 1, MSG_PEEK);
    char *end;

    if (n <= 0)
        return -1;
    head[n] = '\0';
    if ((end = strstr(head, "\r\n\r\n")) != NULL) {
        size_t len = (size_t) (end - head) + 4;
        char consumed[sizeof(head)];
        int keep;

        end[2] = '\0';             /* this head only, not a pipelined next one */
        *http11 = strstr(head, "HTTP/1.1\r\n") != NULL;
        keep = wants_keep_alive(head, *http11);
        return readn_sync(fd, consumed, len) == (ssize_t) len ? keep : -1;
    } else {
        char line[1024];
        int keep_alive = -1, first = 1;

        while ((n = readline_sync(fd, line, sizeof(line))) > 0) {
            if (first) {
                *http11 = strstr(line, "HTTP/1.1") != NULL;
                first = 0;
            } else if (strcmp(line, "\r\n") == 0 || strcmp(line, "\n") == 0) {
                return keep_alive >= 0 ? keep_alive : *http11;
            } else if (strncasecmp(line, "Connection:", 11) == 0) {
                keep_alive = strstr(line + 11, "lose") == NULL; /* "close" / "Close" */
            }
        }
        return -1;
    }
}

/* Reads one request and answers it: 1 if the connection may stay open, 0 if it must
 * close, -1 at EOF or on error. */
static int serve_one(int fd, struct app *app)
{
    char head[160];
    struct iovec iov[2];
    int keep, http11 = 0;
    long served;

    if ((keep = read_request(fd, &http11)) < 0)
        return -1;
    snprintf(head, sizeof(head),
             "HTTP/1.%d 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n%s\r\n",
             http11, strlen(BODY), keep ? "Connection: Keep-Alive\r\n" : "Connection: close\r\n");
    iov[0].iov_base = head;
    iov[0].iov_len = strlen(head);
    iov[1].iov_base = (void *) BODY;
    iov[1].iov_len = strlen(BODY);
    if (writev_sync(fd, iov, 2) < 0)
        return -1;
    served = atomic_fetch_add(&app->requests, 1) + 1;
    if (app->max_requests > 0 && served >= app->max_requests)
        resock_server_stop(app->server);
    return keep;
}

/* Thread per connection (the seed's model): the handler loops over the keep-alive
 * requests and owns the thread meanwhile; resock closes the fd when it returns. */
static void handle(int fd, const struct sockaddr *peer, socklen_t peerlen, void *user)
{
    (void) peer;
    (void) peerlen;
    while (serve_one(fd, user) > 0)
        ;
}

/* Thread per request: called when the connection is readable, serves one request, and
 * hands an idle keep-alive connection back to resock's epoll instead of waiting in a read. */
static int handle_request(int fd, const struct sockaddr *peer, socklen_t peerlen, void *user)
{
    (void) peer;
    (void) peerlen;
    return serve_one(fd, user) > 0 ? RESOCK_REQUEST_KEEP : RESOCK_REQUEST_CLOSE;
}

int main(int argc, char *argv[])
{
    static struct app app;
    resock_server_config cfg;
    resock_accept_stats st;

    int per_request = argc > 1 && strcmp(argv[1], "--per-request") == 0;

    argv += per_request;
    argc -= per_request;
    if (argc < 2) {
        fprintf(stderr, "usage: http_server [--per-request] PORT [REQUESTS]\n");
        return 2;
    }
    app.max_requests = argc > 2 ? atol(argv[2]) : 0;
    resock_server_config_init(&cfg);
    cfg.port = argv[1];
    if (per_request)
        cfg.request_handler = handle_request;
    else
        cfg.handler = handle;
    cfg.user = &app;
    app.server = resock_server_new(&cfg);
    CHECK(app.server != NULL);
    printf("listening on %d\n", resock_server_port(app.server));
    fflush(stdout);
    CHECK(resock_server_run(app.server) == 0);
    resock_server_join(app.server, 5000);
    resock_server_stats(app.server, &st);
    printf("requests=%ld accepted=%llu peak=%llu emfile=%llu errors=%llu shed=%llu\n",
           atomic_load(&app.requests), (unsigned long long) st.accepted,
           (unsigned long long) st.peak, (unsigned long long) st.emfile,
           (unsigned long long) st.accept_errors, (unsigned long long) st.shed);
    resock_server_free(app.server);
    return 0;
}
