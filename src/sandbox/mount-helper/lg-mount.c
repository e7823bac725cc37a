/*
 * lg-mount: mounts and unmounts sandbox scratch disks (size-limited tmpfs) for
 * LuminaGuard without a mount(8)/umount(8) process per call: each of those costs
 * ~2.5 ms (exec, dynamic linking, libmount reading the mount table), a request
 * here one pipe round trip. Started once per LuminaGuard process (as root, which
 * mounting needs); it reads requests on stdin until EOF, so it ends with its parent.
 *
 * Requests are NUL-terminated fields:
 *   "mount" DIR SOURCE DATA   tmpfs on DIR, always nosuid+nodev, DATA its options (size=...)
 *   "umount" DIR              unmount DIR (no symlink followed); lazily when busy
 * One reply line each: "0", or "ERRNO message".
 * Only tmpfs and only nosuid+nodev: a caller can do no more with it than with mount(8).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>

/* One NUL-terminated field from stdin; NULL at EOF or on a truncated field. */
static char *field(void) {
    char *buf = NULL;
    size_t cap = 0;
    ssize_t len = getdelim(&buf, &cap, '\0', stdin);
    if (len <= 0 || buf[len - 1] != '\0') {
        free(buf);
        return NULL;
    }
    return buf;
}

static void reply(int rc) {
    if (rc == 0) printf("0\n");
    else printf("%d %s\n", errno, strerror(errno));
    fflush(stdout);
}

int main(void) {
    for (;;) {
        char *op = field();
        if (op == NULL) return 0;
        if (strcmp(op, "mount") == 0) {
            char *dir = field(), *source = field(), *data = field();
            if (dir == NULL || source == NULL || data == NULL) return 1;
            reply(mount(source, dir, "tmpfs", MS_NOSUID | MS_NODEV, data));
            free(dir);
            free(source);
            free(data);
        } else if (strcmp(op, "umount") == 0) {
            char *dir = field();
            if (dir == NULL) return 1;
            int rc = umount2(dir, UMOUNT_NOFOLLOW);
            /* A process not yet reaped still holds a file: detach now, freed when it goes. */
            if (rc != 0 && errno == EBUSY) rc = umount2(dir, MNT_DETACH | UMOUNT_NOFOLLOW);
            reply(rc);
            free(dir);
        } else {
            errno = EINVAL;
            reply(-1);
        }
        free(op);
    }
}
