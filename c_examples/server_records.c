/*
 * server_records.c - the seed's server main, rewritten on resock_server_*.
 *
 * The seed's version:
 *
 *     fd = socket(); bind(); listen();
 *     while (1) {
 *         new_fd = accept();
 *         pthread_create(&tid, &attr, _do_data_write, (void *) new_fd);
 *     }
 *
 * Here resock owns the loop: the backlog is the kernel's maximum (a burst is queued, not
 * reset), accept errors are retried or backed off instead of ending the loop or spinning
 * on EMFILE, each connection runs on a pooled thread (at most max_connections at once),
 * and another thread can stop it all. _do_data_write is the seed's, kept as a legacy
 * handler that closes its own fd (handler_closes_fd = 1).
 *
 * usage: server_records PORT RECORDS CONNECTIONS [torn]   (the protocol of seed_server.c)
 */
#define _GNU_SOURCE
#include <linux/sockios.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "resock.h"
#include "check.h"
#include "record.h"

struct app {
    resock_server *server;
    long records;
    int connections, torn;
    atomic_int started;
};

/* A crash after `records` records: half a record more, then an RST once the client has
 * everything before it (an abortive close discards what is still queued). */
static void crash(int fd, uint32_t conn, uint32_t seq)
{
    const struct timespec ms = { 0, 1000 * 1000 };
    struct linger abort_on_close = { 1, 0 };
    struct record rec;
    int unacked = 1, waits;

    record_fill(&rec, conn, seq);
    writen_sync(fd, &rec, sizeof(rec) / 2);
    for (waits = 0; waits < 5000 && unacked > 0; waits++) {
        if (ioctl(fd, SIOCOUTQ, &unacked) < 0)
            break;
        if (unacked > 0)
            nanosleep(&ms, NULL);
    }
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &abort_on_close, sizeof(abort_on_close));
}

static void _do_data_write(int fd, const struct sockaddr *peer, socklen_t peerlen, void *user)
{
    struct app *app = user;
    int conn = atomic_fetch_add(&app->started, 1);
    struct record rec;
    long i;

    (void) peer;
    (void) peerlen;
    if (conn + 1 >= app->connections)
        resock_server_stop(app->server);      /* the last one: stop accepting */
    for (i = 0; i < app->records; i++) {
        record_fill(&rec, (uint32_t) conn, (uint32_t) i);
        if (writen_sync(fd, &rec, sizeof(rec)) != (ssize_t) sizeof(rec))
            break;
    }
    if (i == app->records && app->torn)
        crash(fd, (uint32_t) conn, (uint32_t) i);
    close(fd);                                /* legacy: the handler closes its fd */
}

int main(int argc, char *argv[])
{
    static struct app app;
    resock_server_config cfg;
    resock_accept_stats st;

    if (argc < 4) {
        fprintf(stderr, "usage: %s PORT RECORDS CONNECTIONS [torn]\n", argv[0]);
        return 2;
    }
    app.records = atol(argv[2]);
    app.connections = atoi(argv[3]);
    app.torn = argc > 4 && strcmp(argv[4], "torn") == 0;

    resock_server_config_init(&cfg);
    cfg.host = "127.0.0.1";
    cfg.port = argv[1];
    cfg.handler = _do_data_write;
    cfg.handler_closes_fd = 1;
    cfg.user = &app;
    app.server = resock_server_new(&cfg);
    CHECK(app.server != NULL);
    printf("listening on %d\n", resock_server_port(app.server));
    fflush(stdout);

    CHECK(resock_server_run(app.server) == 0);      /* until a handler stops it */
    CHECK(resock_server_join(app.server, 10000) == 0);
    resock_server_stats(app.server, &st);
    printf("served %llu connections (peak %llu at once)\n", (unsigned long long) st.accepted,
           (unsigned long long) st.peak);
    resock_server_free(app.server);
    return 0;
}
