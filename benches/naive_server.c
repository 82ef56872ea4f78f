/*
 * naive_server.c - the seed's server as people write it, for the accept bench only:
 * listen(fd, 5), then accept() and pthread_create() a detached thread per connection that
 * reads the request and answers with send(). No backoff, no cap, no pool.
 *
 * usage: naive_server PORT [BACKLOG]   (BACKLOG defaults to the seed's 5)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const char reply[] = "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n"
                            "Content-Length: 13\r\nConnection: close\r\n\r\nHello, world\n";

static void *_do_data_write(void *arg)
{
    int fd = (int) (intptr_t) arg;
    char buf[1024];
    ssize_t n, total = 0;

    /* Read until the blank line ends the request head. */
    while ((n = recv(fd, buf + total, sizeof(buf) - 1 - (size_t) total, 0)) > 0) {
        total += n;
        buf[total] = '\0';
        if (strstr(buf, "\r\n\r\n") || total >= (ssize_t) sizeof(buf) - 1)
            break;
    }
    if (send(fd, reply, sizeof(reply) - 1, MSG_NOSIGNAL) <= 0) {
        close(fd);
        return NULL;
    }
    close(fd);
    return NULL;
}

int main(int argc, char *argv[])
{
    struct sockaddr_in addr;
    socklen_t len = sizeof(addr);
    pthread_attr_t attr;
    int fd, on = 1;

    fd = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons((uint16_t) atoi(argc > 1 ? argv[1] : "0"));
    if (bind(fd, (struct sockaddr *) &addr, sizeof(addr)) < 0
        || listen(fd, argc > 2 ? atoi(argv[2]) : 5) < 0) {
        perror("bind/listen");
        return 1;
    }
    getsockname(fd, (struct sockaddr *) &addr, &len);
    printf("listening on %d\n", ntohs(addr.sin_port));
    fflush(stdout);
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    for (;;) {
        pthread_t tid;
        int new_fd = accept(fd, NULL, NULL);

        if (new_fd < 0)
            continue;
        if (pthread_create(&tid, &attr, _do_data_write, (void *) (intptr_t) new_fd) != 0)
            close(new_fd);
    }
}
