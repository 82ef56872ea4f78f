/*
 * lifecycle_stress.c - every teardown order the header allows, many times, at random
 * moments: the test that a C host can follow the lifecycle rules of resock.h and never
 * touch freed memory, leak an fd or a thread, or have resock touch an fd it gave back.
 *
 * Each cycle, with delays drawn from a seeded generator:
 *   - a record server (resock_server) runs in resock_server_run on a thread of its own,
 *     or on its own thread after resock_server_start; it is freed from another thread
 *     while the loop runs, or stopped from a handler and joined;
 *   - a client reads records and is torn down one of four ways: stop from another thread
 *     then join and free; free from inside on_record; free from the main thread while it
 *     is connected; stop from inside on_connect then join and free;
 *   - a dialer dials a dead port and is freed from another thread while resock_dial is
 *     inside (in its connect or its backoff);
 *   - a log sink is replaced while the dialer logs, and its old `user` is freed at once.
 * At the end the fd count and thread count are back at their values after the first cycle,
 * and (outside valgrind and ASan) RSS grew by less than 4 MiB.
 *
 * usage: lifecycle_stress [CYCLES [SEED]]     (defaults: 40 cycles, seed 1)
 * Prints "lifecycle stress: ok ..." and exits 0, or reports the broken promise and exits 1.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "resock.h"
#include "check.h"

#define RECORD 32

static unsigned seed;

/* 0 .. max_us-1 microseconds, from the seeded generator (main thread only). */
static unsigned draw(unsigned max_us) { return (unsigned) rand_r(&seed) % max_us; }

static void pause_us(unsigned us)
{
    struct timespec ts = { us / 1000000, (long) (us % 1000000) * 1000 };
    nanosleep(&ts, NULL);
}

static int count_dir(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *e;
    int n = 0;

    CHECK(d != NULL);
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

static long rss_kib(void)
{
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");

    CHECK(f != NULL);
    CHECK(fscanf(f, "%ld %ld", &pages, &resident) == 2);
    fclose(f);
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

/* ------------------------------------------------------------------ the server */

struct server_user {
    atomic_int stop_from_handler;       /* 1: the next handler stops the server */
    resock_server *server;
    struct server_user *retired_next;
};

/* A server freed without resock_server_join may still run handlers: their `user` is freed
 * only once every resock thread is gone (settle). */
static struct server_user *retired;

static void free_retired(void)
{
    while (retired != NULL) {
        struct server_user *next = retired->retired_next;
        free(retired);
        retired = next;
    }
}

static void record_handler(int fd, const struct sockaddr *peer, socklen_t len, void *user)
{
    struct server_user *u = user;
    char rec[RECORD];
    int i;

    (void) peer;
    (void) len;
    if (atomic_exchange(&u->stop_from_handler, 0))
        resock_server_stop(u->server);
    memset(rec, 'r', sizeof rec);
    for (i = 0; i < 50; i++)
        if (writen_sync(fd, rec, sizeof rec) != (ssize_t) sizeof rec)
            return;                     /* the client left: EPIPE, never SIGPIPE */
}

static void *run_server(void *arg)
{
    CHECK(resock_server_run(arg) == 0);
    return NULL;
}

static void *free_server(void *arg)
{
    resock_server_free(arg);
    return NULL;
}

/* ------------------------------------------------------------------ the client */

enum teardown { STOP_JOIN_FREE, FREE_IN_ON_RECORD, FREE_WHILE_CONNECTED, STOP_IN_ON_CONNECT };

struct client_user {
    enum teardown how;
    resock_client *_Atomic client;
    atomic_int records, connected, freed, callbacks_after_free;
};

static void note_callback(struct client_user *u)
{
    if (atomic_load(&u->freed))
        atomic_fetch_add(&u->callbacks_after_free, 1);
}

static int on_connect(int fd, void *user)
{
    struct client_user *u = user;

    (void) fd;
    note_callback(u);
    atomic_store(&u->connected, 1);
    if (u->how == STOP_IN_ON_CONNECT) {
        while (atomic_load(&u->client) == NULL)
            pause_us(100);
        resock_client_stop(atomic_load(&u->client));
    }
    return 0;
}

static void on_record(const void *rec, size_t len, void *user)
{
    struct client_user *u = user;

    (void) rec;
    CHECK(len == RECORD);
    note_callback(u);
    if (atomic_fetch_add(&u->records, 1) == 0 && u->how == FREE_IN_ON_RECORD) {
        while (atomic_load(&u->client) == NULL)
            pause_us(100);
        resock_client_free(atomic_load(&u->client));
        atomic_store(&u->freed, 1);
    }
}

static void on_disconnect(int cls, int errnum, int64_t lived_ms, void *user)
{
    (void) cls;
    (void) errnum;
    (void) lived_ms;
    note_callback(user);
}

static void *stop_client(void *arg)
{
    resock_client_stop(arg);
    return NULL;
}

static void client_cycle(const char *port, enum teardown how)
{
    resock_client_config cfg;
    struct client_user *u = calloc(1, sizeof *u);
    resock_client *c;
    pthread_t t;

    CHECK(u != NULL);
    u->how = how;
    resock_client_config_init(&cfg);
    cfg.dial.host = "127.0.0.1";
    cfg.dial.port = port;
    cfg.dial.backoff_initial_ms = 5;
    cfg.record_size = RECORD;
    cfg.on_connect = on_connect;
    cfg.on_record = on_record;
    cfg.on_disconnect = on_disconnect;
    cfg.user = u;
    c = resock_client_start(&cfg);
    CHECK(c != NULL);
    atomic_store(&u->client, c);
    pause_us(draw(3000));

    switch (how) {
    case STOP_JOIN_FREE:
        CHECK(pthread_create(&t, NULL, stop_client, c) == 0);
        CHECK(pthread_join(t, NULL) == 0);
        CHECK(resock_client_join(c, -1) == 0);
        resock_client_free(c);
        break;
    case FREE_IN_ON_RECORD:
        /* The server always sends records: the first one frees the client. */
        for (int i = 0; i < 60000 && !atomic_load(&u->freed); i++)
            pause_us(1000);
        CHECK(atomic_load(&u->freed));
        break;
    case FREE_WHILE_CONNECTED:
        resock_client_free(c);
        atomic_store(&u->freed, 1);
        break;
    case STOP_IN_ON_CONNECT:
        CHECK(resock_client_join(c, 60000) == 0);
        resock_client_free(c);
        break;
    }
    atomic_store(&u->freed, 1);
    CHECK(atomic_load(&u->callbacks_after_free) == 0);
    /* No callback starts after the free (even one from inside a callback): a host frees
     * `user` at once. ASan and valgrind see any later use. */
    free(u);
}

/* ------------------------------------------------------------------ the dialer */

static enum resock_state dialer_state(const resock_dialer *d)
{
    resock_stats st;

    resock_dialer_stats(d, &st);
    return st.state;
}

static void *dial_dead_port(void *arg)
{
    int fd = resock_dial(arg);

    CHECK(fd == -1 && errno == ECANCELED);
    return NULL;
}

static void dialer_cycle(const char *dead_port)
{
    resock_dial_config cfg;
    resock_dialer *d;
    pthread_t t;

    resock_dial_config_init(&cfg);
    cfg.host = "127.0.0.1";
    cfg.port = dead_port;
    cfg.backoff_initial_ms = 1 + (int) draw(20);
    d = resock_dialer_new(&cfg);
    CHECK(d != NULL);
    CHECK(pthread_create(&t, NULL, dial_dead_port, d) == 0);
    /* Free may overtake a call that is inside, never one that has not started: wait until
     * the dial shows in the state, then free at a random moment of its connects and
     * backoffs. */
    while (dialer_state(d) == RESOCK_STATE_IDLE)
        pause_us(100);
    pause_us(draw(5000));
    resock_dialer_free(d);      /* resock_dial is inside: it returns ECANCELED */
    CHECK(pthread_join(t, NULL) == 0);
}

/* ------------------------------------------------------------------ the log sink */

struct log_user {
    atomic_int lines;
};

static void count_line(int level, const char *msg, void *user)
{
    struct log_user *u = user;

    (void) level;
    CHECK(msg != NULL);
    atomic_fetch_add(&u->lines, 1);
}

/* Replaces the sink three times while the cycle's dialer logs its connect failures;
 * each old `user` is freed as soon as resock_set_log returns. */
static void *churn_log_sinks(void *arg)
{
    unsigned my_seed = (unsigned) (uintptr_t) arg;
    int i;

    for (i = 0; i < 3; i++) {
        struct log_user *u = calloc(1, sizeof *u);

        CHECK(u != NULL);
        resock_set_log(count_line, u);
        pause_us((unsigned) rand_r(&my_seed) % 3000);
        resock_set_log(NULL, NULL);
        free(u);                /* no thread is in count_line or will enter it */
    }
    return NULL;
}

/* ------------------------------------------------------------------ a cycle */

static void cycle(const char *dead_port)
{
    resock_server_config cfg;
    struct server_user *su = calloc(1, sizeof *su);
    resock_server *s;
    char port[16];
    pthread_t runner = 0, freer, logs;
    int use_run = (int) draw(2);

    resock_server_config_init(&cfg);
    cfg.host = "127.0.0.1";
    cfg.port = "0";
    cfg.handler = record_handler;
    CHECK(su != NULL);
    cfg.user = su;
    s = resock_server_new(&cfg);
    CHECK(s != NULL);
    su->server = s;
    su->retired_next = retired;
    retired = su;
    snprintf(port, sizeof port, "%d", resock_server_port(s));
    if (use_run)
        CHECK(pthread_create(&runner, NULL, run_server, s) == 0);
    else
        CHECK(resock_server_start(s) == 0);

    CHECK(pthread_create(&logs, NULL, churn_log_sinks, (void *) (uintptr_t) draw(1u << 30)) == 0);
    client_cycle(port, (enum teardown) draw(4));
    dialer_cycle(dead_port);
    CHECK(pthread_join(logs, NULL) == 0);

    if (use_run) {
        /* Free from another thread while resock_server_run is inside (a handler has run,
         * so the loop is in there: free may overtake a call inside, not one not begun). */
        resock_accept_stats st;
        int poke = resock_connect("127.0.0.1", port, 10000);

        CHECK(poke >= 0);
        do {
            pause_us(100);
            resock_server_stats(s, &st);
        } while (st.accepted == 0);
        close(poke);
        CHECK(pthread_create(&freer, NULL, free_server, s) == 0);
        CHECK(pthread_join(freer, NULL) == 0);
        CHECK(pthread_join(runner, NULL) == 0);
    } else {
        /* Stop from a handler, then join and free. */
        resock_client_config ccfg;
        struct client_user u = { 0 };
        resock_client *c;

        atomic_store(&su->stop_from_handler, 1);
        resock_client_config_init(&ccfg);
        ccfg.dial.host = "127.0.0.1";
        ccfg.dial.port = port;
        ccfg.dial.max_attempts = 1;
        ccfg.record_size = RECORD;
        ccfg.on_record = on_record;
        ccfg.user = &u;
        c = resock_client_start(&ccfg);
        CHECK(c != NULL);
        CHECK(resock_server_join(s, -1) == 0);
        resock_client_stop(c);
        CHECK(resock_client_join(c, -1) == 0);
        resock_client_free(c);
        resock_server_free(s);
    }
}

/* Waits (10 s at most) until this thread is the process's only one: a client freed from
 * its own callback ends on its own right after the callback, every other resock thread
 * is gone when its join or free returned. */
static void settle(void)
{
    int i;

    for (i = 0; i < 1000 && count_dir("/proc/self/task") > 1; i++)
        pause_us(10000);
}

int main(int argc, char **argv)
{
    int cycles = argc > 1 ? atoi(argv[1]) : 40;
    int fds0, threads0, fds1, threads1, i;
    long rss0, rss1;
    /* valgrind and ASan keep freed memory in quarantine: RSS says nothing there. */
#if defined(__SANITIZE_ADDRESS__)
    int quarantine = 1;
#else
    int quarantine = getenv("RESOCK_UNDER_VALGRIND") != NULL;
#endif
    unsigned first_seed = argc > 2 ? (unsigned) atoi(argv[2]) : 1;
    char dead_port[16];
    struct sockaddr_in addr = { .sin_family = AF_INET };
    socklen_t addrlen = sizeof addr;
    int reserved = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    seed = first_seed;
    /* A port that refuses: bound (so no server of ours can get it) but not listening. */
    CHECK(reserved >= 0);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(bind(reserved, (struct sockaddr *) &addr, sizeof addr) == 0);
    CHECK(getsockname(reserved, (struct sockaddr *) &addr, &addrlen) == 0);
    snprintf(dead_port, sizeof dead_port, "%d", ntohs(addr.sin_port));

    cycle(dead_port);           /* the first cycle allocates what stays allocated */
    settle();
    free_retired();
    fds0 = count_dir("/proc/self/fd");
    threads0 = count_dir("/proc/self/task");
    rss0 = rss_kib();
    for (i = 1; i < cycles; i++)
        cycle(dead_port);
    settle();
    free_retired();
    fds1 = count_dir("/proc/self/fd");
    threads1 = count_dir("/proc/self/task");
    rss1 = rss_kib();
    printf("fds %d -> %d, threads %d -> %d, rss %ld -> %ld KiB\n", fds0, fds1, threads0,
           threads1, rss0, rss1);
    CHECK(fds1 == fds0);
    CHECK(threads1 == threads0);
    CHECK(quarantine || rss1 - rss0 < 4096);
    close(reserved);
    printf("lifecycle stress: ok, %d cycles, seed %u\n", cycles, first_seed);
    return 0;
}
