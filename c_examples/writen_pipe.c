/*
 * writen_pipe.c - resock_writen on pipes: no SIGPIPE, deadlines, and event-loop mode.
 *
 * This program leaves SIGPIPE at SIG_DFL, as C programs do, so a plain write() to a pipe
 * without a reader would kill it. writen_sync returns -1/EPIPE instead, without touching
 * the disposition or leaving a signal pending.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include "resock.h"
#include "check.h"

/* Writes to `fd` without blocking until the pipe is full; returns the bytes written. */
static size_t fill(int fd, const char *buf, size_t len)
{
    int flags = fcntl(fd, F_GETFL);
    size_t total = 0;
    ssize_t n;

    CHECK(flags != -1 && fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0);
    while ((n = write(fd, buf, len)) > 0)
        total += (size_t) n;
    CHECK(n == -1 && errno == EAGAIN);
    CHECK(fcntl(fd, F_SETFL, flags) == 0);
    return total;
}

int main(void)
{
    static char big[1 << 20];
    size_t capacity;
    struct sigaction sa;
    sigset_t pending;
    resock_io_opts opts;
    size_t done;
    int p[2];

    signal(SIGPIPE, SIG_DFL);

    /* 1. No reader: -1/EPIPE, and we are alive to say so. */
    CHECK(pipe(p) == 0);
    close(p[0]);
    CHECK(writen_sync(p[1], "hello", 5) == -1 && errno == EPIPE);
    CHECK(sigpending(&pending) == 0 && !sigismember(&pending, SIGPIPE));
    CHECK(sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL);
    printf("no reader: -1/EPIPE, SIGPIPE not raised, disposition still SIG_DFL\n");
    close(p[1]);

    /* 2. A reader that never reads: the pipe is full, the deadline ends the call. The pipe
     *    is filled first without blocking: a 50 ms deadline is not assumed to be long
     *    enough to fill it (under valgrind on a busy machine it is not). */
    CHECK(pipe(p) == 0);
    capacity = fill(p[1], big, sizeof(big));
    resock_io_opts_init(&opts);
    opts.timeout_ms = 50;
    CHECK(resock_writen(p[1], big, sizeof(big), &opts, &done) == -1 && errno == ETIMEDOUT);
    CHECK(done == 0);
    printf("full pipe (%zu bytes): -1/ETIMEDOUT, *done = %zu\n", capacity, done);

    /* 3. Event-loop mode on an O_NONBLOCK pipe: EAGAIN comes back with the count. */
    CHECK(fcntl(p[1], F_SETFL, O_NONBLOCK) == 0);
    opts.timeout_ms = -1;
    opts.flags = RESOCK_IO_RETURN_ON_EAGAIN;
    CHECK(resock_writen(p[1], big, sizeof(big), &opts, &done) == -1 && errno == EAGAIN);
    CHECK(done == 0);
    printf("nonblocking full pipe: -1/EAGAIN, *done = %zu\n", done);

    close(p[0]);
    close(p[1]);
    return 0;
}
