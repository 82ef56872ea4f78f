/*
 * seed_client.c - the seed's client data thread (_do_data_read), made real.
 *
 * The seed's loop connects, reads fixed-size records with readn() while they come whole,
 * and on any error closes and reconnects (`goto next`). Its bugs, fixed here:
 *   - `if (fd)` treats fd 0 as "no socket" and -1 as "open": we test `fd >= 0`;
 *   - a dead server made it reconnect in a busy loop: we pause between attempts and give
 *     up after a bound (resock's dialer does real backoff; this keeps the seed's shape);
 *   - readn is resock's readn_sync: a short count means EOF (errno 0) mid-record, -1 an
 *     error such as ECONNRESET; either way the partial record is discarded, never used.
 *
 * usage: seed_client PORT RECORDS MIN_CONNECTIONS
 * Reads until RECORDS intact records arrived over at least MIN_CONNECTIONS connections,
 * then prints "records=R bad=B torn=T resets=X connections=C" and exits 0 if B == 0.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "resock.h"
#include "record.h"

#define MAX_ATTEMPTS 500

static int connect_loopback(int port)
{
    struct sockaddr_in addr;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return -1;
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons((uint16_t) port);
    if (connect(fd, (struct sockaddr *) &addr, sizeof(addr)) < 0) {
        int saved = errno;

        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

int main(int argc, char *argv[])
{
    const struct timespec pause = { 0, 20 * 1000 * 1000 };
    long want, good = 0, bad = 0, torn = 0, resets = 0;
    int port, min_connections, connections = 0, attempts = 0, on = 1;

    if (argc != 4) {
        fprintf(stderr, "usage: %s PORT RECORDS MIN_CONNECTIONS\n", argv[0]);
        return 2;
    }
    port = atoi(argv[1]);
    want = atol(argv[2]);
    min_connections = atoi(argv[3]);

    while (good < want || connections < min_connections) {
        struct record rec;
        uint32_t seq = 0;
        ssize_t ret;
        int fd;

        /* next: */
        fd = connect_loopback(port);
        if (fd < 0) {
            if (++attempts > MAX_ATTEMPTS) {
                fprintf(stderr, "client: giving up: %s\n", strerror(errno));
                return 3;
            }
            nanosleep(&pause, NULL);
            continue;
        }
        connections++;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));

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
            if (resock_classify(errno) == RESOCK_CLASS_RESET)
                resets++;
        } else if (ret >= 0 && ret < (ssize_t) sizeof(rec)) {
            printf("connection %d: after %u records: EOF%s\n", connections, seq,
                   ret > 0 ? " inside a record (discarded)" : "");
            if (ret > 0)
                torn++;
        }
        if (fd >= 0) {          /* the seed wrote `if (fd)` */
            close(fd);
            fd = -1;
        }
    }
    printf("records=%ld bad=%ld torn=%ld resets=%ld connections=%d\n", good, bad, torn, resets,
           connections);
    return bad == 0 ? 0 : 1;
}
