/*
 * leftover_readn.c - a legacy program that still carries its own readn (UNP's, from
 * lib/readn.c). Built with -include resock_compat.h it must NOT compile: the definition
 * would otherwise silently replace resock's. tests/c_examples.rs checks that the build
 * fails and that the error says "delete your rdwrn.c/readline.c".
 */
#include <errno.h>
#include <unistd.h>

#include "rdwrn.h"

ssize_t readn(int fd, void *vptr, size_t n)
{
    size_t nleft = n;
    char *ptr = vptr;
    ssize_t nread;

    while (nleft > 0) {
        if ((nread = read(fd, ptr, nleft)) < 0) {
            if (errno == EINTR)
                nread = 0;
            else
                return -1;
        } else if (nread == 0)
            break;
        nleft -= (size_t) nread;
        ptr += nread;
    }
    return (ssize_t) (n - nleft);
}

int main(void)
{
    char c;
    return (int) readn(0, &c, 0);
}
