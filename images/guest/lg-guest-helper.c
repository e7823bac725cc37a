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
 *   lg-guest-helper spawner <cgroup-dir-fd> <channel-fd>
 *                                     the per-sandbox command launcher: started once,
 *                                     already confined (setpriv + bwrap + seccomp), it
 *                                     starts each command (see spawner() below)
 *
 * Exit 0 on success; 1 with a message on stderr otherwise; 2 on bad usage.
 * Built by images/build.sh with `gcc -O2 -Wall`.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/random.h>
#include <sched.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef RNDRESEEDCRNG
#define RNDRESEEDCRNG _IO('R', 0x07) /* Linux 4.17+ */
#endif

#define MAX_ENTROPY 4096

static int usage(void) {
    fprintf(stderr, "usage: lg-guest-helper reseed < entropy\n"
                    "       lg-guest-helper settime <nanoseconds since the epoch>\n"
                    "       lg-guest-helper spawner <cgroup folder fd> <channel fd>\n");
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

/*
 * spawner: one per sandbox, started by the agent through the same chain as a
 * command (setpriv → bwrap → here), so it already runs as the sandbox user with
 * no capabilities, no_new_privs, the seccomp program and the sandbox's view and
 * pid namespace. Starting that chain is the expensive part under emulation; each
 * command is then a fork of this small process and one execve.
 *
 * Channel: a socket from the agent on <channel-fd> (not stdio: bwrap's init keeps
 * its stdio, and commands may look at it): requests in, events out.
 *   request  <u32 little-endian length> then NUL-terminated fields:
 *            "E" id cgroup stdin(0|1) cwd argc argv... env("K=V")...   run a command
 *            "C" id                         the agent has opened its pipe ends: close ours
 *   events   "R\n"                                   ready
 *            "S id pid stdin-fd stdout-fd stderr-fd\n"  started (fds: our pipe ends,
 *                                                       which the agent reopens through
 *                                                       /proc/<our pid>/fd; stdin -1: none)
 *            "F id errno stage\n"                    could not start (stage: cgroup, cwd,
 *                                                       exec, fork)
 *            "X id wait-status\n"                    the command's main process ended
 * Each command: its own session and process group, and its own cgroup (the child
 * writes itself into <cgroup-dir-fd>/<cgroup>/cgroup.procs before execve, so it
 * can fork nothing outside it). The agent kills trees through the cgroup.
 * Non-dumpable: commands run as the same uid and must not reach our fds (the
 * cgroup folder) through /proc or ptrace.
 */
#define SP_MAX_REQUEST (8u << 20)
#define SP_MAX_LIVE 1024

struct sp_child {
    pid_t pid;   /* 0 once reaped */
    int opened;  /* the agent sent C */
    char id[64];
    int keep[3]; /* our ends, open until the agent sends C (even after the exit: output may wait in them) */
};

static struct sp_child sp_live[SP_MAX_LIVE];
static int sp_sigpipe[2] = { -1, -1 };
static int sp_ctl = -1;

static void sp_on_sigchld(int sig) {
    (void)sig;
    int saved = errno;
    if (write(sp_sigpipe[1], "c", 1) < 0) { /* full: a wakeup is pending anyway */ }
    errno = saved;
}

static void sp_emit(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sp_emit(const char *fmt, ...) {
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof line) return;
    size_t off = 0;
    while (off < (size_t)n) {
        ssize_t w = write(sp_ctl, line + off, (size_t)n - off);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) _exit(0); /* the agent is gone */
        off += (size_t)w;
    }
}

static int sp_read_full(int fd, void *buf, size_t len) {
    size_t got = 0;
    while (got < len) {
        ssize_t n = read(fd, (char *)buf + got, len - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return -1;
        got += (size_t)n;
    }
    return 0;
}

static int sp_in_use(const struct sp_child *c) {
    return c->pid != 0 || !c->opened;
}

static struct sp_child *sp_slot(const char *id) {
    for (int i = 0; i < SP_MAX_LIVE; i++) {
        if (id ? (sp_in_use(&sp_live[i]) && strcmp(sp_live[i].id, id) == 0) : !sp_in_use(&sp_live[i])) return &sp_live[i];
    }
    return NULL;
}

static void sp_close_kept(struct sp_child *c) {
    for (int k = 0; k < 3; k++) {
        if (c->keep[k] >= 0) close(c->keep[k]);
        c->keep[k] = -1;
    }
}

/* What the child needs; it lives in the parent's frame, which the child shares (CLONE_VM). */
struct sp_child_args {
    int cgdir, in, out, err, status;
    const char *cgroup, *cwd;
    char **argv, **envp;
};

/*
 * The child's own stack. The child shares our memory (CLONE_VM | CLONE_VFORK) and we
 * are suspended until it has called execve or exited, so one stack serves every start.
 */
static char sp_child_stack[256 * 1024] __attribute__((aligned(16)));

/*
 * In the child: never returns. Reports failure as "stage errno" on fd `status`.
 * It shares the spawner's memory until execve, so it writes nothing the spawner
 * reads afterwards except `environ`, which the spawner restores once we are gone.
 * Signals stay blocked (the spawner blocked them) until just before execve.
 */
static int sp_child_main(void *arg) {
    const struct sp_child_args *a = arg;
    int cgdir = a->cgdir, in = a->in, out = a->out, err = a->err, status = a->status;
    const char *cgroup = a->cgroup, *cwd = a->cwd;
    char **argv = a->argv;
    const char *stage = "cgroup";
    sigset_t none;
    sigemptyset(&none);
    signal(SIGCHLD, SIG_DFL);
    signal(SIGPIPE, SIG_DFL);
    if (cgroup[0] != '\0') {
        char path[256];
        snprintf(path, sizeof path, "%s/cgroup.procs", cgroup);
        int fd = openat(cgdir, path, O_WRONLY | O_CLOEXEC);
        if (fd < 0 || write(fd, "0", 1) != 1) goto fail;
        close(fd);
    }
    stage = "exec";
    if (setsid() < 0) goto fail;
    if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0) goto fail;
    stage = "cwd";
    if (chdir(cwd) != 0) goto fail;
    stage = "exec";
    /* execvp searches the command's own PATH: the environment is the command's from here on. */
    environ = a->envp;
    sigprocmask(SIG_SETMASK, &none, NULL);
    execvp(argv[0], argv);
fail:;
    char msg[64];
    int n = snprintf(msg, sizeof msg, "%d %s", errno, stage);
    if (write(status, msg, (size_t)n) < 0) { /* nothing left to tell */ }
    _exit(127);
}

/*
 * Start the child the way posix_spawn does: CLONE_VM | CLONE_VFORK, so no page
 * tables are copied (a fork of even this small process cost 3-8 ms under TCG).
 * Returns the pid, or -1 with errno.
 */
static pid_t sp_spawn(struct sp_child_args *a) {
    sigset_t all, old;
    sigfillset(&all);
    sigprocmask(SIG_SETMASK, &all, &old);
    char **saved_environ = environ;
    pid_t pid = clone(sp_child_main, sp_child_stack + sizeof sp_child_stack, CLONE_VM | CLONE_VFORK | SIGCHLD, a);
    int saved = errno;
    environ = saved_environ;
    sigprocmask(SIG_SETMASK, &old, NULL);
    errno = saved;
    return pid;
}

static void sp_start(int cgdir, char *payload, size_t len) {
    /* Split the NUL-terminated fields. */
    size_t nf = 0;
    for (size_t i = 0; i < len; i++) if (payload[i] == '\0') nf++;
    if (nf < 6 || payload[len - 1] != '\0') { fprintf(stderr, "lg-guest-helper spawner: malformed request\n"); return; }
    char **f = calloc(nf + 1, sizeof *f);
    if (!f) _exit(1);
    size_t k = 0;
    for (size_t i = 0; i < len; i += strlen(payload + i) + 1) f[k++] = payload + i;
    const char *id = f[1], *cgroup = f[2], *cwd = f[4];
    int want_stdin = strcmp(f[3], "1") == 0;
    size_t argc = strtoul(f[5], NULL, 10);
    if (argc == 0 || 6 + argc > nf || strlen(id) >= sizeof sp_live[0].id || strchr(id, ' ')) {
        fprintf(stderr, "lg-guest-helper spawner: malformed exec request\n");
        free(f);
        return;
    }
    char **argv = calloc(argc + 1, sizeof *argv);
    char **envp = calloc(nf - 6 - argc + 1, sizeof *envp);
    if (!argv || !envp) _exit(1);
    for (size_t i = 0; i < argc; i++) argv[i] = f[6 + i];
    for (size_t i = 6 + argc; i < nf; i++) envp[i - 6 - argc] = f[i];

    struct sp_child *slot = sp_slot(NULL);
    int pin[2] = { -1, -1 }, pout[2] = { -1, -1 }, perr[2] = { -1, -1 }, pst[2] = { -1, -1 };
    int e = 0;
    const char *stage = "fork";
    if (!slot) e = EAGAIN;
    else if ((want_stdin ? pipe2(pin, O_CLOEXEC) : ((pin[0] = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0 ? -1 : 0)) < 0 ||
             pipe2(pout, O_CLOEXEC) < 0 || pipe2(perr, O_CLOEXEC) < 0 || pipe2(pst, O_CLOEXEC) < 0) e = errno;
    pid_t pid = -1;
    if (e == 0) {
        struct sp_child_args a = { .cgdir = cgdir, .in = pin[0], .out = pout[1], .err = perr[1], .status = pst[1], .cgroup = cgroup, .cwd = cwd, .argv = argv, .envp = envp };
        pid = sp_spawn(&a);
        if (pid < 0) e = errno;
    }
    /* The child's ends. */
    if (pin[0] >= 0) close(pin[0]);
    if (pout[1] >= 0) close(pout[1]);
    if (perr[1] >= 0) close(perr[1]);
    if (pst[1] >= 0) close(pst[1]);
    if (e == 0) {
        /* The child has exec'd or exited by now (CLONE_VFORK). EOF: execve succeeded (the status pipe is close-on-exec); text: it failed. */
        char msg[64] = { 0 };
        ssize_t n;
        do n = read(pst[0], msg, sizeof msg - 1); while (n < 0 && errno == EINTR);
        if (n > 0) {
            char st[16] = "exec";
            if (sscanf(msg, "%d %15s", &e, st) < 1) e = EIO;
            stage = st[0] == 'c' && st[1] == 'g' ? "cgroup" : st[0] == 'c' ? "cwd" : "exec";
            while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {}
        }
    }
    if (pst[0] >= 0) close(pst[0]);
    if (e != 0) {
        if (pin[1] >= 0) close(pin[1]);
        if (pout[0] >= 0) close(pout[0]);
        if (perr[0] >= 0) close(perr[0]);
        sp_emit("F %s %d %s\n", id, e == 0 ? EIO : e, stage);
    } else {
        slot->pid = pid;
        slot->opened = 0;
        snprintf(slot->id, sizeof slot->id, "%s", id);
        slot->keep[0] = pin[1];
        slot->keep[1] = pout[0];
        slot->keep[2] = perr[0];
        sp_emit("S %s %d %d %d %d\n", id, (int)pid, pin[1], pout[0], perr[0]);
    }
    free(argv);
    free(envp);
    free(f);
}

static void sp_reap(void) {
    for (;;) {
        int status;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid <= 0) return;
        for (int i = 0; i < SP_MAX_LIVE; i++) {
            if (sp_live[i].pid != pid) continue;
            sp_emit("X %s %d\n", sp_live[i].id, status);
            sp_live[i].pid = 0;
            break;
        }
    }
}

static int spawner(const char *cgfd_arg, const char *ctl_arg) {
    int cgdir = atoi(cgfd_arg);
    sp_ctl = atoi(ctl_arg);
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
        fprintf(stderr, "lg-guest-helper spawner: PR_SET_DUMPABLE: %s\n", strerror(errno));
        return 1;
    }
    /* Nothing we hold may reach a command: every fd but stdio is close-on-exec. */
    for (int fd = 3; fd < 1024; fd++) {
        int fl = fcntl(fd, F_GETFD);
        if (fl >= 0) fcntl(fd, F_SETFD, fl | FD_CLOEXEC);
    }
    for (int i = 0; i < SP_MAX_LIVE; i++) {
        sp_live[i].opened = 1;
        sp_live[i].keep[0] = sp_live[i].keep[1] = sp_live[i].keep[2] = -1;
    }
    if (pipe2(sp_sigpipe, O_CLOEXEC | O_NONBLOCK) != 0) return 1;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = sp_on_sigchld;
    sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
    sigaction(SIGCHLD, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    sp_emit("R\n");

    char *buf = NULL;
    for (;;) {
        struct pollfd p[2] = { { .fd = sp_ctl, .events = POLLIN }, { .fd = sp_sigpipe[0], .events = POLLIN } };
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR) continue;
            return 1;
        }
        if (p[1].revents) {
            char drain[64];
            while (read(sp_sigpipe[0], drain, sizeof drain) > 0) {}
            sp_reap();
        }
        if (!p[0].revents) continue;
        uint32_t len;
        if (sp_read_full(sp_ctl, &len, 4) != 0) return 0; /* the agent closed the channel */
        if (len == 0 || len > SP_MAX_REQUEST) {
            fprintf(stderr, "lg-guest-helper spawner: bad request length %u\n", len);
            return 1;
        }
        buf = realloc(buf, len);
        if (!buf || sp_read_full(sp_ctl, buf, len) != 0) return 1;
        if (buf[0] == 'E') sp_start(cgdir, buf, len);
        else if (buf[0] == 'C' && len > 2 && buf[len - 1] == '\0') {
            struct sp_child *c = sp_slot(buf + 2);
            if (c) {
                sp_close_kept(c);
                c->opened = 1;
            }
        }
        sp_reap();
    }
}

int main(int argc, char **argv) {
    if (argc == 4 && strcmp(argv[1], "spawner") == 0) return spawner(argv[2], argv[3]);
    if (argc == 2 && strcmp(argv[1], "reseed") == 0) return reseed();
    if (argc == 3 && strcmp(argv[1], "settime") == 0) return settime(argv[2]);
    return usage();
}
