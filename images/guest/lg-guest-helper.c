/*
 * lg-guest-helper: the two things the guest agent (Node) cannot do itself,
 * because they need an ioctl or clock_settime.
 *
 * Micro-VMs are cloned from one memory snapshot, so every clone starts with the
 * same kernel RNG state and the same clock. The host sends each clone fresh
 * entropy and the time; the agent runs:
 *
 *   lg-guest-helper reseed            entropy bytes on stdin (at most 4096):
 *                                     RNDADDENTROPY (mix in, credited) then
 *                                     RNDRESEEDCRNG (so the very next getrandom
 *                                     output already depends on them)
 *   lg-guest-helper settime <epoch-ns>  clock_settime(CLOCK_REALTIME)
 *
 * Exit 0 on success; 1 with a message on stderr otherwise; 2 on bad usage.
 * Built by images/build.sh with `gcc -O2 -Wall`.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/random.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#ifndef RNDRESEEDCRNG
#define RNDRESEEDCRNG _IO('R', 0x07) /* Linux 4.17+ */
#endif

#define MAX_ENTROPY 4096

static int usage(void) {
    fprintf(stderr, "usage: lg-guest-helper reseed < entropy\n"
                    "       lg-guest-helper settime <nanoseconds since the epoch>\n");
    return 2;
}

static int reseed(void) {
    /* rand_pool_info ends in a flexible array: room for the bytes follows it. */
    static union {
        struct rand_pool_info info;
        unsigned char raw[sizeof(struct rand_pool_info) + MAX_ENTROPY];
    } req;
    size_t got = 0;
    while (got < MAX_ENTROPY) {
        ssize_t n = read(STDIN_FILENO, (unsigned char *)req.info.buf + got, MAX_ENTROPY - got);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            fprintf(stderr, "lg-guest-helper: reading entropy from stdin: %s\n", strerror(errno));
            return 1;
        }
        if (n == 0) break;
        got += (size_t)n;
    }
    if (got < 16) {
        fprintf(stderr, "lg-guest-helper: need at least 16 bytes of entropy on stdin, got %zu\n", got);
        return 1;
    }
    req.info.entropy_count = (int)(got * 8);
    req.info.buf_size = (int)got;

    int fd = open("/dev/urandom", O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "lg-guest-helper: open /dev/urandom: %s\n", strerror(errno));
        return 1;
    }
    if (ioctl(fd, RNDADDENTROPY, &req.info) != 0) {
        fprintf(stderr, "lg-guest-helper: RNDADDENTROPY: %s (needs CAP_SYS_ADMIN)\n", strerror(errno));
        close(fd);
        return 1;
    }
    if (ioctl(fd, RNDRESEEDCRNG) != 0) {
        fprintf(stderr, "lg-guest-helper: RNDRESEEDCRNG: %s\n", strerror(errno));
        close(fd);
        return 1;
    }
    close(fd);
    /* Do not leave the seed material in this process's memory longer than needed. */
    memset(&req, 0, sizeof req);
    return 0;
}

static int settime(const char *arg) {
    char *end = NULL;
    errno = 0;
    unsigned long long ns = strtoull(arg, &end, 10);
    if (errno != 0 || end == arg || *end != '\0') {
        fprintf(stderr, "lg-guest-helper: settime wants nanoseconds since the epoch, got \"%s\"\n", arg);
        return 2;
    }
    struct timespec ts = { .tv_sec = (time_t)(ns / 1000000000ULL), .tv_nsec = (long)(ns % 1000000000ULL) };
    if (clock_settime(CLOCK_REALTIME, &ts) != 0) {
        fprintf(stderr, "lg-guest-helper: clock_settime: %s (needs CAP_SYS_TIME)\n", strerror(errno));
        return 1;
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 2 && strcmp(argv[1], "reseed") == 0) return reseed();
    if (argc == 3 && strcmp(argv[1], "settime") == 0) return settime(argv[2]);
    return usage();
}
