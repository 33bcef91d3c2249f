/* measure: runs a command and reports, in one line of key=value pairs, the
 * time from exec to the first appearance of a marker on its stdout (or
 * stderr), the time to its exit, its exit status and its peak RSS.
 *
 *   measure [--marker TEXT] [--timeout SECONDS] -- COMMAND ARGS...
 *
 * The command's output is read through a pipe and discarded, so terminal
 * speed is not measured. Times are CLOCK_MONOTONIC, in milliseconds. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int main(int argc, char **argv)
{
    const char *marker = NULL;
    double timeout_s = 300;
    int i = 1;
    for (; i < argc; i++) {
        if (!strcmp(argv[i], "--marker") && i + 1 < argc)
            marker = argv[++i];
        else if (!strcmp(argv[i], "--timeout") && i + 1 < argc)
            timeout_s = atof(argv[++i]);
        else if (!strcmp(argv[i], "--")) {
            i++;
            break;
        } else {
            fprintf(stderr, "usage: measure [--marker TEXT] [--timeout S] -- CMD ARGS...\n");
            return 2;
        }
    }
    if (i >= argc) {
        fprintf(stderr, "measure: no command\n");
        return 2;
    }
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return perror("pipe"), 1;
    double t0 = now_ms();
    pid_t pid = fork();
    if (pid < 0)
        return perror("fork"), 1;
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDONLY);
        dup2(devnull, 0);
        dup2(p[1], 1);
        dup2(p[1], 2);
        execvp(argv[i], argv + i);
        _exit(127);
    }
    close(p[1]);
    /* Keeps the tail of what was read so a marker split across reads is seen. */
    char win[8192];
    size_t have = 0;
    double t_mark = -1;
    size_t mlen = marker ? strlen(marker) : 0;
    for (;;) {
        double left = timeout_s * 1e3 - (now_ms() - t0);
        if (left <= 0) {
            kill(pid, SIGKILL);
            break;
        }
        struct pollfd pfd = { .fd = p[0], .events = POLLIN };
        int r = poll(&pfd, 1, (int)left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            continue;
        char buf[4096];
        ssize_t n = read(p[0], buf, sizeof(buf));
        if (n <= 0)
            break;
        if (t_mark >= 0)
            continue;
        if (!marker) {
            t_mark = now_ms() - t0;
            continue;
        }
        if (have + (size_t)n > sizeof(win)) {
            size_t keep = mlen < have ? mlen : have;
            memmove(win, win + have - keep, keep);
            have = keep;
        }
        size_t take = (size_t)n < sizeof(win) - have ? (size_t)n : sizeof(win) - have;
        memcpy(win + have, buf, take);
        have += take;
        if (memmem(win, have, marker, mlen))
            t_mark = now_ms() - t0;
    }
    int status;
    struct rusage ru;
    wait4(pid, &status, 0, &ru);
    double t_exit = now_ms() - t0;
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    printf("marker_ms=%.3f exit_ms=%.3f status=%d maxrss_kb=%ld\n", t_mark, t_exit, code,
           ru.ru_maxrss);
    return 0;
}
