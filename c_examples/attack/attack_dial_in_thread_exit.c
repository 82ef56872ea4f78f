/*
 * attack_dial_in_thread_exit.c - resock called from a pthread key destructor (thread-exit
 * cleanup, a common C idiom) on a thread that logged before, with a log sink set.
 *
 * Promises: every export runs inside a panic boundary ("a panic never unwinds into C");
 * "Bad input gets a clear errno/status and nothing lost"; resock_dial: EBUSY only "while
 * another thread is inside resock_dial". The log path keeps a thread-local list of sinks
 * being called; at thread exit Rust's thread-locals are destroyed before pthread key
 * destructors run, so a log line from a destructor panics ("cannot access a Thread Local
 * Storage value during or after destruction"): the panic text goes to the host's stderr,
 * the dial that had connected returns -1/EIO (the connection is lost), and the dialer's
 * "a dial is in progress" flag is never cleared, so every later resock_dial on that
 * dialer, from any thread, fails with EBUSY for ever.
 *
 * Exit 0: held; 2: the finding (printed).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "resock.h"
#include "../check.h"

static resock_dialer *dialer;
static pthread_key_t key;
static int dtor_fd = -2, dtor_errno;

static void sink(int level, const char *msg, void *user) {
    (void)level; (void)msg; (void)user;
}

static void at_thread_exit(void *value) {
    (void)value;
    dtor_fd = resock_dial(dialer); /* logs "connected to ..." */
    dtor_errno = errno;
}

static void *worker(void *arg) {
    (void)arg;
    int fd = resock_dial(dialer); /* logs once on this thread */
    CHECK(fd >= 0);
    CHECK(resock_hangup(dialer, fd) == 0);
    pthread_setspecific(key, (void *)1);
    return NULL;
}

int main(void) {
    resock_set_log(sink, NULL);
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(bind(lfd, (struct sockaddr *)&a, sizeof a) == 0 && listen(lfd, 16) == 0);
    socklen_t len = sizeof a;
    CHECK(getsockname(lfd, (struct sockaddr *)&a, &len) == 0);
    char port[16];
    snprintf(port, sizeof port, "%d", ntohs(a.sin_port));

    resock_dial_config cfg;
    resock_dial_config_init(&cfg);
    cfg.host = "127.0.0.1";
    cfg.port = port;
    cfg.backoff_initial_ms = 1;
    cfg.backoff_max_ms = 1;
    dialer = resock_dialer_new(&cfg);
    CHECK(dialer != NULL);
    CHECK(pthread_key_create(&key, at_thread_exit) == 0);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, worker, NULL) == 0);
    pthread_join(t, NULL);

    int later = resock_dial(dialer);
    int later_errno = errno;
    printf("dial from the thread-exit destructor: %d (errno %d %s)\n", dtor_fd, dtor_errno,
           strerror(dtor_errno));
    printf("a later dial from main: %d (errno %d %s)\n", later, later_errno,
           strerror(later_errno));
    int broken = dtor_fd < 0 || later < 0;
    if (later >= 0)
        resock_hangup(dialer, later);
    if (dtor_fd >= 0)
        resock_hangup(dialer, dtor_fd);
    resock_dialer_free(dialer);
    if (broken) {
        printf("BROKEN: a dial from a thread-exit destructor failed and/or left the dialer "
               "refusing every later dial\n");
        return 2;
    }
    printf("held\n");
    return 0;
}
