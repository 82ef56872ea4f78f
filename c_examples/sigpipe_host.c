/*
 * sigpipe_host.c - the seed's SIGPIPE story in a C host that never ignores SIGPIPE.
 *
 * "When a process writes to a socket that has received an RST, the SIGPIPE signal is sent
 * to the process" and, by default, kills it. With resock's writes it does not: the write
 * after the RST returns -1/EPIPE, the disposition stays SIG_DFL and nothing is pending.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "resock.h"
#include "check.h"

int main(void)
{
    const struct timespec settle = { 0, 20 * 1000 * 1000 };
    struct sockaddr_in addr;
    socklen_t len = sizeof(addr);
    struct linger abort_on_close = { 1, 0 };
    struct sigaction sa;
    sigset_t pending;
    char c;
    int lfd, cfd, sfd;

    CHECK(sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL);

    lfd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(bind(lfd, (struct sockaddr *) &addr, sizeof(addr)) == 0 && listen(lfd, 1) == 0);
    CHECK(getsockname(lfd, (struct sockaddr *) &addr, &len) == 0);
    cfd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(connect(cfd, (struct sockaddr *) &addr, sizeof(addr)) == 0);
    sfd = accept(lfd, NULL, NULL);
    CHECK(sfd >= 0);

    /* The peer aborts: RST. recv sees ECONNRESET (104), then our write gets EPIPE. */
    CHECK(setsockopt(sfd, SOL_SOCKET, SO_LINGER, &abort_on_close, sizeof(abort_on_close)) == 0);
    close(sfd);
    nanosleep(&settle, NULL);
    CHECK(readn_sync(cfd, &c, 1) == -1 && errno == ECONNRESET);
    printf("read after RST: -1/ECONNRESET (%d)\n", ECONNRESET);
    CHECK(writen_sync(cfd, "ping", 4) == -1 && errno == EPIPE);
    printf("write after RST: -1/EPIPE, process alive\n");

    CHECK(sigpending(&pending) == 0 && !sigismember(&pending, SIGPIPE));
    CHECK(sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL);
    printf("SIGPIPE still SIG_DFL, none pending\n");
    close(cfd);
    close(lfd);
    return 0;
}
