/*
 * explain.c - errno in plain words, and the version checks a careful C program makes.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resock.h"
#include "check.h"

int main(void)
{
    char expect[32];

    /* A header from one generation and a library from another must not meet. */
    CHECK(resock_abi_version() == RESOCK_ABI_VERSION);
    snprintf(expect, sizeof(expect), "%d.%d.%d", RESOCK_VERSION_MAJOR, RESOCK_VERSION_MINOR,
             RESOCK_VERSION_PATCH);
    CHECK(strcmp(resock_version(), expect) == 0);
    printf("resock %s (ABI %d)\n", resock_version(), resock_abi_version());

    CHECK(resock_classify(ECONNRESET) == RESOCK_CLASS_RESET);
    CHECK(resock_classify(EPIPE) == RESOCK_CLASS_PIPE);
    CHECK(resock_classify(EMFILE) == RESOCK_CLASS_RESOURCE);
    CHECK(resock_classify(0) == RESOCK_CLASS_OK);
    CHECK(resock_classify(-5) == RESOCK_CLASS_OTHER);
    CHECK(resock_should_reconnect(ECONNRESET) && !resock_should_reconnect(EINTR));
    CHECK(strstr(resock_explain(ECONNRESET), "RST") != NULL);
    CHECK(resock_explain(123456) != NULL);
    printf("104: %s\n", resock_explain(104));
    return 0;
}
