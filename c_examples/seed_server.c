/*
 * seed_server.c - the seed's server, made real.
 *
 * The seed's pseudo-code: socket(), bind(), listen(), then for ever accept() and
 * pthread_create() a thread that sends data (_do_data_write) and closes the socket when a
 * send fails. This is that program, with the seed's holes filled:
 *   - the thread sends with writen_sync() from resock: every byte or -1/errno, and never
 *     SIGPIPE when the client is gone (a plain send() would kill this whole server);
 *   - the thread closes its socket on every path (the seed leaked it on success);
 *   - accept() errors that concern one connection (EINTR, ECONNABORTED) do not end the loop.
 *
 * usage: seed_server PORT RECORDS CONNECTIONS [torn]
 *   PORT 0 picks a free port; the port in use is printed as "listening on PORT".
 *   Each connection gets RECORDS checksummed records (record.h), then a FIN. With "torn",
 *   it gets half a record more and an RST instead (SO_LINGER {1, 0}): the crash a client
 *   must survive without accepting a torn record.
 *   The server exits after CONNECTIONS connections (the tests then restart it).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "resock.h"
#include "record.h"

#define MAX_CONNECTIONS 64

struct conn {
    int fd;
    uint32_t id;
    long records;
    int torn;
};

static void *_do_data_write(void *arg)
{
    struct conn *c = arg;
    struct record rec;
    long i;

    for (i = 0; i < c->records; i++) {
        record_fill(&rec, c->id, (uint32_t) i);
        if (writen_sync(c->fd, &rec, sizeof(rec)) != (ssize_t) sizeof(rec)) {
            fprintf(stderr, "server: connection %u: write: %s\n", c->id, strerror(errno));
            break;
        }
    }
    if (i == c->records && c->torn) {
        const struct timespec ms = { 0, 1000 * 1000 };
        struct linger abort_on_close = { 1, 0 };
        int unacked = 1, waits;

        record_fill(&rec, c->id, (uint32_t) i);
        writen_sync(c->fd, &rec, sizeof(rec) / 2);
        /* An abortive close discards what is still queued to send: wait (a bounded time)
         * until the client has acknowledged everything, so the crash tears exactly the
         * last record. */
        for (waits = 0; waits < 5000 && unacked > 0; waits++) {
            if (ioctl(c->fd, SIOCOUTQ, &unacked) < 0)
                break;
            if (unacked > 0)
                nanosleep(&ms, NULL);
        }
        setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &abort_on_close, sizeof(abort_on_close));
    }
    close(c->fd);
    return NULL;
}

int main(int argc, char *argv[])
{
    struct sockaddr_in addr;
    socklen_t len = sizeof(addr);
    pthread_t tid[MAX_CONNECTIONS];
    struct conn conns[MAX_CONNECTIONS];
    int fd, on = 1, served = 0, i, connections;
    long records;

    if (argc < 4) {
        fprintf(stderr, "usage: %s PORT RECORDS CONNECTIONS [torn]\n", argv[0]);
        return 2;
    }
    records = atol(argv[2]);
    connections = atoi(argv[3]);
    if (connections < 1 || connections > MAX_CONNECTIONS) {
        fprintf(stderr, "CONNECTIONS must be 1..%d\n", MAX_CONNECTIONS);
        return 2;
    }

    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        perror("socket");
        return 1;
    }
    /* A restarted server must rebind at once, despite the old connections' TIME_WAIT. */
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons((uint16_t) atoi(argv[1]));
    if (bind(fd, (struct sockaddr *) &addr, sizeof(addr)) < 0 || listen(fd, 128) < 0) {
        perror("bind/listen");
        return 1;
    }
    getsockname(fd, (struct sockaddr *) &addr, &len);
    printf("listening on %d\n", ntohs(addr.sin_port));
    fflush(stdout);

    while (served < connections) {
        int new_fd = accept4(fd, NULL, NULL, SOCK_CLOEXEC);

        if (new_fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            perror("accept");
            break;
        }
        /* The seed's last tip: no Nagle delay for small records. */
        setsockopt(new_fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
        conns[served].fd = new_fd;
        conns[served].id = (uint32_t) served;
        conns[served].records = records;
        conns[served].torn = argc > 4 && strcmp(argv[4], "torn") == 0;
        if (pthread_create(&tid[served], NULL, _do_data_write, &conns[served]) != 0) {
            fprintf(stderr, "server: pthread_create failed\n");
            close(new_fd);
            continue;
        }
        served++;
    }
    close(fd);      /* stop accepting at once; connections still queued are reset */
    for (i = 0; i < served; i++)
        pthread_join(tid[i], NULL);
    printf("served %d connections\n", served);
    return 0;
}
