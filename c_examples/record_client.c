/*
 * record_client.c - the seed's client data thread as a resock_client in record mode.
 *
 * The library's thread connects, reads 64-byte records with readn semantics, calls
 * on_record for each whole one (a torn record is never delivered), and reconnects with
 * backoff whenever the connection ends. main() only waits, then stops the client from its
 * own thread; resock_client_join guarantees no callback runs afterwards.
 *
 * usage: record_client PORT RECORDS MIN_CONNECTIONS   (a seed_server on 127.0.0.1:PORT)
 * Prints "records=R bad=B torn=0 resets=X connections=C"; exits 0 if B == 0.
 */
#define _GNU_SOURCE
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "resock.h"
#include "check.h"
#include "record.h"

struct state {
    atomic_long good, bad;
    atomic_int connections;
    uint32_t seq;                     /* touched only on the client thread */
};

static int on_connect(int fd, void *user)
{
    struct state *s = user;

    (void) fd;
    s->seq = 0;                       /* the server numbers records per connection */
    atomic_fetch_add(&s->connections, 1);
    return 0;
}

static void on_record(const void *rec, size_t len, void *user)
{
    struct state *s = user;

    CHECK(len == sizeof(struct record));
    if (record_ok(rec, s->seq))
        atomic_fetch_add(&s->good, 1);
    else
        atomic_fetch_add(&s->bad, 1);
    s->seq++;
}

static void on_disconnect(int cls, int errnum, int64_t lived_ms, void *user)
{
    struct state *s = user;

    printf("connection %d: after %u records: %s (class %d, lived %lld ms)\n",
           atomic_load(&s->connections), s->seq, errnum ? strerror(errnum) : "EOF", cls,
           (long long) lived_ms);
}

int main(int argc, char *argv[])
{
    const struct timespec tick = { 0, 5 * 1000 * 1000 };
    static struct state s;
    resock_client_config cfg;
    resock_client *c;
    resock_stats st;
    long want;
    int min_connections, ticks;

    if (argc != 4) {
        fprintf(stderr, "usage: %s PORT RECORDS MIN_CONNECTIONS\n", argv[0]);
        return 2;
    }
    want = atol(argv[2]);
    min_connections = atoi(argv[3]);

    resock_client_config_init(&cfg);
    cfg.dial.host = "127.0.0.1";
    cfg.dial.port = argv[1];
    cfg.dial.backoff_initial_ms = 20;
    cfg.dial.backoff_max_ms = 200;
    cfg.record_size = sizeof(struct record);
    cfg.on_connect = on_connect;
    cfg.on_record = on_record;
    cfg.on_disconnect = on_disconnect;
    cfg.user = &s;

    /* record mode without on_record is refused */
    cfg.on_record = NULL;
    CHECK(resock_client_start(&cfg) == NULL && errno == EINVAL);
    cfg.on_record = on_record;

    c = resock_client_start(&cfg);
    CHECK(c != NULL);
    for (ticks = 0; atomic_load(&s.good) < want || atomic_load(&s.connections) < min_connections;
         ticks++) {
        CHECK(ticks < 6000);          /* 30 s: the test's server is long done by then */
        nanosleep(&tick, NULL);
    }
    resock_client_stop(c);
    CHECK(resock_client_join(c, 10000) == 0);
    resock_client_stats(c, &st);
    CHECK(st.attempts == st.connects + st.failures && st.state == RESOCK_STATE_STOPPED);
    printf("records=%ld bad=%ld torn=0 resets=%llu connections=%d\n", atomic_load(&s.good),
           atomic_load(&s.bad), (unsigned long long) st.resets, atomic_load(&s.connections));
    resock_client_free(c);
    return atomic_load(&s.bad) == 0 ? 0 : 1;
}
