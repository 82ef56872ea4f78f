/*
 * attack_held.c - attacks that HELD (kept as regression probes): run after stop, joins with
 * INT_MAX timeouts, free of a client from on_disconnect with fd reuse right after, client
 * send racing free, concurrent starts. Run under valgrind by run.sh. Exit 0 = all held.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "resock.h"
#include "../check.h"

static void handler(int fd, const struct sockaddr *p, socklen_t l, void *u) {
    (void)p; (void)l; (void)u;
    char rec[8] = "abcdefgh";
    write(fd, rec, sizeof rec);
    usleep(20000);
}
static void on_record(const void *r, size_t n, void *u) { (void)r; (void)n; (void)u; }

static resock_client *client;
static atomic_int disconnects;
static void free_in_disconnect(int cls, int e, int64_t ms, void *user) {
    (void)cls; (void)e; (void)ms;
    atomic_fetch_add(&disconnects, 1);
    if (atomic_load(&disconnects) == 1) {
        resock_client_free(client);
        free(user);
    }
}

static void *sender(void *arg) {
    (void)arg;
    for (int i = 0; i < 2000; i++)
        resock_client_send(client, "x", 1);
    return NULL;
}

static void *starter(void *s) { return (void *)(intptr_t)resock_server_start(s); }

int main(void) {
    resock_server_config sc;
    resock_server_config_init(&sc);
    sc.host = "127.0.0.1";
    sc.port = "0";
    sc.handler = handler;

    /* run after stop returns 0 at once; join INT_MAX returns 0. */
    resock_server *s = resock_server_new(&sc);
    CHECK(s);
    resock_server_stop(s);
    CHECK(resock_server_run(s) == 0);
    CHECK(resock_server_join(s, INT_MAX) == 0);
    CHECK(resock_server_run(s) == -1 && errno == EBUSY);
    resock_server_free(s);

    /* two concurrent starts: exactly one wins. */
    s = resock_server_new(&sc);
    CHECK(s);
    pthread_t a, b;
    void *ra, *rb;
    pthread_create(&a, NULL, starter, s);
    pthread_create(&b, NULL, starter, s);
    pthread_join(a, &ra);
    pthread_join(b, &rb);
    CHECK((intptr_t)ra + (intptr_t)rb == -1);
    char port[16];
    snprintf(port, sizeof port, "%d", resock_server_port(s));

    /* client freed from on_disconnect; user freed there; fd numbers reused at once. */
    resock_client_config cc;
    resock_client_config_init(&cc);
    cc.dial.host = "127.0.0.1";
    cc.dial.port = port;
    cc.dial.backoff_initial_ms = 1;
    cc.dial.backoff_max_ms = 5;
    cc.record_size = 8;
    cc.on_record = on_record;
    cc.on_disconnect = free_in_disconnect;
    cc.user = malloc(64);
    client = resock_client_start(&cc);
    CHECK(client);
    for (int i = 0; i < 500 && atomic_load(&disconnects) == 0; i++)
        usleep(10000);
    CHECK(atomic_load(&disconnects) == 1);
    int p[8][2];
    for (int i = 0; i < 8; i++) {
        CHECK(pipe(p[i]) == 0);
        CHECK(write(p[i][1], "z", 1) == 1);
    }
    usleep(200000);
    CHECK(atomic_load(&disconnects) == 1);
    for (int i = 0; i < 8; i++) {
        char c;
        CHECK(read(p[i][0], &c, 1) == 1 && c == 'z');
        close(p[i][0]);
        close(p[i][1]);
    }

    /* send racing free from another thread, many times. */
    cc.on_disconnect = NULL;
    cc.user = NULL;
    for (int round = 0; round < 20; round++) {
        client = resock_client_start(&cc);
        CHECK(client);
        pthread_t t;
        pthread_create(&t, NULL, sender, NULL);
        usleep(1000 * (round % 5));
        resock_client_stop(client);
        CHECK(resock_client_join(client, INT_MAX) == 0);
        pthread_join(t, NULL); /* free only after the last call returned (the C rule) */
        resock_client_free(client);
    }
    resock_server_stop(s);
    CHECK(resock_server_join(s, -1) == 0);
    resock_server_free(s);
    printf("held: all\n");
    return 0;
}
