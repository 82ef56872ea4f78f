/*
 * resock_compat.h - the legacy names for resock's exact-count calls.
 *
 * Code written against TLPI's rdwrn.c or UNP's readn/writen/readline builds unchanged
 * once its own copy of those functions is deleted:
 *
 *     cc -include resock_compat.h old.c -lresock
 *
 * The calls keep their legacy contract (n on success, the short count at EOF, -1 with
 * errno on error) and gain resock's: EINTR retried, MSG_WAITALL on sockets, no SIGPIPE,
 * errno 0 at EOF, -1/EIO when write() returns 0, and readline never reads past the
 * newline (no static buffer: thread-safe, and it mixes with readn on one fd).
 *
 * Object-like macros, so a legacy header's prototypes (ssize_t readn(int, void *, size_t))
 * become matching redeclarations of resock's functions. Define RESOCK_COMPAT_NO_READLINE
 * before including this header when the program also links GNU readline.
 *
 * Hand-written (not generated); part of the public contract with include/resock.h.
 */
#ifndef RESOCK_COMPAT_H
#define RESOCK_COMPAT_H

#include "resock.h"

#define readn readn_sync
#define writen writen_sync
#ifndef RESOCK_COMPAT_NO_READLINE
#define readline readline_sync
#endif

#endif /* RESOCK_COMPAT_H */
