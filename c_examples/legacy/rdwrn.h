/*
 * rdwrn.h - the prototypes a TLPI/UNP-style program already has for its readn, writen and
 * readline. Its rdwrn.c is gone: resock_compat.h maps these names onto resock's.
 */
#ifndef RDWRN_H
#define RDWRN_H

#include <sys/types.h>

ssize_t readn(int fd, void *buffer, size_t n);
ssize_t writen(int fd, const void *buffer, size_t n);
ssize_t readline(int fd, void *buffer, size_t maxlen);

#endif
