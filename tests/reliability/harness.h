/* The scaffolding the kill and power-cut drivers (crash_loop.c,
 * powerloss_db.c) share: the protocol lines a writer child sends its parent,
 * reading them, counting violations, running the rollback tool after a power
 * cut and pruning old snapshots between rounds. Header-only (static
 * functions): each driver is one translation unit. Define _GNU_SOURCE first.
 */
#ifndef AIDB_RELIABILITY_HARNESS_H
#define AIDB_RELIABILITY_HARNESS_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static inline long long now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

/* Writer side: one protocol line to the parent (stdout is the pipe), in one
 * write(2) when it fits: lines of up to PIPE_BUF bytes from several threads
 * never interleave. Exits with 4 if the pipe fails. */
static inline void say(const char* fmt, ...) {
  char buf[8192];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (n >= (int)sizeof buf) n = (int)sizeof buf - 1;
  ssize_t off = 0;
  while (off < n) {
    ssize_t w = write(1, buf + off, (size_t)(n - off));
    if (w < 0) {
      if (errno == EINTR) continue;
      _exit(4);
    }
    off += w;
  }
}

/* Forks a writer child whose stdout is a pipe to the parent. Returns the
 * child's pid (0 in the child, which then sets up and execs), with the
 * parent's read end in *from_child; -1 if the pipe or the fork failed. */
static inline pid_t fork_writer(int* from_child) {
  int p[2];
  if (pipe(p) != 0) return -1;
  pid_t pid = fork();
  if (pid == 0) {
    dup2(p[1], 1);
    close(p[0]);
    close(p[1]);
    return 0;
  }
  close(p[1]);
  if (pid < 0) {
    close(p[0]);
    return -1;
  }
  *from_child = p[0];
  return pid;
}

/* Parent side: what the writer sent, read as it comes. */
struct child_output {
  char* data; /* NUL-terminated by child_output_finish() */
  size_t len, cap;
};

static inline void child_output_init(struct child_output* o) {
  o->cap = 1 << 20;
  o->len = 0;
  o->data = malloc(o->cap);
  if (!o->data) abort();
}

/* One read(2) from fd appended; returns what read returned. */
static inline ssize_t child_output_read(struct child_output* o, int fd) {
  ssize_t n = read(fd, o->data + o->len, o->cap - o->len - 1);
  if (n > 0) {
    o->len += (size_t)n;
    if (o->len + 8192 >= o->cap) {
      o->data = realloc(o->data, o->cap *= 2);
      if (!o->data) abort();
    }
  }
  return n;
}

/* Once the writer is gone or killed: closes fd, reaps pid, NUL-terminates
 * the output; returns the wait status. */
static inline int child_output_finish(struct child_output* o, int fd, pid_t pid) {
  close(fd);
  int status = 0;
  waitpid(pid, &status, 0);
  o->data[o->len] = 0;
  return status;
}

/* Writer child, before exec: the powerfs shim preloaded, watching `root`,
 * journalling to `side`, cutting the power on SIGUSR2 and, with cut_at > 0,
 * at that operation count. */
static inline void powerfs_child_env(const char* shim, const char* root, const char* side,
                                     int cut_at) {
  setenv("LD_PRELOAD", shim, 1);
  setenv("AIDB_POWERFS_ROOT", root, 1);
  setenv("AIDB_POWERFS_SIDE", side, 1);
  setenv("AIDB_POWERFS_SIGNAL", "12", 1);
  if (cut_at > 0) {
    char n[32];
    snprintf(n, sizeof n, "%d", cut_at);
    setenv("AIDB_POWERFS_CUT_AT", n, 1);
  }
}

/* Violations found by the checks: printed at once, counted. */
static int violations;

static inline void violation(int round, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  printf("VIOLATION round %d: ", round);
  vprintf(fmt, ap);
  putchar('\n');
  va_end(ap);
  ++violations;
}

/* This program's path, to re-execute it as the writer; 0 on success. */
static inline int self_path(char* out, size_t cap) {
  ssize_t n = readlink("/proc/self/exe", out, cap - 1);
  if (n <= 0) return -1;
  out[n] = 0;
  return 0;
}

/* Runs the powerfs rollback tool on `root` after a cut (its output hidden
 * unless AIDB_POWERFS_VERBOSE is set); 0 on success. */
static inline int run_rollback(const char* tool, const char* root, const char* side,
                               const char* variant, const char* seed) {
  pid_t pid = fork();
  if (pid == 0) {
    if (!getenv("AIDB_POWERFS_VERBOSE")) {
      int fd = open("/dev/null", O_WRONLY);
      dup2(fd, 1);
    }
    execl(tool, tool, root, side, variant, seed, (char*)NULL);
    _exit(127);
  }
  int st = 0;
  waitpid(pid, &st, 0);
  return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 1;
}

/* Removes the snapshots in cdir/snapshots that cdir/MANIFEST does not name
 * and no path in keep[0..nkeep) contains (NULL entries allowed): AIDB never
 * deletes old snapshots, and hundreds of rounds would fill the RAM disk.
 * Done between rounds, not under test. */
static inline void prune_snapshots_in(const char* cdir, const char* const* keep, int nkeep) {
  char p[4500], manifest[8192] = "";
  snprintf(p, sizeof p, "%s/MANIFEST", cdir);
  FILE* f = fopen(p, "r");
  if (f) {
    size_t n = fread(manifest, 1, sizeof manifest - 1, f);
    manifest[n] = 0;
    fclose(f);
  }
  snprintf(p, sizeof p, "%s/snapshots", cdir);
  DIR* d = opendir(p);
  if (!d) return;
  struct dirent* e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.' || strstr(manifest, e->d_name)) continue;
    int kept = 0;
    for (int k = 0; k < nkeep; ++k) kept |= keep[k] && strstr(keep[k], e->d_name) != NULL;
    if (kept) continue;
    char f2[4800];
    snprintf(f2, sizeof f2, "%s/%s", p, e->d_name);
    unlink(f2);
  }
  closedir(d);
}

#endif /* AIDB_RELIABILITY_HARNESS_H */
