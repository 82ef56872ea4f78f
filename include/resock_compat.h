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
 * newline (no static buffer: thread-safe, and it mixes with readn on one fd). What differs
 * from UNP/TLPI is listed in resock(7) and docs/migration.md.
 *
 * Each legacy name is a macro for a static inline wrapper defined here. A legacy header's
 * prototype (ssize_t readn(int, void *, size_t);) becomes a harmless redeclaration of the
 * wrapper, but a leftover *definition* of readn, writen or readline becomes a second
 * definition of the wrapper: a compile error that points at the line below saying what to
 * do. (Mapping the names straight onto readn_sync would let a leftover readline.c define
 * readline_sync itself and silently replace resock's in the shared library.)
 *
 * Define RESOCK_COMPAT_NO_READLINE before including this header when the program also
 * links GNU readline.
 *
 * Hand-written (not generated); part of the public contract with include/resock.h.
 */
#ifndef RESOCK_COMPAT_H
#define RESOCK_COMPAT_H

#include "resock.h"

#if defined(__cplusplus) || (defined(__STDC_VERSION__) && __STDC_VERSION__ >= 199901L)
#define RESOCK_COMPAT_INLINE static inline
#elif defined(__GNUC__)
#define RESOCK_COMPAT_INLINE static __inline__
#else
#define RESOCK_COMPAT_INLINE static
#endif

RESOCK_COMPAT_INLINE ssize_t resock_compat_readn( /* resock provides readn: delete your rdwrn.c/readline.c */
    int fd, void *buffer, size_t n)
{
    return readn_sync(fd, buffer, n);
}

RESOCK_COMPAT_INLINE ssize_t resock_compat_writen( /* resock provides writen: delete your rdwrn.c/readline.c */
    int fd, const void *buffer, size_t n)
{
    return writen_sync(fd, buffer, n);
}

#define readn resock_compat_readn /* redefinition error? delete your rdwrn.c/readline.c */
#define writen resock_compat_writen /* redefinition error? delete your rdwrn.c/readline.c */

#ifndef RESOCK_COMPAT_NO_READLINE
RESOCK_COMPAT_INLINE ssize_t resock_compat_readline( /* resock provides readline: delete your rdwrn.c/readline.c */
    int fd, void *buffer, size_t maxlen)
{
    return readline_sync(fd, buffer, maxlen);
}

#define readline resock_compat_readline /* redefinition error? delete your rdwrn.c/readline.c */
#endif

#endif /* RESOCK_COMPAT_H */
