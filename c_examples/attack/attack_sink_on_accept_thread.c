/*
 * attack_sink_on_accept_thread.c - a log sink that frees (or joins) the server whose
 * accept loop is logging.
 *
 * resock_set_log promises: "A callback may itself call resock_set_log ... and may call any
 * other resock function." resock_server_free promises to stop the server and wait for its
 * accept loop. When the accept loop itself logs (accept failed with EMFILE) and the sink
 * calls resock_server_free / resock_server_join on that server, the wait is for the very
 * thread that is inside the sink: it never returns.
 *
 * usage: attack_sink_on_accept_thread [free|join]
 * Exit 0: the call from the sink returned; 2: it hung (the finding).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "resock.h"
#include "../check.h"

static resock_server *server;
static int use_join;
static atomic_int entered, returned;

static void sink(int level, const char *msg, void *user) {
    (void)level; (void)user;
    if (strstr(msg, "accept") == NULL || atomic_exchange(&entered, 1))
        return;
    fprintf(stderr, "sink (accept thread): \"%s\" -> resock_server_%s\n", msg,
            use_join ? "join(s, 0) after stop" : "free");
    if (use_join) {
        resock_server_stop(server);
        resock_server_join(server, 0);
    } else {
        resock_server_free(server);
    }
    atomic_store(&returned, 1);
}

static void handler(int fd, const struct sockaddr *p, socklen_t l, void *u) {
    (void)fd; (void)p; (void)l; (void)u;
}

int main(int argc, char **argv) {
    use_join = argc > 1 && strcmp(argv[1], "join") == 0;
    resock_set_log(sink, NULL);
    resock_server_config cfg;
    resock_server_config_init(&cfg);
    cfg.host = "127.0.0.1";
    cfg.port = "0";
    cfg.handler = handler;
    server = resock_server_new(&cfg);
    CHECK(server != NULL);
    int port = resock_server_port(server);
    CHECK(resock_server_start(server) == 0);

    int client = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(client >= 0);
    /* Use up every fd so the accept loop's accept4 fails with EMFILE and logs. */
    struct rlimit rl = {64, 64};
    CHECK(setrlimit(RLIMIT_NOFILE, &rl) == 0);
    while (open("/dev/null", O_RDONLY) >= 0) {
    }
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(connect(client, (struct sockaddr *)&a, sizeof a) == 0);

    for (int i = 0; i < 100 && !atomic_load(&entered); i++)
        usleep(20000);
    CHECK(atomic_load(&entered));
    /* Generous: the call needs microseconds when it works. */
    for (int i = 0; i < 500 && !atomic_load(&returned); i++)
        usleep(10000);
    if (!atomic_load(&returned)) {
        printf("HANG: resock_server_%s called from the log sink on the accept thread did not "
               "return within 5 s\n", use_join ? "join" : "free");
        fflush(stdout);
        _exit(2);
    }
    printf("held: the sink's call returned\n");
    return 0;
}
