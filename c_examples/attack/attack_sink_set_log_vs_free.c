/*
 * attack_sink_set_log_vs_free.c - two things resock_set_log allows a sink to do, done at
 * once on two threads: deadlock.
 *
 * Promise (resock_set_log): "A callback may itself call resock_set_log (it does not wait
 * for its own call) and may call any other resock function." Here:
 *   - the client thread is inside the sink (its "connected to" line) and calls
 *     resock_set_log(NULL): that waits until no OTHER thread is inside the old sink;
 *   - the main thread is inside the same sink (its own dialer's "connected to" line) and
 *     calls resock_client_free(client), which waits for the client thread to end.
 * Each waits for the other for ever.
 *
 * Exit 0: both calls returned; 2: deadlock (the finding).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
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

static resock_client *client;
static pthread_t main_thread;
static atomic_int main_in_sink, client_in_sink, main_done, client_done;

static void wait_flag(atomic_int *f) {
    for (int i = 0; i < 500 && !atomic_load(f); i++)
        usleep(10000);
}

static void sink(int level, const char *msg, void *user) {
    (void)level; (void)user;
    if (strstr(msg, "connected to") == NULL)
        return;
    if (pthread_equal(pthread_self(), main_thread)) {
        if (atomic_exchange(&main_in_sink, 1))
            return;
        wait_flag(&client_in_sink);
        resock_client_free(client); /* waits for the client thread */
        atomic_store(&main_done, 1);
    } else {
        if (atomic_exchange(&client_in_sink, 1))
            return;
        wait_flag(&main_in_sink);
        resock_set_log(NULL, NULL); /* waits for main to leave the sink */
        atomic_store(&client_done, 1);
    }
}

static void on_record(const void *r, size_t n, void *u) { (void)r; (void)n; (void)u; }

static void *watchdog(void *arg) {
    (void)arg;
    sleep(8);
    printf("DEADLOCK: main in resock_client_free (done=%d), client thread in resock_set_log "
           "(done=%d), both called from the sink\n", atomic_load(&main_done),
           atomic_load(&client_done));
    fflush(stdout);
    _exit(2);
}

int main(void) {
    main_thread = pthread_self();
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(bind(lfd, (struct sockaddr *)&a, sizeof a) == 0 && listen(lfd, 16) == 0);
    socklen_t len = sizeof a;
    CHECK(getsockname(lfd, (struct sockaddr *)&a, &len) == 0);
    char port[16];
    snprintf(port, sizeof port, "%d", ntohs(a.sin_port));
    pthread_t w;
    pthread_create(&w, NULL, watchdog, NULL);
    pthread_detach(w);

    resock_set_log(sink, NULL);
    resock_client_config cc;
    resock_client_config_init(&cc);
    cc.dial.host = "127.0.0.1";
    cc.dial.port = port;
    cc.record_size = 8;
    cc.on_record = on_record;
    client = resock_client_start(&cc);
    CHECK(client != NULL);

    resock_dial_config dc;
    resock_dial_config_init(&dc);
    dc.host = "127.0.0.1";
    dc.port = port;
    resock_dialer *d = resock_dialer_new(&dc);
    CHECK(d != NULL);
    int fd = resock_dial(d); /* logs "connected to" on main: enters the sink */
    CHECK(fd >= 0);
    resock_hangup(d, fd);
    resock_dialer_free(d);
    wait_flag(&client_done);
    printf("held: main_done=%d client_done=%d\n", main_done, client_done);
    return 0;
}
