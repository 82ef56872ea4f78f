/*
 * writev_readline.c - a header and a body in one writev_sync, read back with
 * readline_sync and readn_sync on the same fd.
 *
 * Two writes (header, then body) on a Nagle socket stall ~40 ms on the peer's delayed
 * ACK; writev sends both in one go. readline_sync never reads past the newline, so the
 * body that follows is still there for readn_sync: no hidden buffer to lose it in (UNP's
 * readline keeps a static one). A datagram socket carries records, not a byte stream:
 * readline_sync and readn_sync refuse it before a byte moves.
 */
#define _GNU_SOURCE
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "resock.h"
#include "check.h"

int main(void)
{
    const char header[] = "LENGTH 11\n";
    const char body[] = "hello world";
    struct iovec iov[2];
    char line[64], got[32];
    resock_io_opts opts;
    size_t done = 0;
    int sv[2], dg[2], len;

    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    iov[0].iov_base = (void *) header;
    iov[0].iov_len = strlen(header);
    iov[1].iov_base = (void *) body;
    iov[1].iov_len = strlen(body);
    CHECK(writev_sync(sv[0], iov, 2) == (ssize_t) (strlen(header) + strlen(body)));
    CHECK(iov[0].iov_len == strlen(header));   /* the caller's array is left alone */

    CHECK(readline_sync(sv[1], line, sizeof(line)) == (ssize_t) strlen(header));
    CHECK(strcmp(line, header) == 0);
    CHECK(sscanf(line, "LENGTH %d", &len) == 1 && len == 11);
    CHECK(readn_sync(sv[1], got, (size_t) len) == len);
    CHECK(memcmp(got, body, (size_t) len) == 0);
    printf("header %.9s, body \"%.11s\"\n", line, got);

    /* resock_writev reports its count too, and resock_readline takes a deadline. */
    CHECK(resock_writev(sv[0], iov, 1, NULL, &done) == (ssize_t) strlen(header) && done == 10);
    resock_io_opts_init(&opts);
    opts.timeout_ms = 1000;
    CHECK(resock_readline(sv[1], line, sizeof(line), &opts, &done) == 10 && done == 10);
    CHECK(writen_sync(sv[0], "no newline", 10) == 10);
    opts.timeout_ms = 30;
    CHECK(resock_readline(sv[1], line, sizeof(line), &opts, &done) == -1 && errno == ETIMEDOUT);
    CHECK(done == 10 && strcmp(line, "no newline") == 0);
    printf("readline deadline: -1/ETIMEDOUT with \"%s\" kept\n", line);

    /* EOF: the line so far, errno 0; then 0. */
    close(sv[0]);
    errno = 1234;
    CHECK(readline_sync(sv[1], line, sizeof(line)) == 0 && errno == 0);
    close(sv[1]);

    CHECK(socketpair(AF_UNIX, SOCK_DGRAM, 0, dg) == 0);
    CHECK(writen_sync(dg[0], "one\ntwo\n", 8) == 8);   /* one datagram */
    errno = 0;
    CHECK(readline_sync(dg[1], line, sizeof(line)) == -1 && errno == EPROTOTYPE);
    CHECK(readn_sync(dg[1], got, 4) == -1 && errno == EPROTOTYPE);
    CHECK(recv(dg[1], line, sizeof(line), 0) == 8);   /* still queued, whole */
    printf("datagram socket: -1/EPROTOTYPE, the datagram still queued\n");
    close(dg[0]);
    close(dg[1]);
    return 0;
}
