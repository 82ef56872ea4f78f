/*
 * check.h - CHECK(cond): print the failed condition with errno and exit 1. The examples
 * use it so that `cargo test` (tests/c_examples.rs) sees every broken promise.
 */
#ifndef CHECK_H
#define CHECK_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond)                                                                    \
    do {                                                                               \
        if (!(cond)) {                                                                 \
            fprintf(stderr, "%s:%d: CHECK failed: %s (errno %d: %s)\n", __FILE__,      \
                    __LINE__, #cond, errno, strerror(errno));                           \
            exit(1);                                                                   \
        }                                                                              \
    } while (0)

#endif /* CHECK_H */
