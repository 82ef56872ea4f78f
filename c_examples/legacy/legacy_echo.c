/*
 * legacy_echo.c - a program in the TLPI/UNP style, unchanged: it calls readn, writen and
 * readline from its own rdwrn.h. Built with
 *
 *     cc -include resock_compat.h -Ic_examples/legacy legacy_echo.c -lresock
 *
 * it runs on resock's implementations: a line-oriented echo over a socketpair, a
 * length-prefixed record read with readline then readn on the same fd, and a write to a
 * closed peer that returns EPIPE instead of killing the process with SIGPIPE.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rdwrn.h"

#define MAXLINE 128

static void die(const char *what)
{
    fprintf(stderr, "legacy_echo: %s: %s\n", what, strerror(errno));
    exit(1);
}

/* The child echoes every line back until EOF. */
static void echo_lines(int fd)
{
    char line[MAXLINE];
    ssize_t n;

    while ((n = readline(fd, line, MAXLINE)) > 0)
        if (writen(fd, line, (size_t) n) != n)
            die("writen");
    exit(n == 0 ? 0 : 1);
}

int main(void)
{
    const char *lines[] = { "hello\n", "a longer line of text\n", "LEN 5\n" };
    char line[MAXLINE], body[5];
    int sv[2], status;
    size_t i;
    pid_t pid;

    signal(SIGPIPE, SIG_DFL);      /* as any C program has it */
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
        die("socketpair");
    pid = fork();
    if (pid < 0)
        die("fork");
    if (pid == 0) {
        close(sv[0]);
        echo_lines(sv[1]);
    }
    close(sv[1]);
    for (i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
        if (writen(sv[0], lines[i], strlen(lines[i])) != (ssize_t) strlen(lines[i]))
            die("writen");
        if (readline(sv[0], line, MAXLINE) != (ssize_t) strlen(lines[i]) || strcmp(line, lines[i]) != 0)
            die("readline");
        printf("echoed: %s", line);
    }
    /* A length-prefixed record, echoed back: readline the header, readn the body from the
     * same fd. (The child echoes whole lines, so the body ends with one too.) */
    if (writen(sv[0], "HDR 5\nworld\n", 12) != 12)
        die("writen");
    if (readline(sv[0], line, MAXLINE) != 6 || strcmp(line, "HDR 5\n") != 0)
        die("readline header");
    if (readn(sv[0], body, 5) != 5 || memcmp(body, "world", 5) != 0)
        die("readn body");
    printf("record: %.5s\n", body);
    if (readline(sv[0], line, MAXLINE) != 1)
        die("readline the body's newline");

    shutdown(sv[0], SHUT_WR);      /* the child sees EOF and exits */
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        die("child");
    if (writen(sv[0], "x", 1) != -1 || errno != EPIPE)
        die("writen after the peer left");
    printf("write after the peer left: EPIPE, still alive\n");
    close(sv[0]);
    return 0;
}
