/* LD_PRELOAD shim for the lake's tests: holds a process inside deltalake's own commit,
 * or moves its wall clock.
 *
 * HAERYU_HOLD_COMMIT=DIR: while DIR/hold exists, every hard link or rename that puts a
 *   Delta log entry (_delta_log/...json) in place first creates DIR/inside, sleeps
 *   0.4 s, then removes DIR/inside.  deltalake has written the entry's content to a
 *   staging file by then; the entry itself does not exist yet.
 * HAERYU_SHIFT_SECONDS=N: CLOCK_REALTIME reads N seconds later (negative: earlier).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int clock_gettime(clockid_t id, struct timespec *ts) {
    static int (*real)(clockid_t, struct timespec *);
    if (!real) real = (int (*)(clockid_t, struct timespec *))dlsym(RTLD_NEXT, "clock_gettime");
    int rc = real(id, ts);
    const char *shift = getenv("HAERYU_SHIFT_SECONDS");
    if (rc == 0 && shift && (id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE))
        ts->tv_sec += atol(shift);
    return rc;
}

static void hold(const char *path) {
    const char *dir = getenv("HAERYU_HOLD_COMMIT");
    if (!dir || !path || !strstr(path, "_delta_log/") || !strstr(path, ".json")) return;
    char flag[4096], inside[4096];
    snprintf(flag, sizeof flag, "%s/hold", dir);
    snprintf(inside, sizeof inside, "%s/inside", dir);
    if (access(flag, F_OK) != 0) return;
    int fd = open(inside, O_CREAT | O_WRONLY, 0644);
    if (fd >= 0) close(fd);
    usleep(400000);
    unlink(inside);
}

typedef int (*link_fn)(const char *, const char *);
typedef int (*linkat_fn)(int, const char *, int, const char *, int);
typedef int (*renameat_fn)(int, const char *, int, const char *);
typedef int (*renameat2_fn)(int, const char *, int, const char *, unsigned int);

#define REAL(name, type) \
    static type real_##name; \
    if (!real_##name) real_##name = (type)dlsym(RTLD_NEXT, #name)

int link(const char *from, const char *to) {
    REAL(link, link_fn);
    hold(to);
    return real_link(from, to);
}

int linkat(int fd1, const char *from, int fd2, const char *to, int flags) {
    REAL(linkat, linkat_fn);
    hold(to);
    return real_linkat(fd1, from, fd2, to, flags);
}

int rename(const char *from, const char *to) {
    REAL(rename, link_fn);
    hold(to);
    return real_rename(from, to);
}

int renameat(int fd1, const char *from, int fd2, const char *to) {
    REAL(renameat, renameat_fn);
    hold(to);
    return real_renameat(fd1, from, fd2, to);
}

int renameat2(int fd1, const char *from, int fd2, const char *to, unsigned int flags) {
    REAL(renameat2, renameat2_fn);
    hold(to);
    return real_renameat2(fd1, from, fd2, to, flags);
}
