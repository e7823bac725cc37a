/*
 * lg-relay: moves one egress-proxy tunnel's bytes between its two connected
 * sockets inside the kernel (splice(2) through a pipe per direction), so a bulk
 * transfer does not copy every byte through the proxy's user space.
 *
 *   lg-relay [IDLE_MS]
 *
 *   fd 3, fd 4  the tunnel's two sockets (the sandbox side and the far end);
 *               the only data it touches. It never looks at the bytes.
 *   fd 0        a pipe from the proxy that is never written: EOF or an error on it
 *               means the proxy is gone, and the relay exits (PR_SET_PDEATHSIG as well).
 *   fd 1        the report: one JSON line at exit,
 *               {"up":N,"down":N,"end":"done|reset|idle|stopped|gone|setup"}
 *               up = bytes fd 3 -> fd 4, down = bytes fd 4 -> fd 3, both delivered
 *               to the receiving socket.
 *   IDLE_MS     exit ("idle") after this long without a byte in either direction;
 *               0 or absent: no limit.
 *
 * Half-close is kept: EOF from one side becomes shutdown(SHUT_WR) on the other once
 * everything before it was delivered; when both directions have ended, it exits.
 * A socket error (a reset, EPIPE) ends the tunnel in both directions, as the Node
 * relay does. SIGTERM stops it with a report.
 *
 * Exit: 0 done; 1 reset or socket error; 2 bad usage; 3 setup failed before either
 * socket was read or written (the proxy may go on relaying itself); 4 idle;
 * 5 stopped (SIGTERM) or the proxy is gone.
 * Built by the Makefile (dist/bin/lg-relay) with gcc; Linux only.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define FD_A 3 /* the sandbox side */
#define FD_B 4 /* the far end */
/* Per-direction pipe capacity asked for (the kernel may round it or refuse; then its default stays). */
#define PIPE_BYTES (1 << 20)
/* Splices per direction before polling again, so one busy direction cannot starve the other. */
#define BURST 16

enum { EXIT_DONE = 0, EXIT_RESET = 1, EXIT_USAGE = 2, EXIT_SETUP = 3, EXIT_IDLE = 4, EXIT_STOPPED = 5 };

struct dir {
    int from, to;       /* sockets */
    int rd, wr;         /* the pipe */
    size_t pending;     /* bytes in the pipe */
    int full;           /* the last splice in found no room (or nothing) with bytes pending: wait for the out side */
    int eof;            /* `from` reached EOF */
    int shut;           /* shutdown(to, SHUT_WR) done */
    unsigned long long moved;
};

static volatile sig_atomic_t stop_requested;

static void on_term(int sig) {
    (void)sig;
    stop_requested = 1;
}

static void report(const struct dir *up, const struct dir *down, const char *end) {
    char line[128];
    int n = snprintf(line, sizeof line, "{\"up\":%llu,\"down\":%llu,\"end\":\"%s\"}\n", up->moved, down->moved, end);
    if (n <= 0 || (size_t)n >= sizeof line) return;
    for (size_t off = 0; off < (size_t)n;) {
        ssize_t w = write(STDOUT_FILENO, line + off, (size_t)n - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return; /* nobody listens any more: nothing to do about it */
        off += (size_t)w;
    }
}

static int finish(const struct dir *up, const struct dir *down, const char *end, int code) {
    report(up, down, end);
    return code;
}

static long long now_ms(void) {
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) return 0;
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int is_socket(int fd) {
    struct stat st;
    return fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
}

static int nonblocking(int fd) {
    int fl = fcntl(fd, F_GETFL);
    return fl >= 0 && fcntl(fd, F_SETFL, fl | O_NONBLOCK) == 0;
}

/*
 * Allow only what the relay loop needs; anything else kills the process. Installed after
 * setup, so a problem there (no seccomp in this kernel) only costs the hardening.
 */
static void confine(void) {
#if defined(__x86_64__)
#define LG_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define LG_AUDIT_ARCH AUDIT_ARCH_AARCH64
#endif
#ifdef LG_AUDIT_ARCH
#define ALLOW(nr) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 1), BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, LG_AUDIT_ARCH, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
#ifdef __NR_poll
        ALLOW(__NR_poll),
#endif
        ALLOW(__NR_ppoll),
        ALLOW(__NR_splice),
        ALLOW(__NR_read),
        ALLOW(__NR_write),
        ALLOW(__NR_shutdown),
        ALLOW(__NR_getsockopt),
        ALLOW(__NR_close),
        ALLOW(__NR_clock_gettime),
        ALLOW(__NR_rt_sigreturn),
        ALLOW(__NR_restart_syscall),
        ALLOW(__NR_exit),
        ALLOW(__NR_exit_group),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
    };
#undef ALLOW
    struct sock_fprog prog = {.len = (unsigned short)(sizeof f / sizeof f[0]), .filter = f};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) {
        static const char msg[] = "lg-relay: seccomp filter not installed; relaying without it\n";
        ssize_t ignored = write(STDERR_FILENO, msg, sizeof msg - 1);
        (void)ignored;
    }
#endif
}

/* Move what can be moved now in one direction. Returns 0, or -1 on a socket error (errno set). */
static int pump(struct dir *d, int *progress) {
    for (int i = 0; i < BURST; i++) {
        int moved = 0;
        if (!d->eof && !d->full) {
            ssize_t n = splice(d->from, NULL, d->wr, NULL, PIPE_BYTES, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
            if (n > 0) {
                d->pending += (size_t)n;
                moved = 1;
            } else if (n == 0) {
                d->eof = 1;
                moved = 1;
            } else if (errno == EAGAIN) {
                /* Either the socket is empty or the pipe is full; with bytes pending, let the out side decide. */
                if (d->pending > 0) d->full = 1;
            } else if (errno != EINTR) {
                return -1;
            }
        }
        if (d->pending > 0) {
            ssize_t n = splice(d->rd, NULL, d->to, NULL, d->pending, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
            if (n > 0) {
                d->pending -= (size_t)n;
                d->moved += (unsigned long long)n;
                d->full = 0;
                moved = 1;
            } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
                return -1;
            }
        }
        if (!moved) break;
        *progress = 1;
    }
    if (d->eof && d->pending == 0 && !d->shut) {
        /* ENOTCONN: the peer is already gone; the other direction will find out. */
        if (shutdown(d->to, SHUT_WR) != 0 && errno != ENOTCONN) return -1;
        d->shut = 1;
        *progress = 1;
    }
    return 0;
}

static short wants_in(const struct dir *d) { return (!d->eof && !d->full) ? POLLIN : 0; }
static short wants_out(const struct dir *d) { return d->pending > 0 ? POLLOUT : 0; }

int main(int argc, char **argv) {
    struct dir up = {.from = FD_A, .to = FD_B, .rd = -1, .wr = -1};
    struct dir down = {.from = FD_B, .to = FD_A, .rd = -1, .wr = -1};
    long long idle_ms = 0;

    if (argc > 2) return EXIT_USAGE;
    if (argc == 2) {
        char *end = NULL;
        errno = 0;
        idle_ms = strtoll(argv[1], &end, 10);
        if (errno != 0 || end == argv[1] || *end != '\0' || idle_ms < 0 || idle_ms > 7LL * 24 * 3600 * 1000) {
            fprintf(stderr, "usage: lg-relay [IDLE_MS] with the tunnel's sockets as fds 3 and 4\n");
            return EXIT_USAGE;
        }
    }
    if (!is_socket(FD_A) || !is_socket(FD_B)) {
        fprintf(stderr, "lg-relay: fds 3 and 4 must be the tunnel's two sockets\n");
        return EXIT_USAGE;
    }

    /* Die with the proxy: the signal for a parent that exits from now on, the check for one already gone. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) return finish(&up, &down, "setup", EXIT_SETUP);
    struct pollfd parent = {.fd = STDIN_FILENO, .events = POLLIN};
    if (poll(&parent, 1, 0) != 0) return finish(&up, &down, "gone", EXIT_STOPPED);

    /* SIGTERM is blocked except inside ppoll, so a stop cannot slip in between the check and the wait. */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_term;
    sigemptyset(&sa.sa_mask);
    sigset_t stops, waiting;
    sigemptyset(&stops);
    sigaddset(&stops, SIGTERM);
    sigaddset(&stops, SIGINT);
    if (sigaction(SIGTERM, &sa, NULL) != 0 || sigaction(SIGINT, &sa, NULL) != 0 || sigprocmask(SIG_BLOCK, &stops, &waiting) != 0)
        return finish(&up, &down, "setup", EXIT_SETUP);
    sigdelset(&waiting, SIGTERM);
    sigdelset(&waiting, SIGINT);
    signal(SIGPIPE, SIG_IGN); /* a closed peer shows as EPIPE */

    int p1[2], p2[2];
    if (pipe2(p1, O_NONBLOCK | O_CLOEXEC) != 0) return finish(&up, &down, "setup", EXIT_SETUP);
    if (pipe2(p2, O_NONBLOCK | O_CLOEXEC) != 0) return finish(&up, &down, "setup", EXIT_SETUP);
    up.rd = p1[0], up.wr = p1[1], down.rd = p2[0], down.wr = p2[1];
    (void)fcntl(up.wr, F_SETPIPE_SZ, PIPE_BYTES);
    (void)fcntl(down.wr, F_SETPIPE_SZ, PIPE_BYTES);
    if (!nonblocking(FD_A) || !nonblocking(FD_B)) return finish(&up, &down, "setup", EXIT_SETUP);
    /* Nothing else this process might have inherited stays open (the pipes are 5..8: lowest free fds). */
    if (up.rd != 5 || up.wr != 6 || down.rd != 7 || down.wr != 8) return finish(&up, &down, "setup", EXIT_SETUP);
#ifdef SYS_close_range
    if (syscall(SYS_close_range, 9U, ~0U, 0U) != 0)
#endif
        for (int fd = 9; fd < 1024; fd++) (void)close(fd);
    confine();

    long long last = now_ms();
    int quiet_hup[2] = {0, 0}; /* a side that hung up cleanly and is asked for nothing: stop watching it */
    for (;;) {
        if (stop_requested) return finish(&up, &down, "stopped", EXIT_STOPPED);
        int progress = 0;
        if (pump(&up, &progress) != 0 || pump(&down, &progress) != 0) return finish(&up, &down, "reset", EXIT_RESET);
        if (up.shut && down.shut) return finish(&up, &down, "done", EXIT_DONE);
        if (progress) {
            last = now_ms();
            continue;
        }

        struct timespec ts, *timeout = NULL;
        if (idle_ms > 0) {
            long long left = last + idle_ms - now_ms();
            if (left <= 0) return finish(&up, &down, "idle", EXIT_IDLE);
            ts.tv_sec = (time_t)(left / 1000);
            ts.tv_nsec = (long)(left % 1000) * 1000000L;
            timeout = &ts;
        }
        /*
         * A socket with nothing wanted is still watched (events 0): poll reports POLLERR/POLLHUP
         * for it, which is how a reset on an otherwise quiet side is noticed.
         */
        short ev[2] = {(short)(wants_in(&up) | wants_out(&down)), (short)(wants_in(&down) | wants_out(&up))};
        struct pollfd pfd[3] = {
            {.fd = (ev[0] == 0 && quiet_hup[0]) ? -1 : FD_A, .events = ev[0]},
            {.fd = (ev[1] == 0 && quiet_hup[1]) ? -1 : FD_B, .events = ev[1]},
            {.fd = STDIN_FILENO, .events = POLLIN},
        };
        int r = ppoll(pfd, 3, timeout, &waiting);
        if (r < 0) {
            if (errno == EINTR) continue;
            return finish(&up, &down, "reset", EXIT_RESET);
        }
        if (pfd[2].revents) {
            char buf[64];
            ssize_t n = read(STDIN_FILENO, buf, sizeof buf);
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) return finish(&up, &down, "gone", EXIT_STOPPED);
        }
        for (int i = 0; i < 2; i++) {
            if (pfd[i].events != 0 || !(pfd[i].revents & (POLLERR | POLLHUP))) continue;
            /* Asked for nothing, yet an error or hang-up: a reset ends the tunnel; a clean hang-up is left alone. */
            int err = 0;
            socklen_t len = sizeof err;
            if (getsockopt(i == 0 ? FD_A : FD_B, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0 || (pfd[i].revents & POLLERR))
                return finish(&up, &down, "reset", EXIT_RESET);
            quiet_hup[i] = 1;
        }
    }
}
