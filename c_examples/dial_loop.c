/*
 * dial_loop.c - the seed's _do_data_read loop rewritten with resock_dial/resock_hangup.
 *
 * The seed's loop, for comparison:
 *
 *     next:
 *         fd = socket(); connect();
 *         do { ret = readn(fd, buff, datalen); } while (ret > 0);
 *         if (fd) { close(fd); fd = -1; }
 *         goto next;
 *
 * Against a dead server it spins: connect fails at once, and it retries at once, thousands
 * of times a second. Against a server that accepts and drops at once it spins too. And
 * `if (fd)` closes fd 0 never and fd -1 always. With a dialer the loop keeps its shape, but
 * resock_dial waits out a jittered backoff (measured from each attempt's start), only a
 * connection that lived stable_after_ms resets it, connects time out, and another thread
 * can stop it all with resock_dialer_stop.
 *
 * usage: dial_loop PORT RECORDS MIN_CONNECTIONS   (a seed_server on 127.0.0.1:PORT)
 * Prints "records=R bad=B torn=T resets=X connections=C"; exits 0 if B == 0.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "resock.h"
#include "check.h"
#include "record.h"

static void log_line(int level, const char *msg, void *user)
{
    (void) user;
    fprintf(stderr, "resock[%d]: %s\n", level, msg);
}

/* A configuration that must be refused: resock_dialer_new gives NULL and EINVAL. */
static void expect_einval(const resock_dial_config *cfg, const char *what)
{
    errno = 0;
    CHECK(resock_dialer_new(cfg) == NULL && errno == EINVAL);
    printf("rejected: %s\n", what);
}

static void reject_bad_configs(void)
{
    resock_dial_config cfg;

    resock_dial_config_init(&cfg);
    expect_einval(&cfg, "NULL host");
    cfg.host = "127.0.0.1";
    cfg.port = "1";
    cfg.backoff_initial_ms = 0;
    expect_einval(&cfg, "backoff_initial_ms 0");
    resock_dial_config_init(&cfg);
    cfg.host = "127.0.0.1";
    cfg.port = "1";
    cfg.backoff_multiplier = 0.5;
    expect_einval(&cfg, "multiplier < 1");
    cfg.backoff_multiplier = 2.0;
    cfg.backoff_max_ms = cfg.backoff_initial_ms - 1;
    expect_einval(&cfg, "max < initial");
    errno = 0;
    CHECK(resock_dialer_new(NULL) == NULL && errno == EINVAL);
}

int main(int argc, char *argv[])
{
    resock_dial_config cfg;
    resock_dialer *d;
    resock_stats st;
    long want, good = 0, bad = 0, torn = 0, resets = 0;
    int min_connections, connections = 0;

    if (argc != 4) {
        fprintf(stderr, "usage: %s PORT RECORDS MIN_CONNECTIONS\n", argv[0]);
        return 2;
    }
    want = atol(argv[2]);
    min_connections = atoi(argv[3]);
    reject_bad_configs();
    resock_set_log(log_line, NULL);

    resock_dial_config_init(&cfg);
    cfg.host = "127.0.0.1";
    cfg.port = argv[1];
    cfg.backoff_initial_ms = 20;
    cfg.backoff_max_ms = 200;
    cfg.max_attempts = 200;           /* one dial gives up after 200 failed attempts */
    d = resock_dialer_new(&cfg);
    CHECK(d != NULL);

    while (good < want || connections < min_connections) {
        struct record rec;
        uint32_t seq = 0;
        ssize_t ret;
        int fd = resock_dial(d);      /* waits out the backoff; never a busy loop */

        if (fd < 0) {
            fprintf(stderr, "dial: %s\n", strerror(errno));
            return 3;
        }
        connections++;
        while ((ret = readn_sync(fd, &rec, sizeof(rec))) == (ssize_t) sizeof(rec)) {
            if (record_ok(&rec, seq))
                good++;
            else
                bad++;
            seq++;
            if (good >= want && connections >= min_connections)
                break;
        }
        if (ret == -1) {
            printf("connection %d: after %u records: %s (class %d)\n", connections, seq,
                   strerror(errno), resock_classify(errno));
            resets += resock_classify(errno) == RESOCK_CLASS_RESET;
        } else if (ret < (ssize_t) sizeof(rec)) {
            printf("connection %d: after %u records: EOF\n", connections, seq);
            torn += ret > 0;
        }
        resock_hangup(d, fd);         /* closes fd, notes how long it lived */
    }
    resock_dialer_stats(d, &st);
    CHECK(st.attempts == st.connects + st.failures);
    printf("dialer: attempts=%llu connects=%llu refused=%llu flaps=%llu\n",
           (unsigned long long) st.attempts, (unsigned long long) st.connects,
           (unsigned long long) st.refused, (unsigned long long) st.flaps);
    resock_dialer_free(d);
    resock_set_log(NULL, NULL);
    printf("records=%ld bad=%ld torn=%ld resets=%ld connections=%d\n", good, bad, torn, resets,
           connections);
    return bad == 0 ? 0 : 1;
}
