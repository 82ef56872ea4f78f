/*
 * bad_input.c - every exported function, called the wrong way: NULL for each pointer,
 * struct_size too small or too large, negative and absurd numbers, fds that are closed
 * or not sockets. Each call must give its documented error and nothing may crash; the
 * program exits 1 at the first broken promise.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "resock.h"
#include "check.h"

/* CHECK that `call` returned `ret` and set errno to `err`. */
#define EXPECT(call, ret, err)                                                         \
    do {                                                                               \
        errno = 0;                                                                     \
        CHECK((call) == (ret) && errno == (err));                                      \
        checked++;                                                                     \
    } while (0)

static int checked;

static int on_session(int fd, resock_reader *r, void *user)
{
    (void) fd;
    (void) r;
    (void) user;
    return 0;
}

static void on_record(const void *rec, size_t len, void *user)
{
    (void) rec;
    (void) len;
    (void) user;
}

static void handler(int fd, const struct sockaddr *peer, socklen_t len, void *user)
{
    (void) fd;
    (void) peer;
    (void) len;
    (void) user;
}

static void io_calls(int pipe_r, int pipe_w)
{
    struct {
        resock_io_opts opts;
        uint64_t newer_field;
    } bigger;
    resock_io_opts opts;
    struct iovec iov = { NULL, 4 };
    char buf[8];
    size_t done = 99;

    EXPECT(readn_sync(pipe_r, NULL, 4), -1, EINVAL);
    EXPECT(writen_sync(pipe_w, NULL, 4), -1, EINVAL);
    EXPECT(writev_sync(pipe_w, NULL, 1), -1, EINVAL);
    EXPECT(writev_sync(pipe_w, &iov, 1), -1, EINVAL);
    EXPECT(writev_sync(pipe_w, &iov, -1), -1, EINVAL);
    EXPECT(readline_sync(pipe_r, NULL, 4), -1, EINVAL);
    EXPECT(readn_sync(pipe_r, buf, (size_t) SSIZE_MAX + 1), -1, EINVAL);
    EXPECT(resock_readn(pipe_r, NULL, 4, NULL, &done), -1, EINVAL);
    CHECK(done == 0);

    resock_io_opts_init(NULL);
    resock_io_opts_init(&opts);
    opts.struct_size = 0;
    EXPECT(resock_readn(pipe_r, buf, 4, &opts, NULL), -1, EINVAL);
    resock_io_opts_init(&opts);
    opts.timeout_ms = -5;
    EXPECT(resock_writen(pipe_w, "x", 1, &opts, NULL), -1, EINVAL);
    opts.timeout_ms = -1;
    opts.flags = 0x80;
    EXPECT(resock_writev(pipe_w, NULL, 0, &opts, NULL), -1, EINVAL);
    EXPECT(resock_readline(pipe_r, buf, sizeof(buf), &opts, NULL), -1, EINVAL);

    /* A struct from a newer header: fine while the field we do not know is zero. */
    memset(&bigger, 0, sizeof(bigger));
    resock_io_opts_init(&bigger.opts);
    bigger.opts.struct_size = sizeof(bigger);
    EXPECT(resock_writen(pipe_w, "ab", 2, &bigger.opts, NULL), 2, 0);
    bigger.newer_field = 1;
    EXPECT(resock_writen(pipe_w, "ab", 2, &bigger.opts, NULL), -1, E2BIG);
    CHECK(readn_sync(pipe_r, buf, 2) == 2);

    EXPECT(resock_explain(INT_MIN) != NULL, 1, 0);
    EXPECT(resock_classify(INT_MAX), RESOCK_CLASS_OTHER, 0);
    EXPECT(resock_should_reconnect(-1), 0, 0);
}

static void net_calls(int pipe_r, int closed_fd)
{
    EXPECT(resock_connect(NULL, "1", -1), -1, EINVAL);
    EXPECT(resock_connect("127.0.0.1", NULL, -1), -1, EINVAL);
    EXPECT(resock_connect("127.0.0.1", "1", 0), -1, EINVAL);
    EXPECT(resock_connect("127.0.0.1", "1", -2), -1, EINVAL);
    EXPECT(resock_connect("127.0.0.1", "no-such-service-name", -1), -1, EINVAL);
    EXPECT(resock_listen(NULL, NULL, 0), -1, EINVAL);
    EXPECT(resock_set_nodelay(-1, 1), -1, EBADF);
    EXPECT(resock_set_nodelay(closed_fd, 1), -1, EBADF);
    EXPECT(resock_set_nodelay(pipe_r, 1), -1, ENOTSOCK);
    EXPECT(resock_set_keepalive(pipe_r, -1, 5, 3), -1, EINVAL);
    EXPECT(resock_set_keepalive(pipe_r, 10, 0, 3), -1, EINVAL);
    EXPECT(resock_set_user_timeout(-5, 1000), -1, EBADF);
    EXPECT(resock_doctor_report(NULL, 10), -1, EINVAL);
    {
        char small[16];
        ssize_t need = resock_doctor_report(NULL, 0);

        CHECK(need > 0);
        CHECK(resock_doctor_report(small, sizeof(small)) == need);
        CHECK(strlen(small) == sizeof(small) - 1);
        checked += 2;
    }
}

static void dialer_calls(int pipe_w)
{
    resock_dial_config cfg;
    resock_dialer *d;
    resock_stats st;

    resock_dial_config_init(NULL);
    EXPECT(resock_dialer_new(NULL), NULL, EINVAL);
    resock_dial_config_init(&cfg);
    EXPECT(resock_dialer_new(&cfg), NULL, EINVAL);          /* NULL host */
    cfg.host = "127.0.0.1";
    EXPECT(resock_dialer_new(&cfg), NULL, EINVAL);          /* NULL port for TCP */
    cfg.port = "1";
    cfg.struct_size = 0;
    EXPECT(resock_dialer_new(&cfg), NULL, EINVAL);
    resock_dial_config_init(&cfg);
    cfg.host = "127.0.0.1";
    cfg.port = "1";
    cfg.backoff_multiplier = NAN;
    EXPECT(resock_dialer_new(&cfg), NULL, EINVAL);
    cfg.backoff_multiplier = 1e308;                         /* absurd but valid: capped */
    cfg.backoff_jitter = 2.0;
    EXPECT(resock_dialer_new(&cfg), NULL, EINVAL);
    cfg.backoff_jitter = 0.5;
    cfg.backoff_initial_ms = -5;
    EXPECT(resock_dialer_new(&cfg), NULL, EINVAL);
    cfg.backoff_initial_ms = 100;
    cfg.connect_timeout_ms = -7;
    EXPECT(resock_dialer_new(&cfg), NULL, EINVAL);
    cfg.connect_timeout_ms = 10000;                         /* a bound only: loopback refuses at once */
    cfg.keepalive_cnt = -1;
    EXPECT(resock_dialer_new(&cfg), NULL, EINVAL);
    cfg.keepalive_cnt = 3;
    cfg.max_attempts = 1;
    d = resock_dialer_new(&cfg);
    CHECK(d != NULL);
    EXPECT(resock_dial(d), -1, ECONNREFUSED);               /* port 1: nothing listens */

    EXPECT(resock_dial(NULL), -1, EINVAL);
    EXPECT(resock_hangup(NULL, pipe_w), -1, EINVAL);
    CHECK(fcntl(pipe_w, F_GETFD) >= 0);                     /* not closed by resock */
    EXPECT(resock_hangup(d, -1), -1, EBADF);
    resock_dialer_stop(NULL);
    resock_dialer_reset(NULL);
    errno = 0;
    resock_dialer_stats(NULL, &st);
    CHECK(errno == EINVAL);
    errno = 0;
    resock_dialer_stats(d, NULL);
    CHECK(errno == EINVAL);
    resock_dialer_stats(d, &st);
    CHECK(st.attempts == 1 && st.failures == 1 && st.refused == 1);
    resock_dialer_free(d);
    resock_dialer_free(NULL);
}

static void client_calls(void)
{
    resock_client_config cfg;
    resock_client *c;
    resock_stats st;

    resock_client_config_init(NULL);
    EXPECT(resock_client_start(NULL), NULL, EINVAL);
    resock_client_config_init(&cfg);
    cfg.dial.host = "127.0.0.1";
    cfg.dial.port = "1";
    EXPECT(resock_client_start(&cfg), NULL, EINVAL);         /* neither records nor session */
    cfg.record_size = 16;
    EXPECT(resock_client_start(&cfg), NULL, EINVAL);         /* records without on_record */
    cfg.on_record = on_record;
    cfg.dial.struct_size = 1;
    EXPECT(resock_client_start(&cfg), NULL, EINVAL);         /* the nested struct too */
    cfg.dial.struct_size = sizeof(cfg.dial);
    cfg.record_size = 0;
    cfg.session = on_session;
    c = resock_client_start(&cfg);
    CHECK(c != NULL);
    EXPECT(resock_client_send(c, "x", 1), -1, ENOTCONN);
    EXPECT(resock_client_send(c, NULL, 1), -1, EINVAL);
    EXPECT(resock_client_send(NULL, "x", 1), -1, EINVAL);
    EXPECT(resock_client_join(c, -5), -1, EINVAL);
    EXPECT(resock_client_join(NULL, 0), -1, EINVAL);
    resock_client_stop(NULL);
    errno = 0;
    resock_client_stats(NULL, &st);
    CHECK(errno == EINVAL);
    resock_client_stop(c);
    EXPECT(resock_client_join(c, 10000), 0, 0);
    resock_client_stats(c, &st);
    CHECK(st.state == RESOCK_STATE_STOPPED);
    resock_client_free(c);
    resock_client_free(NULL);
}

static void server_calls(void)
{
    resock_server_config cfg;
    resock_server *s;
    resock_accept_stats st;

    resock_server_config_init(NULL);
    EXPECT(resock_server_new(NULL), NULL, EINVAL);
    resock_server_config_init(&cfg);
    cfg.host = "127.0.0.1";
    EXPECT(resock_server_new(&cfg), NULL, EINVAL);           /* NULL port */
    cfg.port = "0";
    EXPECT(resock_server_new(&cfg), NULL, EINVAL);           /* NULL handler */
    cfg.handler = handler;
    cfg.max_connections = 0;
    EXPECT(resock_server_new(&cfg), NULL, EINVAL);
    cfg.max_connections = 4;
    cfg.struct_size = 3;
    EXPECT(resock_server_new(&cfg), NULL, EINVAL);
    cfg.struct_size = sizeof(cfg);
    s = resock_server_new(&cfg);
    CHECK(s != NULL);
    EXPECT(resock_server_port(NULL), -1, EINVAL);
    EXPECT(resock_server_run(NULL), -1, EINVAL);
    EXPECT(resock_server_start(NULL), -1, EINVAL);
    EXPECT(resock_server_join(NULL, 0), -1, EINVAL);
    EXPECT(resock_server_join(s, -5), -1, EINVAL);
    resock_server_stop(NULL);
    errno = 0;
    resock_server_stats(s, NULL);
    CHECK(errno == EINVAL);
    CHECK(resock_server_start(s) == 0);
    EXPECT(resock_server_start(s), -1, EBUSY);
    EXPECT(resock_server_run(s), -1, EBUSY);
    resock_server_stop(s);
    EXPECT(resock_server_join(s, 1000), 0, 0);
    EXPECT(resock_server_port(s), -1, EBADF);                /* stopped: listener closed */
    resock_server_stats(s, &st);
    CHECK(st.accepted == 0);
    resock_server_free(s);
    resock_server_free(NULL);
}

int main(void)
{
    int p[2], closed[2];
    char c;

    CHECK(pipe(p) == 0 && pipe(closed) == 0);
    close(closed[0]);
    close(closed[1]);
    EXPECT(readn_sync(closed[0], &c, 1), -1, EBADF);
    EXPECT(writen_sync(closed[1], "x", 1), -1, EBADF);
    io_calls(p[0], p[1]);
    net_calls(p[0], closed[0]);
    dialer_calls(p[1]);
    client_calls();
    server_calls();
    resock_set_log(NULL, NULL);
    close(p[0]);
    close(p[1]);
    printf("all %d bad inputs rejected as documented\n", checked);
    return 0;
}
