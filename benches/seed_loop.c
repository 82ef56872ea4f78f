/*
 * seed_loop.c - the seed's readn loop and TLPI's writen, as people copy them, compiled by
 * build.rs with -O2 and linked only into the benches (the baseline resock must beat).
 * seed_recv_calls counts the recvfrom calls the read loop makes. plain_readn is TLPI's
 * read()-based readn, the baseline on pipes (recvfrom fails there with ENOTSOCK).
 */
#include <errno.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

unsigned long seed_recv_calls;

/* The seed's do_readn_sync with flags 0. */
ssize_t seed_readn(int fd, void *buffer, size_t n)
{
    ssize_t numRead;
    size_t totRead;
    char *buf = buffer;

    for (totRead = 0; totRead < n;) {
        seed_recv_calls++;
        numRead = recvfrom(fd, buf, n - totRead, 0, NULL, 0);
        if (numRead == 0)
            return totRead;
        if (numRead == -1) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        totRead += numRead;
        buf += numRead;
    }
    return totRead;
}

/* TLPI's readn. */
ssize_t plain_readn(int fd, void *buffer, size_t n)
{
    ssize_t numRead;
    size_t totRead;
    char *buf = buffer;

    for (totRead = 0; totRead < n;) {
        numRead = read(fd, buf, n - totRead);
        if (numRead == 0)
            return totRead;
        if (numRead == -1) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        totRead += numRead;
        buf += numRead;
    }
    return totRead;
}

/* TLPI's writen. */
ssize_t seed_writen(int fd, const void *buffer, size_t n)
{
    ssize_t numWritten;
    size_t totWritten;
    const char *buf = buffer;

    for (totWritten = 0; totWritten < n;) {
        numWritten = write(fd, buf, n - totWritten);
        if (numWritten <= 0) {
            if (numWritten == -1 && errno == EINTR)
                continue;
            return -1;
        }
        totWritten += numWritten;
        buf += numWritten;
    }
    return totWritten;
}

/*
 * UNP's buffered readline (Stevens, "Unix Network Programming", lib/readline.c), as people
 * copy it: a static read-ahead of 4096 bytes filled by read(2), handed out a byte at a
 * time. Fast, but the read-ahead is hidden and global: it cannot be mixed with readn on
 * the same fd, nor used on two fds or from two threads. unp_read_calls counts its reads.
 */
unsigned long unp_read_calls;

static char unp_buf[4096];
static char *unp_ptr;
static ssize_t unp_cnt;

static ssize_t unp_next(int fd, char *c)
{
    while (unp_cnt <= 0) {
        unp_read_calls++;
        unp_cnt = read(fd, unp_buf, sizeof unp_buf);
        if (unp_cnt == 0)
            return 0;
        if (unp_cnt < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        unp_ptr = unp_buf;
    }
    unp_cnt--;
    *c = *unp_ptr++;
    return 1;
}

ssize_t unp_readline(int fd, void *buffer, size_t maxlen)
{
    char *out = buffer;
    size_t n;

    for (n = 1; n < maxlen; n++) {
        char c;
        ssize_t rc = unp_next(fd, &c);
        if (rc == 0) {
            *out = '\0';
            return (ssize_t) n - 1;
        }
        if (rc < 0)
            return -1;
        *out++ = c;
        if (c == '\n')
            break;
    }
    *out = '\0';
    return (ssize_t) n;
}
