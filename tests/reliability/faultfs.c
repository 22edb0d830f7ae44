/* faultfs: an LD_PRELOAD shim that makes file-system calls fail on command.
 *
 * Intercepted (by their libc names, as libaidb calls them through the PLT):
 *   write   write, pwrite, pwrite64, writev, pwritev, pwritev64
 *   fsync   fsync, fdatasync
 *   rename  rename, renameat, renameat2
 *   ftruncate ftruncate, ftruncate64, truncate
 *
 * A fault is described by a spec string of ';'-separated key=value pairs:
 *   ops=write,fsync,rename,ftruncate   which call classes (default: all)
 *   path=SUBSTRING  only calls on a file whose path contains SUBSTRING (for an
 *                   fd, its /proc/self/fd link; for rename, either name)
 *   after=N         let the first N matching calls through (default 0)
 *   count=M         then fail M calls (default -1: every later call)
 *   errno=ENOSPC|EIO|EDQUOT|EROFS   the error (default EIO)
 *   mode=fail       return -1 with errno (default)
 *   mode=short      writes write only half their bytes (at least 1), then the
 *                   next call of the write fails with errno (what a full disk does)
 *   mode=kill       raise SIGKILL instead of making the call (a crash point)
 *   mode=killafter  make the call, then raise SIGKILL (crash right after it)
 * An empty spec (or "off") disables faults.
 *
 * The spec comes from, in order of precedence:
 *   - faultfs_configure(spec) called in the process (find it with dlsym);
 *   - the file named by AIDB_FAULT_FILE, re-read whenever its mtime or size
 *     changes (so a test can steer a daemon from outside);
 *   - the environment variable AIDB_FAULT at start-up.
 * faultfs_injected() returns how many calls were failed so far. When
 * AIDB_FAULT_LOG names a file, each injected fault appends one line to it.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define OP_WRITE 1
#define OP_FSYNC 2
#define OP_RENAME 4
#define OP_TRUNC 8

#define MODE_FAIL 0
#define MODE_SHORT 1
#define MODE_KILL 2
#define MODE_KILLAFTER 3

struct spec {
  int active;
  int ops;
  char path[512];
  long long after;
  long long count;
  int err;
  int mode;
};

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static struct spec g_spec;
static long long g_seen;     /* matching calls so far under the current spec */
static long long g_injected; /* calls failed so far (all specs) */
static int g_api_set;        /* faultfs_configure was called: ignore the file */
static struct timespec g_file_mtime;
static off_t g_file_size = -1;
static __thread int t_busy; /* our own calls (reading the control file, logging) */

static int parse_errno(const char* s) {
  if (!strcmp(s, "ENOSPC")) return ENOSPC;
  if (!strcmp(s, "EIO")) return EIO;
  if (!strcmp(s, "EDQUOT")) return EDQUOT;
  if (!strcmp(s, "EROFS")) return EROFS;
  if (!strcmp(s, "EINTR")) return EINTR;
  return atoi(s) > 0 ? atoi(s) : EIO;
}

/* Parses `text` into *out. Unknown keys are ignored. */
static void parse_spec(const char* text, struct spec* out) {
  memset(out, 0, sizeof *out);
  out->ops = OP_WRITE | OP_FSYNC | OP_RENAME | OP_TRUNC;
  out->count = -1;
  out->err = EIO;
  if (text == NULL) return;
  while (*text == ' ' || *text == '\n' || *text == '\t') ++text;
  if (*text == 0 || !strncmp(text, "off", 3)) return;
  out->active = 1;
  char buf[1024];
  snprintf(buf, sizeof buf, "%s", text);
  char* save = NULL;
  for (char* kv = strtok_r(buf, ";\n", &save); kv; kv = strtok_r(NULL, ";\n", &save)) {
    while (*kv == ' ') ++kv;
    char* eq = strchr(kv, '=');
    if (!eq) continue;
    *eq = 0;
    const char* k = kv;
    const char* v = eq + 1;
    if (!strcmp(k, "ops")) {
      out->ops = 0;
      if (strstr(v, "write")) out->ops |= OP_WRITE;
      if (strstr(v, "sync")) out->ops |= OP_FSYNC;
      if (strstr(v, "rename")) out->ops |= OP_RENAME;
      if (strstr(v, "trunc")) out->ops |= OP_TRUNC;
    } else if (!strcmp(k, "path")) {
      snprintf(out->path, sizeof out->path, "%s", v);
    } else if (!strcmp(k, "after")) {
      out->after = atoll(v);
    } else if (!strcmp(k, "count")) {
      out->count = atoll(v);
    } else if (!strcmp(k, "errno")) {
      out->err = parse_errno(v);
    } else if (!strcmp(k, "mode")) {
      if (!strcmp(v, "short")) out->mode = MODE_SHORT;
      else if (!strcmp(v, "kill")) out->mode = MODE_KILL;
      else if (!strcmp(v, "killafter")) out->mode = MODE_KILLAFTER;
      else out->mode = MODE_FAIL;
    }
  }
}

__attribute__((visibility("default"))) void faultfs_configure(const char* spec) {
  pthread_mutex_lock(&g_mu);
  parse_spec(spec, &g_spec);
  g_seen = 0;
  g_api_set = 1;
  pthread_mutex_unlock(&g_mu);
}

__attribute__((visibility("default"))) long long faultfs_injected(void) {
  pthread_mutex_lock(&g_mu);
  long long n = g_injected;
  pthread_mutex_unlock(&g_mu);
  return n;
}

__attribute__((constructor)) static void faultfs_init(void) {
  parse_spec(getenv("AIDB_FAULT"), &g_spec);
}

/* Re-reads AIDB_FAULT_FILE if it changed. Called with g_mu held. */
static void maybe_reload(void) {
  const char* f = g_api_set ? NULL : getenv("AIDB_FAULT_FILE");
  if (!f) return;
  struct stat sb;
  if (stat(f, &sb) != 0) {
    if (g_file_size != -1) {
      g_file_size = -1;
      parse_spec(NULL, &g_spec);
      g_seen = 0;
    }
    return;
  }
  if (sb.st_mtim.tv_sec == g_file_mtime.tv_sec && sb.st_mtim.tv_nsec == g_file_mtime.tv_nsec &&
      sb.st_size == g_file_size) {
    return;
  }
  g_file_mtime = sb.st_mtim;
  g_file_size = sb.st_size;
  char text[1024] = {0};
  FILE* fp = fopen(f, "r");
  if (fp) {
    size_t n = fread(text, 1, sizeof text - 1, fp);
    text[n] = 0;
    fclose(fp);
  }
  parse_spec(text, &g_spec);
  g_seen = 0;
}

static void fd_path(int fd, char* out, size_t cap) {
  char link[64];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, out, cap - 1);
  out[n > 0 ? n : 0] = 0;
}

static void log_fault(const char* call, const char* path, int mode, int err) {
  const char* f = getenv("AIDB_FAULT_LOG");
  if (!f) return;
  FILE* fp = fopen(f, "a");
  if (!fp) return;
  static const char* names[] = {"fail", "short", "kill", "killafter"};
  fprintf(fp, "%s %s %s %s\n", call, names[mode],
          mode == MODE_KILL || mode == MODE_KILLAFTER ? "-" : strerror(err), path);
  fclose(fp);
}

/* Decides the fate of one call. Returns -1 to let it through, else the mode
 * (and *err the errno to set). */
static int decide(int op, const char* call, int fd, const char* p1, const char* p2, int* err) {
  if (t_busy) return -1;
  t_busy = 1;
  int result = -1;
  pthread_mutex_lock(&g_mu);
  maybe_reload();
  if (g_spec.active && (g_spec.ops & op)) {
    char path[4096];
    path[0] = 0;
    int match = 1;
    if (g_spec.path[0]) {
      if (fd >= 0) {
        fd_path(fd, path, sizeof path);
        match = strstr(path, g_spec.path) != NULL;
      } else {
        match = (p1 && strstr(p1, g_spec.path)) || (p2 && strstr(p2, g_spec.path));
        snprintf(path, sizeof path, "%s", p1 ? p1 : "");
      }
    } else if (fd >= 0) {
      fd_path(fd, path, sizeof path);
    } else {
      snprintf(path, sizeof path, "%s", p1 ? p1 : "");
    }
    if (match) {
      long long n = g_seen++;
      if (n >= g_spec.after && (g_spec.count < 0 || n < g_spec.after + g_spec.count)) {
        result = g_spec.mode;
        /* mode=short: the first call of the window writes half, later ones fail. */
        if (result == MODE_SHORT && n > g_spec.after) result = MODE_FAIL;
        *err = g_spec.err;
        g_injected++;
        log_fault(call, path, g_spec.mode, g_spec.err);
      }
    }
  }
  pthread_mutex_unlock(&g_mu);
  t_busy = 0;
  return result;
}

/* The next definition of `name` (libc's), looked up once. */
#define REAL(name, type)                \
  static __typeof__(&name) real_##name; \
  if (!real_##name) real_##name = (__typeof__(&name))dlsym(RTLD_NEXT, #name)

static void die_now(void) {
  raise(SIGKILL);
  _exit(137);
}

/* Shared logic for the write family. `total` is the byte count asked for. */
#define WRITE_BODY(callname, fd, total, DO_REAL, DO_SHORT)  \
  int err = 0;                                              \
  int m = decide(OP_WRITE, callname, fd, NULL, NULL, &err); \
  if (m == MODE_KILL) die_now();                            \
  if (m == MODE_FAIL) {                                     \
    errno = err;                                            \
    return -1;                                              \
  }                                                         \
  if (m == MODE_SHORT && (total) > 1) {                     \
    DO_SHORT;                                               \
  }                                                         \
  ssize_t r = DO_REAL;                                      \
  if (m == MODE_KILLAFTER) die_now();                       \
  return r;

ssize_t write(int fd, const void* buf, size_t n) {
  REAL(write, ssize_t(*)(int, const void*, size_t));
  WRITE_BODY("write", fd, n, real_write(fd, buf, n), return real_write(fd, buf, n / 2))
}

ssize_t pwrite(int fd, const void* buf, size_t n, off_t off) {
  REAL(pwrite, ssize_t(*)(int, const void*, size_t, off_t));
  WRITE_BODY("pwrite", fd, n, real_pwrite(fd, buf, n, off), return real_pwrite(fd, buf, n / 2, off))
}

ssize_t pwrite64(int fd, const void* buf, size_t n, off_t off) {
  REAL(pwrite64, ssize_t(*)(int, const void*, size_t, off_t));
  WRITE_BODY("pwrite64", fd, n, real_pwrite64(fd, buf, n, off),
             return real_pwrite64(fd, buf, n / 2, off))
}

static size_t iov_total(const struct iovec* v, int cnt) {
  size_t t = 0;
  for (int i = 0; i < cnt; ++i) t += v[i].iov_len;
  return t;
}

/* A short vectored write: only the first half of the bytes. */
static ssize_t short_iov(int fd, const struct iovec* v, int cnt, off_t off, int positional) {
  REAL(pwrite, ssize_t(*)(int, const void*, size_t, off_t));
  REAL(write, ssize_t(*)(int, const void*, size_t));
  size_t want = iov_total(v, cnt) / 2;
  size_t done = 0;
  for (int i = 0; i < cnt && done < want; ++i) {
    size_t n = v[i].iov_len < want - done ? v[i].iov_len : want - done;
    ssize_t r = positional ? real_pwrite(fd, v[i].iov_base, n, off + (off_t)done)
                           : real_write(fd, v[i].iov_base, n);
    if (r < 0) return done ? (ssize_t)done : r;
    done += (size_t)r;
    if ((size_t)r < n) break;
  }
  return (ssize_t)done;
}

ssize_t writev(int fd, const struct iovec* v, int cnt) {
  REAL(writev, ssize_t(*)(int, const struct iovec*, int));
  WRITE_BODY("writev", fd, iov_total(v, cnt), real_writev(fd, v, cnt),
             return short_iov(fd, v, cnt, 0, 0))
}

ssize_t pwritev(int fd, const struct iovec* v, int cnt, off_t off) {
  REAL(pwritev, ssize_t(*)(int, const struct iovec*, int, off_t));
  WRITE_BODY("pwritev", fd, iov_total(v, cnt), real_pwritev(fd, v, cnt, off),
             return short_iov(fd, v, cnt, off, 1))
}

ssize_t pwritev64(int fd, const struct iovec* v, int cnt, off_t off) {
  REAL(pwritev64, ssize_t(*)(int, const struct iovec*, int, off_t));
  WRITE_BODY("pwritev64", fd, iov_total(v, cnt), real_pwritev64(fd, v, cnt, off),
             return short_iov(fd, v, cnt, off, 1))
}

#define SIMPLE_BODY(op, callname, fd, p1, p2, DO_REAL) \
  int err = 0;                                         \
  int m = decide(op, callname, fd, p1, p2, &err);      \
  if (m == MODE_KILL) die_now();                       \
  if (m == MODE_FAIL || m == MODE_SHORT) {             \
    errno = err;                                       \
    return -1;                                         \
  }                                                    \
  int r = DO_REAL;                                     \
  if (m == MODE_KILLAFTER) die_now();                  \
  return r;

int fsync(int fd) {
  REAL(fsync, int (*)(int));
  SIMPLE_BODY(OP_FSYNC, "fsync", fd, NULL, NULL, real_fsync(fd))
}

int fdatasync(int fd) {
  REAL(fdatasync, int (*)(int));
  SIMPLE_BODY(OP_FSYNC, "fdatasync", fd, NULL, NULL, real_fdatasync(fd))
}

int rename(const char* a, const char* b) {
  REAL(rename, int (*)(const char*, const char*));
  SIMPLE_BODY(OP_RENAME, "rename", -1, a, b, real_rename(a, b))
}

int renameat(int da, const char* a, int db, const char* b) {
  REAL(renameat, int (*)(int, const char*, int, const char*));
  SIMPLE_BODY(OP_RENAME, "renameat", -1, a, b, real_renameat(da, a, db, b))
}

int renameat2(int da, const char* a, int db, const char* b, unsigned flags) {
  REAL(renameat2, int (*)(int, const char*, int, const char*, unsigned));
  SIMPLE_BODY(OP_RENAME, "renameat2", -1, a, b, real_renameat2(da, a, db, b, flags))
}

int ftruncate(int fd, off_t len) {
  REAL(ftruncate, int (*)(int, off_t));
  SIMPLE_BODY(OP_TRUNC, "ftruncate", fd, NULL, NULL, real_ftruncate(fd, len))
}

int ftruncate64(int fd, off_t len) {
  REAL(ftruncate64, int (*)(int, off_t));
  SIMPLE_BODY(OP_TRUNC, "ftruncate64", fd, NULL, NULL, real_ftruncate64(fd, len))
}

int truncate(const char* p, off_t len) {
  REAL(truncate, int (*)(const char*, off_t));
  SIMPLE_BODY(OP_TRUNC, "truncate", -1, p, NULL, real_truncate(p, len))
}
