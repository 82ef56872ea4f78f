/*
 * readn_deadline.c - resock_readn: a deadline, and a count that survives every outcome.
 *
 * TLPI's and UNP's readn return -1 on error and throw away the bytes already read. Here
 * the peer sends 3 bytes of a 10-byte message and then falls silent, then a second peer
 * sends 3 bytes and resets the connection: both times *done says exactly 3.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "resock.h"
#include "check.h"

static double now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

/* A connected loopback TCP pair: fds[0] client, fds[1] server side. */
static void tcp_pair(int fds[2])
{
    struct sockaddr_in addr;
    socklen_t len = sizeof(addr);
    int lfd = socket(AF_INET, SOCK_STREAM, 0);

    CHECK(lfd >= 0);
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(bind(lfd, (struct sockaddr *) &addr, sizeof(addr)) == 0);
    CHECK(listen(lfd, 1) == 0);
    CHECK(getsockname(lfd, (struct sockaddr *) &addr, &len) == 0);
    fds[0] = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(connect(fds[0], (struct sockaddr *) &addr, sizeof(addr)) == 0);
    fds[1] = accept(lfd, NULL, NULL);
    CHECK(fds[1] >= 0);
    close(lfd);
}

int main(void)
{
    char buf[10];
    size_t done = 99;
    resock_io_opts opts;
    struct linger abort_on_close = { 1, 0 };
    int sv[2], tcp[2];
    double start, took;
    ssize_t r;

    /* 1. The peer stalls: -1/ETIMEDOUT after 100 ms, with the 3 bytes reported. */
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    CHECK(writen_sync(sv[0], "abc", 3) == 3);
    resock_io_opts_init(&opts);
    opts.timeout_ms = 100;
    start = now_ms();
    r = resock_readn(sv[1], buf, sizeof(buf), &opts, &done);
    took = now_ms() - start;
    CHECK(r == -1 && errno == ETIMEDOUT);
    CHECK(done == 3 && memcmp(buf, "abc", 3) == 0);
    CHECK(took >= 100 && took < 5000);
    printf("stalled peer: -1/ETIMEDOUT after %.0f ms, *done = %zu\n", took, done);

    /* The rest arrives later: resume at buf + done, nothing was lost. */
    CHECK(writen_sync(sv[0], "defghij", 7) == 7);
    CHECK(resock_readn(sv[1], buf + done, sizeof(buf) - done, &opts, &done) == 7);
    CHECK(memcmp(buf, "abcdefghij", 10) == 0);
    printf("resumed: \"%.10s\"\n", buf);

    /* 2. The peer resets after 3 bytes: -1/ECONNRESET, *done = 3 (TLPI would lose them). */
    tcp_pair(tcp);
    CHECK(writen_sync(tcp[1], "xyz", 3) == 3);
    CHECK(setsockopt(tcp[1], SOL_SOCKET, SO_LINGER, &abort_on_close, sizeof(abort_on_close)) == 0);
    close(tcp[1]);
    r = resock_readn(tcp[0], buf, sizeof(buf), NULL, &done);
    CHECK(r == -1 && errno == ECONNRESET && done == 3);
    printf("reset peer: -1/ECONNRESET, *done = %zu, should_reconnect = %d\n", done,
           resock_should_reconnect(errno));
    CHECK(resock_should_reconnect(ECONNRESET) == 1);

    close(sv[0]);
    close(sv[1]);
    close(tcp[0]);
    return 0;
}
