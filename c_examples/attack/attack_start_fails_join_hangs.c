/*
 * attack_start_fails_join_hangs.c - resock_server_start fails (no thread can be created)
 * while another thread is inside resock_server_join.
 *
 * The lifecycle says resock_server_join "waits for the loop wherever it runs"; a join on a
 * server whose loop never started returns at once. resock_server_start marks the loop
 * running before it spawns the thread and, when the spawn fails (EAGAIN), puts the state
 * back without waking the joiners: a join that saw "running" in that window sleeps for
 * ever, although no loop exists and none ever will.
 *
 * Thread creation is made to fail for resock only with RUST_MIN_STACK (set by run.sh) so
 * that Rust's thread::spawn asks for an impossible stack; C's pthreads are unaffected.
 * Exit 0: every join returned; 2: a join hung (the finding).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "resock.h"
#include "../check.h"

static resock_server *server;
static atomic_int done, joins, in_join;

static void handler(int fd, const struct sockaddr *p, socklen_t l, void *u) {
    (void)fd; (void)p; (void)l; (void)u;
}

static void *joiner(void *arg) {
    (void)arg;
    while (!atomic_load(&done)) {
        atomic_store(&in_join, 1);
        resock_server_join(server, 0);
        atomic_store(&in_join, 0);
        atomic_fetch_add(&joins, 1);
    }
    return NULL;
}

int main(void) {
    resock_server_config cfg;
    resock_server_config_init(&cfg);
    cfg.host = "127.0.0.1";
    cfg.port = "0";
    cfg.handler = handler;
    server = resock_server_new(&cfg);
    CHECK(server != NULL);
    int rc = resock_server_start(server);
    if (rc == 0) {
        printf("SKIP: thread creation did not fail (RUST_MIN_STACK not honoured?)\n");
        return 0;
    }
    printf("resock_server_start: -1 errno %d (%s) as set up\n", errno, strerror(errno));
    pthread_t t;
    CHECK(pthread_create(&t, NULL, joiner, NULL) == 0);
    int failed = 0;
    struct timespec start, now;

    /* Bounded by time, not count: 3 s of failed starts racing joins, however busy the
     * machine is. */
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (int i = 0; i < 200000; i++) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - start.tv_sec >= 3)
            break;
        if (resock_server_start(server) != 0)
            failed++;
        if (i % 1000 == 0 && atomic_load(&in_join)) {
            int before = atomic_load(&joins);
            usleep(1000);
            if (atomic_load(&joins) == before && atomic_load(&in_join)) {
                /* Check again, generously. */
                usleep(2000000);
                if (atomic_load(&joins) == before) {
                    printf("HANG: resock_server_join(s, 0) has not returned for 2 s after %d failed "
                           "starts; no accept loop exists (state rolled back without a wake-up)\n",
                           failed);
                    fflush(stdout);
                    _exit(2);
                }
            }
        }
    }
    atomic_store(&done, 1);
    pthread_join(t, NULL);
    printf("held: %d joins returned across %d failed starts\n", atomic_load(&joins), failed);
    resock_server_free(server);
    return 0;
}
