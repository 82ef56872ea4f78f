/*
 * resp_subscriber.c - a redis pub/sub subscriber (RESP2) on resock's client, in session
 * mode, parsing with the client's buffered reader.
 *
 * on_connect sends SUBSCRIBE, so every reconnect resubscribes; the session parses the
 * replies with resock_reader_readline / resock_reader_readn (one recv per burst, not per
 * line); on_idle sends PING when the server has been silent for idle_timeout_ms, and the
 * client hangs up (ETIMEDOUT) if the PONG does not come within another period - a server
 * that is SIGSTOPped or hung is noticed, which TCP keepalive alone never does.
 *
 * usage: resp_subscriber HOST PORT CHANNEL [IDLE_MS]
 * stdout: each message's payload on a line of its own, flushed; a message "quit" ends it.
 * stderr: "subscribed", "disconnected CLASS ERRNO", "state S attempt A delay D errno E".
 * Exits 0 after "quit".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "resock.h"
#include "check.h"

#define MAX_BULK 4096

/* The session says "quit" to main through a pipe: main then frees the client. */
static int quit_pipe[2];

struct sub {
    const char *channel;
};

/* One RESP2 element of a reply: a bulk string, or an integer / simple string as text. */
struct element {
    char text[MAX_BULK + 1];
    long len;
};

static int write_all(int fd, const char *buf, size_t len)
{
    return writen_sync(fd, buf, len) == (ssize_t) len ? 0 : -1;
}

static int on_connect(int fd, void *user)
{
    struct sub *s = user;
    char cmd[512];
    int n = snprintf(cmd, sizeof cmd, "*2\r\n$9\r\nSUBSCRIBE\r\n$%zu\r\n%s\r\n",
                     strlen(s->channel), s->channel);

    /* The confirmation is read by the session, through the reader: nothing read ahead
     * here could be lost. */
    return n > 0 && (size_t) n < sizeof cmd ? write_all(fd, cmd, (size_t) n) : -1;
}

static int on_idle(int fd, void *user)
{
    static const char ping[] = "*1\r\n$4\r\nPING\r\n";

    (void) user;
    return write_all(fd, ping, sizeof ping - 1);
}

/* Reads one element; returns 0, -1 when the connection ended (the client knows why), or
 * EPROTO for bytes that are not RESP. */
static int read_element(resock_reader *r, struct element *e)
{
    char line[64];
    ssize_t n = resock_reader_readline(r, line, sizeof line, NULL, NULL);

    if (n <= 0)
        return -1;
    if (n < 3 || line[n - 2] != '\r')
        return EPROTO;
    line[n - 2] = '\0';
    if (line[0] == ':' || line[0] == '+') {
        snprintf(e->text, sizeof e->text, "%s", line + 1);
        e->len = (long) strlen(e->text);
        return 0;
    }
    if (line[0] != '$')
        return EPROTO;
    e->len = strtol(line + 1, NULL, 10);
    if (e->len < 0 || e->len > MAX_BULK)
        return EPROTO;
    /* The payload and its CRLF, exactly: the rest stays in the reader. */
    char crlf[2];
    if (resock_reader_readn(r, e->text, (size_t) e->len, NULL, NULL) != e->len
        || resock_reader_readn(r, crlf, 2, NULL, NULL) != 2)
        return -1;
    e->text[e->len] = '\0';
    return 0;
}

static int session(int fd, resock_reader *r, void *user)
{
    static struct element el[3];
    char line[64];

    (void) fd;
    (void) user;
    for (;;) {
        ssize_t n = resock_reader_readline(r, line, sizeof line, NULL, NULL);
        if (n <= 0)
            return 0;                 /* EOF, reset, heartbeat: the client saw it */
        if (line[0] != '*')
            return EPROTO;
        long count = strtol(line + 1, NULL, 10);
        if (count < 1 || count > 3)
            return EPROTO;
        for (long i = 0; i < count; i++) {
            int rc = read_element(r, &el[i]);
            if (rc != 0)
                return rc < 0 ? 0 : rc;
        }
        if (count == 3 && strcmp(el[0].text, "subscribe") == 0) {
            fprintf(stderr, "subscribed\n");
        } else if (count == 3 && strcmp(el[0].text, "message") == 0) {
            printf("%s\n", el[2].text);
            fflush(stdout);
            if (strcmp(el[2].text, "quit") == 0) {
                CHECK(write(quit_pipe[1], "q", 1) == 1);
                return 0;
            }
        }
        /* "pong": the heartbeat's answer; receiving it is all that matters. */
    }
}

static void on_state(int state, unsigned attempt, int64_t delay_ms, int errnum, void *user)
{
    (void) user;
    fprintf(stderr, "state %d attempt %u delay %lld errno %d\n", state, attempt,
            (long long) delay_ms, errnum);
}

static void on_disconnect(int cls, int errnum, int64_t lived_ms, void *user)
{
    (void) user;
    fprintf(stderr, "disconnected %d %d after %lld ms\n", cls, errnum, (long long) lived_ms);
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: %s HOST PORT CHANNEL [IDLE_MS]\n", argv[0]);
        return 2;
    }
    CHECK(resock_abi_version() == RESOCK_ABI_VERSION);
    struct sub s = {.channel = argv[3]};
    resock_client_config cfg;
    resock_client_config_init(&cfg);
    cfg.dial.host = argv[1];
    cfg.dial.port = argv[2];
    cfg.dial.backoff_initial_ms = 20;
    cfg.dial.backoff_max_ms = 500;
    cfg.dial.stable_after_ms = 200;
    cfg.session = session;
    cfg.on_connect = on_connect;
    cfg.on_idle = on_idle;
    cfg.on_state = on_state;
    cfg.on_disconnect = on_disconnect;
    cfg.idle_timeout_ms = argc > 4 ? atoi(argv[4]) : 1000;
    cfg.handshake_timeout_ms = 2000;
    cfg.user = &s;
    CHECK(pipe(quit_pipe) == 0);
    resock_client *client = resock_client_start(&cfg);
    CHECK(client != NULL);
    char q;
    CHECK(read(quit_pipe[0], &q, 1) == 1);
    /* Stops the client and waits for its thread: no callback runs after this. */
    resock_client_free(client);
    return 0;
}
