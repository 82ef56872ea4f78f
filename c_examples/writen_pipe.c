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

int main(void)
{
    static char big[1 << 20];
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

    /* 2. A reader that never reads: the pipe fills, the deadline ends the call. */
    CHECK(pipe(p) == 0);
    resock_io_opts_init(&opts);
    opts.timeout_ms = 50;
    CHECK(resock_writen(p[1], big, sizeof(big), &opts, &done) == -1 && errno == ETIMEDOUT);
    CHECK(done > 0 && done < sizeof(big));
    printf("full pipe: -1/ETIMEDOUT, *done = %zu (the pipe's capacity)\n", done);

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
