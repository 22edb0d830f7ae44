/* powerfs: an LD_PRELOAD shim that records what a power cut would lose.
 *
 * kill -9 keeps the page cache, so a crash test passes even when an fsync is
 * missing. This shim journals, for every file and directory under a root,
 * what was changed since it was last synced; at a "power cut" it kills the
 * process, and aidb_powerfs_rollback (powerfs_rollback.c) then rewinds the
 * files to what a disk could hold (see tests/reliability/README.md).
 *
 * Environment:
 *   AIDB_POWERFS_ROOT    the tracked directory (must exist); unset: the shim
 *                        does nothing
 *   AIDB_POWERFS_SIDE    an empty directory on the same file system (for the
 *                        journal, the pre-image blobs and hard links that keep
 *                        every touched inode reachable)
 *   AIDB_POWERFS_CUT_AT  N > 0: cut the power right before the N-th counted
 *                        operation (a write, truncate, fallocate, create,
 *                        unlink, rename, mkdir, rmdir or sync under the root)
 *   AIDB_POWERFS_SIGNAL  a signal number (e.g. 12 for SIGUSR2): cut the power
 *                        when it arrives (at the next operation boundary)
 *
 * Journal (SIDE/journal), one line per event, `seq` counting from 1:
 *   C seq ino size_before pre_off pre_len blob_off   content change; the bytes
 *                        [pre_off, pre_off+pre_len) as they were before it are
 *                        at blob_off in SIDE/blobs
 *   S seq ino start ns   fsync/fdatasync of a file returned; it covers events
 *                        with a seq below `start` (taken when it was called,
 *                        at CLOCK_MONOTONIC time ns)
 *   D seq dir gen start  fsync of directory `dir` (relative to the root, "."
 *                        the root) in its incarnation `gen`
 *   A seq start          sync()/syncfs() returned
 *   N seq dir gen name ino kind   an entry created (kind f: a file, ino its
 *                        inode; kind d: a directory, ino its gen)
 *   U seq dir gen name ino        a file's entry removed
 *   R seq dir gen name childgen   an (empty) directory removed
 *   M seq sdir sgen sname ddir dgen dname ino replaced   a rename (replaced:
 *                        the inode it replaced, 0 if none)
 *   X seq reason         something this model does not cover (the rollback
 *                        then fails rather than guess)
 *   K seq monotonic_ns   the cut
 * A directory's gen is 0 if it existed when the shim started, else the seq of
 * the mkdir that made it. Every inode an event names has a hard link
 * SIDE/ino/<ino>, so its data stays reachable after an unlink or a rename
 * over it. All events are made under one lock together with the call itself,
 * so a cut always falls between two whole operations.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

/* ---------------- the real calls ---------------- */

static ssize_t (*r_write)(int, const void*, size_t);
static ssize_t (*r_pwrite)(int, const void*, size_t, off_t);
static ssize_t (*r_pwrite64)(int, const void*, size_t, off_t);
static ssize_t (*r_writev)(int, const struct iovec*, int);
static ssize_t (*r_pwritev)(int, const struct iovec*, int, off_t);
static ssize_t (*r_pwritev64)(int, const struct iovec*, int, off_t);
static ssize_t (*r_pwritev2)(int, const struct iovec*, int, off_t, int);
static int (*r_fsync)(int);
static int (*r_fdatasync)(int);
static void (*r_sync)(void);
static int (*r_syncfs)(int);
static int (*r_open)(const char*, int, ...);
static int (*r_open64)(const char*, int, ...);
static int (*r_openat)(int, const char*, int, ...);
static int (*r_openat64)(int, const char*, int, ...);
static int (*r_creat)(const char*, mode_t);
static int (*r_mkdir)(const char*, mode_t);
static int (*r_mkdirat)(int, const char*, mode_t);
static int (*r_unlink)(const char*);
static int (*r_unlinkat)(int, const char*, int);
static int (*r_rmdir)(const char*);
static int (*r_remove)(const char*);
static int (*r_rename)(const char*, const char*);
static int (*r_renameat)(int, const char*, int, const char*);
static int (*r_renameat2)(int, const char*, int, const char*, unsigned);
static int (*r_ftruncate)(int, off_t);
static int (*r_ftruncate64)(int, off_t);
static int (*r_truncate)(const char*, off_t);
static int (*r_truncate64)(const char*, off_t);
static int (*r_fallocate)(int, int, off_t, off_t);
static int (*r_fallocate64)(int, int, off_t, off_t);
static int (*r_posix_fallocate)(int, off_t, off_t);
static int (*r_posix_fallocate64)(int, off_t, off_t);
static void* (*r_mmap)(void*, size_t, int, int, int, off_t);
static void* (*r_mmap64)(void*, size_t, int, int, int, off_t);
static int (*r_link)(const char*, const char*);
static int (*r_linkat)(int, const char*, int, const char*, int);
static int (*r_symlink)(const char*, const char*);
static int (*r_symlinkat)(const char*, int, const char*);
static ssize_t (*r_copy_file_range)(int, off_t*, int, off_t*, size_t, unsigned);

#define LOAD(name) r_##name = (__typeof__(r_##name))dlsym(RTLD_NEXT, #name)

static void load_all(void) {
  LOAD(write);
  LOAD(pwrite);
  LOAD(pwrite64);
  LOAD(writev);
  LOAD(pwritev);
  LOAD(pwritev64);
  LOAD(pwritev2);
  LOAD(fsync);
  LOAD(fdatasync);
  LOAD(sync);
  LOAD(syncfs);
  LOAD(open);
  LOAD(open64);
  LOAD(openat);
  LOAD(openat64);
  LOAD(creat);
  LOAD(mkdir);
  LOAD(mkdirat);
  LOAD(unlink);
  LOAD(unlinkat);
  LOAD(rmdir);
  LOAD(remove);
  LOAD(rename);
  LOAD(renameat);
  LOAD(renameat2);
  LOAD(ftruncate);
  LOAD(ftruncate64);
  LOAD(truncate);
  LOAD(truncate64);
  LOAD(fallocate);
  LOAD(fallocate64);
  LOAD(posix_fallocate);
  LOAD(posix_fallocate64);
  LOAD(mmap);
  LOAD(mmap64);
  LOAD(link);
  LOAD(linkat);
  LOAD(symlink);
  LOAD(symlinkat);
  LOAD(copy_file_range);
}

#define ENSURE()              \
  do {                        \
    if (!r_write) load_all(); \
  } while (0)

/* ---------------- state ---------------- */

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static int g_active;
static char g_root[PATH_MAX];
static size_t g_root_len;
static dev_t g_root_dev;
static char g_side[PATH_MAX];
static int g_journal = -1;
static int g_blobs = -1;
static uint64_t g_blob_end;
static uint64_t g_seq;     /* last seq used */
static long long g_ops;    /* counted operations so far */
static long long g_cut_at; /* 0: none */
static int g_cut_pipe[2] = {-1, -1};
static __thread int t_inside; /* our own calls */

/* Directories created since start: path (relative) -> gen. Small. */
struct dirgen {
  char* path;
  uint64_t gen;
};
static struct dirgen* g_dirs;
static size_t g_ndirs, g_capdirs;

/* Inodes that have a side link. */
static ino_t* g_inos;
static size_t g_ninos, g_capinos;

static int has_ino(ino_t ino) {
  for (size_t i = 0; i < g_ninos; ++i) {
    if (g_inos[i] == ino) return 1;
  }
  return 0;
}

static uint64_t dir_gen(const char* rel) {
  for (size_t i = 0; i < g_ndirs; ++i) {
    if (!strcmp(g_dirs[i].path, rel)) return g_dirs[i].gen;
  }
  return 0;
}

static void set_dir_gen(const char* rel, uint64_t gen) {
  for (size_t i = 0; i < g_ndirs; ++i) {
    if (!strcmp(g_dirs[i].path, rel)) {
      g_dirs[i].gen = gen;
      return;
    }
  }
  if (g_ndirs == g_capdirs) {
    g_capdirs = g_capdirs ? g_capdirs * 2 : 64;
    g_dirs = realloc(g_dirs, g_capdirs * sizeof *g_dirs);
  }
  g_dirs[g_ndirs].path = strdup(rel);
  g_dirs[g_ndirs].gen = gen;
  ++g_ndirs;
}

static void emit(const char* fmt, ...) {
  char line[3 * PATH_MAX];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line - 1, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n > sizeof line - 2) n = (int)sizeof line - 2;
  line[n++] = '\n';
  const char* p = line;
  while (n > 0) {
    ssize_t w = r_write(g_journal, p, (size_t)n);
    if (w < 0) {
      if (errno == EINTR) continue;
      abort();
    }
    p += w;
    n -= (int)w;
  }
}

static void cut_now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  emit("K %llu %lld", (unsigned long long)++g_seq, (long long)t.tv_sec * 1000000000LL + t.tv_nsec);
  kill(getpid(), SIGKILL);
  for (;;) pause();
}

/* Counts one operation; cuts the power first if it is the chosen one. Called
 * with g_mu held. */
static void count_op(void) {
  ++g_ops;
  if (g_cut_at > 0 && g_ops >= g_cut_at) cut_now();
}

/* Makes SIDE/ino/<ino> a hard link of `path` (or of the inode behind fd, via
 * /proc/self/fd) unless it has one. */
static void side_link_path(ino_t ino, const char* path) {
  if (has_ino(ino)) return;
  char dst[PATH_MAX + 64];
  snprintf(dst, sizeof dst, "%s/ino/%llu", g_side, (unsigned long long)ino);
  if (r_link(path, dst) != 0 && errno != EEXIST) {
    emit("X %llu cannot link %s: %s", (unsigned long long)++g_seq, path, strerror(errno));
    return;
  }
  if (g_ninos == g_capinos) {
    g_capinos = g_capinos ? g_capinos * 2 : 256;
    g_inos = realloc(g_inos, g_capinos * sizeof *g_inos);
  }
  g_inos[g_ninos++] = ino;
}

static void side_link_fd(int fd, ino_t ino) {
  if (has_ino(ino)) return;
  char src[64];
  snprintf(src, sizeof src, "/proc/self/fd/%d", fd);
  /* linkat with AT_SYMLINK_FOLLOW on /proc/self/fd/N links the open file. */
  char dst[PATH_MAX + 64];
  snprintf(dst, sizeof dst, "%s/ino/%llu", g_side, (unsigned long long)ino);
  if (r_linkat(AT_FDCWD, src, AT_FDCWD, dst, AT_SYMLINK_FOLLOW) != 0 && errno != EEXIST) {
    emit("X %llu cannot link fd %d: %s", (unsigned long long)++g_seq, fd, strerror(errno));
    return;
  }
  if (g_ninos == g_capinos) {
    g_capinos = g_capinos ? g_capinos * 2 : 256;
    g_inos = realloc(g_inos, g_capinos * sizeof *g_inos);
  }
  g_inos[g_ninos++] = ino;
}

/* Is the absolute, normalized `abs` the root or below it? Sets *rel. */
static int under_root(const char* abs, const char** rel) {
  if (strncmp(abs, g_root, g_root_len) != 0) return 0;
  if (abs[g_root_len] == 0) {
    *rel = ".";
    return 1;
  }
  if (abs[g_root_len] != '/') return 0;
  *rel = abs + g_root_len + 1;
  return 1;
}

/* Resolves (dirfd, path) to its parent directory (absolute, via realpath) and
 * its last component. Returns 1 if the parent is under the root. */
struct where {
  char parent[PATH_MAX];
  const char* rel; /* into parent */
  char name[NAME_MAX + 1];
  char full[2 * PATH_MAX];
  uint64_t gen;
};

static int resolve(int dirfd, const char* path, struct where* w) {
  if (!g_active || path == NULL || !*path) return 0;
  char joined[2 * PATH_MAX];
  if (path[0] == '/') {
    snprintf(joined, sizeof joined, "%s", path);
  } else {
    char base[PATH_MAX];
    if (dirfd == AT_FDCWD) {
      if (!getcwd(base, sizeof base)) return 0;
    } else {
      char link[64];
      snprintf(link, sizeof link, "/proc/self/fd/%d", dirfd);
      ssize_t n = readlink(link, base, sizeof base - 1);
      if (n <= 0) return 0;
      base[n] = 0;
    }
    snprintf(joined, sizeof joined, "%s/%s", base, path);
  }
  /* Strip trailing slashes, then split off the last component. */
  size_t len = strlen(joined);
  while (len > 1 && joined[len - 1] == '/') joined[--len] = 0;
  char* slash = strrchr(joined, '/');
  if (!slash) return 0;
  snprintf(w->name, sizeof w->name, "%s", slash + 1);
  if (!strcmp(w->name, ".") || !strcmp(w->name, "..") || !w->name[0]) return 0;
  if (slash == joined) snprintf(joined, sizeof joined, "/");
  else *slash = 0;
  if (!realpath(joined, w->parent)) return 0;
  if (!under_root(w->parent, &w->rel)) return 0;
  snprintf(w->full, sizeof w->full, "%s/%s", w->parent, w->name);
  w->gen = 0; /* set under g_mu by the caller (set_gens) */
  return 1;
}

/* The tracked inode behind fd, or 0. */
static ino_t fd_tracked(int fd, struct stat* sb) {
  if (!g_active || t_inside) return 0;
  if (fstat(fd, sb) != 0 || !S_ISREG(sb->st_mode) || sb->st_dev != g_root_dev) return 0;
  if (has_ino(sb->st_ino)) return sb->st_ino;
  char link[64], path[PATH_MAX];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, path, sizeof path - 1);
  if (n <= 0) return 0;
  path[n] = 0;
  const char* rel;
  if (!under_root(path, &rel)) return 0;
  return sb->st_ino;
}

static void fd_dir(int fd, struct stat* sb, char* rel_out, size_t cap, int* is_dir) {
  *is_dir = 0;
  if (!S_ISDIR(sb->st_mode)) return;
  char link[64], path[PATH_MAX];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, path, sizeof path - 1);
  if (n <= 0) return;
  path[n] = 0;
  const char* rel;
  if (!under_root(path, &rel)) return;
  snprintf(rel_out, cap, "%s", rel);
  *is_dir = 1;
}

/* Saves [off, off+len) of fd (as it is now) to the blob file; returns the
 * blob offset. Called with g_mu held. */
static uint64_t save_range(ino_t ino, uint64_t off, uint64_t len) {
  uint64_t at = g_blob_end;
  /* Read through the side link: the caller's fd may be write-only. */
  char p[PATH_MAX + 64];
  snprintf(p, sizeof p, "%s/ino/%llu", g_side, (unsigned long long)ino);
  int fd = r_open(p, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    emit("X %llu open %s for a pre-image: %s", (unsigned long long)++g_seq, p, strerror(errno));
    return at;
  }
  char buf[1 << 16];
  uint64_t done = 0;
  while (done < len) {
    size_t want = len - done < sizeof buf ? (size_t)(len - done) : sizeof buf;
    ssize_t r = pread(fd, buf, want, (off_t)(off + done));
    if (r < 0) {
      if (errno == EINTR) continue;
      emit("X %llu pread for pre-image: %s", (unsigned long long)++g_seq, strerror(errno));
      break;
    }
    if (r == 0) break;
    size_t put = 0;
    while (put < (size_t)r) {
      ssize_t w = r_pwrite(g_blobs, buf + put, (size_t)r - put, (off_t)(at + done + put));
      if (w <= 0) abort();
      put += (size_t)w;
    }
    done += (uint64_t)r;
  }
  close(fd);
  g_blob_end = at + done;
  if (done < len) emit("X %llu pre-image short", (unsigned long long)++g_seq);
  return at;
}

/* A content change of [off, off+len) (len may be "to the end"): records the
 * pre-image of the part that exists. Called with g_mu held, before the call. */
static void content_event(int fd, ino_t ino, uint64_t size_before, uint64_t off, uint64_t len) {
  side_link_fd(fd, ino);
  uint64_t pre_off = off, pre_len = 0;
  if (off < size_before) pre_len = (len > size_before - off) ? size_before - off : len;
  uint64_t blob = pre_len ? save_range(ino, pre_off, pre_len) : 0;
  emit("C %llu %llu %llu %llu %llu %llu", (unsigned long long)++g_seq, (unsigned long long)ino,
       (unsigned long long)size_before, (unsigned long long)pre_off, (unsigned long long)pre_len,
       (unsigned long long)blob);
}

static void on_signal(int sig) {
  (void)sig;
  char c = 1;
  if (g_cut_pipe[1] >= 0) (void)!r_write(g_cut_pipe[1], &c, 1);
}

static void* cutter(void* arg) {
  (void)arg;
  char c;
  for (;;) {
    ssize_t n = read(g_cut_pipe[0], &c, 1);
    if (n == 1) break;
    if (n < 0 && errno == EINTR) continue;
    return NULL;
  }
  pthread_mutex_lock(&g_mu);
  cut_now();
  return NULL;
}

__attribute__((constructor)) static void powerfs_init(void) {
  load_all();
  const char* root = getenv("AIDB_POWERFS_ROOT");
  const char* side = getenv("AIDB_POWERFS_SIDE");
  if (!root || !*root || !side || !*side) return;
  if (!realpath(root, g_root) || !realpath(side, g_side)) {
    fprintf(stderr, "powerfs: cannot resolve %s or %s\n", root, side);
    _exit(121);
  }
  g_root_len = strlen(g_root);
  struct stat sb;
  if (stat(g_root, &sb) != 0) _exit(121);
  g_root_dev = sb.st_dev;
  char p[PATH_MAX + 64];
  snprintf(p, sizeof p, "%s/ino", g_side);
  r_mkdir(p, 0755);
  snprintf(p, sizeof p, "%s/journal", g_side);
  g_journal = r_open(p, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  snprintf(p, sizeof p, "%s/blobs", g_side);
  g_blobs = r_open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (g_journal < 0 || g_blobs < 0) {
    fprintf(stderr, "powerfs: cannot open the journal in %s\n", g_side);
    _exit(121);
  }
  struct stat bs;
  fstat(g_blobs, &bs);
  g_blob_end = (uint64_t)bs.st_size;
  const char* cut = getenv("AIDB_POWERFS_CUT_AT");
  g_cut_at = cut ? atoll(cut) : 0;
  const char* sig = getenv("AIDB_POWERFS_SIGNAL");
  if (sig && atoi(sig) > 0) {
    if (pipe2(g_cut_pipe, O_CLOEXEC) == 0) {
      struct sigaction sa;
      memset(&sa, 0, sizeof sa);
      sa.sa_handler = on_signal;
      sa.sa_flags = SA_RESTART;
      sigaction(atoi(sig), &sa, NULL);
      pthread_t t;
      pthread_create(&t, NULL, cutter, NULL);
      pthread_detach(t);
    }
  }
  g_active = 1;
}

/* ---------------- writes ---------------- */

static int fd_is_sync(int fd) {
  int fl = fcntl(fd, F_GETFL);
  return fl >= 0 && (fl & (O_SYNC | O_DSYNC));
}

/* off < 0: the file position (or the end with O_APPEND). */
#define WRITE_WRAP(CALL, FD, LEN, OFF)                                             \
  struct stat sb;                                                                  \
  ino_t ino = fd_tracked(FD, &sb);                                                 \
  if (!ino) return CALL;                                                           \
  pthread_mutex_lock(&g_mu);                                                       \
  count_op();                                                                      \
  off_t o = (OFF);                                                                 \
  if (o < 0) {                                                                     \
    int fl = fcntl(FD, F_GETFL);                                                   \
    o = (fl >= 0 && (fl & O_APPEND)) ? sb.st_size : lseek(FD, 0, SEEK_CUR);        \
  }                                                                                \
  if (o < 0) o = 0;                                                                \
  content_event(FD, ino, (uint64_t)sb.st_size, (uint64_t)o, (uint64_t)(LEN));      \
  uint64_t start = g_seq + 1;                                                      \
  ssize_t r = CALL;                                                                \
  int saved = errno;                                                               \
  if (r > 0 && fd_is_sync(FD))                                                     \
    emit("S %llu %llu %llu", (unsigned long long)++g_seq, (unsigned long long)ino, \
         (unsigned long long)start);                                               \
  pthread_mutex_unlock(&g_mu);                                                     \
  errno = saved;                                                                   \
  return r;

static size_t iov_len(const struct iovec* v, int n) {
  size_t t = 0;
  for (int i = 0; i < n; ++i) t += v[i].iov_len;
  return t;
}

ssize_t write(int fd, const void* b, size_t n) {
  ENSURE();
  WRITE_WRAP(r_write(fd, b, n), fd, n, -1)
}
ssize_t pwrite(int fd, const void* b, size_t n, off_t off) {
  ENSURE();
  WRITE_WRAP(r_pwrite(fd, b, n, off), fd, n, off)
}
ssize_t pwrite64(int fd, const void* b, size_t n, off_t off) {
  ENSURE();
  WRITE_WRAP(r_pwrite64(fd, b, n, off), fd, n, off)
}
ssize_t writev(int fd, const struct iovec* v, int c) {
  ENSURE();
  WRITE_WRAP(r_writev(fd, v, c), fd, iov_len(v, c), -1)
}
ssize_t pwritev(int fd, const struct iovec* v, int c, off_t off) {
  ENSURE();
  WRITE_WRAP(r_pwritev(fd, v, c, off), fd, iov_len(v, c), off)
}
ssize_t pwritev64(int fd, const struct iovec* v, int c, off_t off) {
  ENSURE();
  WRITE_WRAP(r_pwritev64(fd, v, c, off), fd, iov_len(v, c), off)
}
ssize_t pwritev2(int fd, const struct iovec* v, int c, off_t off, int flags) {
  ENSURE();
  WRITE_WRAP(r_pwritev2(fd, v, c, off, flags), fd, iov_len(v, c), off)
}

#define TRUNC_WRAP(CALL, FD, LEN)                              \
  struct stat sb;                                              \
  ino_t ino = fd_tracked(FD, &sb);                             \
  if (!ino) return CALL;                                       \
  pthread_mutex_lock(&g_mu);                                   \
  count_op();                                                  \
  uint64_t l = (LEN) < 0 ? 0 : (uint64_t)(LEN);                \
  content_event(FD, ino, (uint64_t)sb.st_size, l, UINT64_MAX); \
  int r = CALL;                                                \
  int saved = errno;                                           \
  pthread_mutex_unlock(&g_mu);                                 \
  errno = saved;                                               \
  return r;

int ftruncate(int fd, off_t len) {
  ENSURE();
  TRUNC_WRAP(r_ftruncate(fd, len), fd, len)
}
int ftruncate64(int fd, off_t len) {
  ENSURE();
  TRUNC_WRAP(r_ftruncate64(fd, len), fd, len)
}

static int path_truncate(int (*real)(const char*, off_t), const char* p, off_t len) {
  if (!g_active || t_inside) return real(p, len);
  int fd = r_open(p, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return real(p, len);
  struct stat sb;
  ino_t ino = fd_tracked(fd, &sb);
  if (!ino) {
    close(fd);
    return real(p, len);
  }
  pthread_mutex_lock(&g_mu);
  count_op();
  content_event(fd, ino, (uint64_t)sb.st_size, len < 0 ? 0 : (uint64_t)len, UINT64_MAX);
  int r = real(p, len);
  int saved = errno;
  pthread_mutex_unlock(&g_mu);
  close(fd);
  errno = saved;
  return r;
}
int truncate(const char* p, off_t len) {
  ENSURE();
  return path_truncate(r_truncate, p, len);
}
int truncate64(const char* p, off_t len) {
  ENSURE();
  return path_truncate(r_truncate64, p, len);
}

/* fallocate: mode 0 / KEEP_SIZE only allocate (the size change is undone by
 * the size rollback); punching, zeroing, collapsing or inserting changes data. */
#define FALLOC_WRAP(CALL, FD, MODE, OFF, LEN)                                     \
  struct stat sb;                                                                 \
  ino_t ino = fd_tracked(FD, &sb);                                                \
  if (!ino) return CALL;                                                          \
  pthread_mutex_lock(&g_mu);                                                      \
  count_op();                                                                     \
  int m = (MODE) & ~FALLOC_FL_KEEP_SIZE;                                          \
  uint64_t plen = 0;                                                              \
  if (m & (FALLOC_FL_COLLAPSE_RANGE | FALLOC_FL_INSERT_RANGE)) plen = UINT64_MAX; \
  else if (m) plen = (uint64_t)(LEN);                                             \
  content_event(FD, ino, (uint64_t)sb.st_size, (uint64_t)(OFF), plen);            \
  int r = CALL;                                                                   \
  int saved = errno;                                                              \
  pthread_mutex_unlock(&g_mu);                                                    \
  errno = saved;                                                                  \
  return r;

int fallocate(int fd, int mode, off_t off, off_t len) {
  ENSURE();
  FALLOC_WRAP(r_fallocate(fd, mode, off, len), fd, mode, off, len)
}
int fallocate64(int fd, int mode, off_t off, off_t len) {
  ENSURE();
  FALLOC_WRAP(r_fallocate64(fd, mode, off, len), fd, mode, off, len)
}
int posix_fallocate(int fd, off_t off, off_t len) {
  ENSURE();
  FALLOC_WRAP(r_posix_fallocate(fd, off, len), fd, 0, off, len)
}
int posix_fallocate64(int fd, off_t off, off_t len) {
  ENSURE();
  FALLOC_WRAP(r_posix_fallocate64(fd, off, len), fd, 0, off, len)
}

/* ---------------- syncs ---------------- */

static int do_sync(int fd, int (*real)(int)) {
  if (!g_active || t_inside) return real(fd);
  struct stat sb;
  if (fstat(fd, &sb) != 0 || sb.st_dev != g_root_dev) return real(fd);
  char rel[PATH_MAX];
  int is_dir = 0;
  ino_t ino = 0;
  if (S_ISDIR(sb.st_mode)) {
    fd_dir(fd, &sb, rel, sizeof rel, &is_dir);
    if (!is_dir) return real(fd);
  } else {
    ino = fd_tracked(fd, &sb);
    if (!ino) return real(fd);
  }
  pthread_mutex_lock(&g_mu);
  count_op();
  uint64_t start = g_seq + 1;
  uint64_t gen = is_dir ? dir_gen(rel) : 0;
  pthread_mutex_unlock(&g_mu);
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  int r = real(fd);
  int saved = errno;
  if (r == 0) {
    pthread_mutex_lock(&g_mu);
    if (is_dir) {
      emit("D %llu %s %llu %llu", (unsigned long long)++g_seq, rel, (unsigned long long)gen,
           (unsigned long long)start);
    } else {
      emit("S %llu %llu %llu %lld", (unsigned long long)++g_seq, (unsigned long long)ino,
           (unsigned long long)start, (long long)t0.tv_sec * 1000000000LL + t0.tv_nsec);
    }
    pthread_mutex_unlock(&g_mu);
  }
  errno = saved;
  return r;
}

int fsync(int fd) {
  ENSURE();
  return do_sync(fd, r_fsync);
}
int fdatasync(int fd) {
  ENSURE();
  return do_sync(fd, r_fdatasync);
}

static void sync_all_begin(uint64_t* start) {
  pthread_mutex_lock(&g_mu);
  count_op();
  *start = g_seq + 1;
  pthread_mutex_unlock(&g_mu);
}
static void sync_all_end(uint64_t start) {
  pthread_mutex_lock(&g_mu);
  emit("A %llu %llu", (unsigned long long)++g_seq, (unsigned long long)start);
  pthread_mutex_unlock(&g_mu);
}

void sync(void) {
  ENSURE();
  if (!g_active || t_inside) {
    r_sync();
    return;
  }
  uint64_t start;
  sync_all_begin(&start);
  r_sync();
  sync_all_end(start);
}
int syncfs(int fd) {
  ENSURE();
  struct stat sb;
  if (!g_active || t_inside || fstat(fd, &sb) != 0 || sb.st_dev != g_root_dev) return r_syncfs(fd);
  uint64_t start;
  sync_all_begin(&start);
  int r = r_syncfs(fd);
  int saved = errno;
  if (r == 0) sync_all_end(start);
  errno = saved;
  return r;
}

/* ---------------- opens that create or truncate ---------------- */

static int do_open(int dirfd, const char* path, int flags, mode_t mode, int use_at) {
  struct where w;
  int wants = (flags & (O_CREAT | O_TRUNC)) != 0;
  if (!wants || t_inside || !resolve(dirfd, path, &w)) {
    return use_at ? r_openat(dirfd, path, flags, mode) : r_open(path, flags, mode);
  }
  if ((flags & __O_TMPFILE) == __O_TMPFILE) {
    pthread_mutex_lock(&g_mu);
    emit("X %llu O_TMPFILE in %s", (unsigned long long)++g_seq, w.full);
    pthread_mutex_unlock(&g_mu);
    return use_at ? r_openat(dirfd, path, flags, mode) : r_open(path, flags, mode);
  }
  pthread_mutex_lock(&g_mu);
  count_op();
  w.gen = dir_gen(w.rel);
  struct stat before;
  int existed = lstat(w.full, &before) == 0;
  if (existed && (flags & O_TRUNC) && S_ISREG(before.st_mode) && before.st_size > 0) {
    int rfd = r_open(w.full, O_RDONLY | O_CLOEXEC);
    if (rfd >= 0) {
      content_event(rfd, before.st_ino, (uint64_t)before.st_size, 0, UINT64_MAX);
      close(rfd);
    }
  }
  int fd = r_open(w.full, flags, mode);
  int saved = errno;
  if (fd >= 0 && !existed) {
    struct stat sb;
    if (fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode)) {
      side_link_fd(fd, sb.st_ino);
      emit("N %llu %s %llu %s %llu f", (unsigned long long)++g_seq, w.rel,
           (unsigned long long)w.gen, w.name, (unsigned long long)sb.st_ino);
    }
  }
  pthread_mutex_unlock(&g_mu);
  errno = saved;
  return fd;
}

static mode_t va_mode(int flags, va_list ap) {
  if (flags & (O_CREAT | __O_TMPFILE)) return (mode_t)va_arg(ap, int);
  return 0;
}

int open(const char* p, int flags, ...) {
  ENSURE();
  va_list ap;
  va_start(ap, flags);
  mode_t m = va_mode(flags, ap);
  va_end(ap);
  return do_open(AT_FDCWD, p, flags, m, 0);
}
int open64(const char* p, int flags, ...) {
  ENSURE();
  va_list ap;
  va_start(ap, flags);
  mode_t m = va_mode(flags, ap);
  va_end(ap);
  return do_open(AT_FDCWD, p, flags, m, 0);
}
int openat(int d, const char* p, int flags, ...) {
  ENSURE();
  va_list ap;
  va_start(ap, flags);
  mode_t m = va_mode(flags, ap);
  va_end(ap);
  return do_open(d, p, flags, m, 1);
}
int openat64(int d, const char* p, int flags, ...) {
  ENSURE();
  va_list ap;
  va_start(ap, flags);
  mode_t m = va_mode(flags, ap);
  va_end(ap);
  return do_open(d, p, flags, m, 1);
}
int creat(const char* p, mode_t m) {
  ENSURE();
  return do_open(AT_FDCWD, p, O_WRONLY | O_CREAT | O_TRUNC, m, 0);
}
int __open_2(const char* p, int flags) {
  ENSURE();
  return do_open(AT_FDCWD, p, flags, 0, 0);
}
int __open64_2(const char* p, int flags) {
  ENSURE();
  return do_open(AT_FDCWD, p, flags, 0, 0);
}
int __openat_2(int d, const char* p, int flags) {
  ENSURE();
  return do_open(d, p, flags, 0, 1);
}
int __openat64_2(int d, const char* p, int flags) {
  ENSURE();
  return do_open(d, p, flags, 0, 1);
}

/* ---------------- directory entries ---------------- */

static int do_mkdir(int dirfd, const char* path, mode_t mode) {
  struct where w;
  if (t_inside || !resolve(dirfd, path, &w)) return r_mkdirat(dirfd, path, mode);
  pthread_mutex_lock(&g_mu);
  count_op();
  w.gen = dir_gen(w.rel);
  int r = r_mkdir(w.full, mode);
  int saved = errno;
  if (r == 0) {
    uint64_t seq = ++g_seq;
    emit("N %llu %s %llu %s %llu d", (unsigned long long)seq, w.rel, (unsigned long long)w.gen,
         w.name, (unsigned long long)seq);
    char rel[2 * PATH_MAX];
    if (!strcmp(w.rel, ".")) snprintf(rel, sizeof rel, "%s", w.name);
    else snprintf(rel, sizeof rel, "%s/%s", w.rel, w.name);
    set_dir_gen(rel, seq);
  }
  pthread_mutex_unlock(&g_mu);
  errno = saved;
  return r;
}
int mkdir(const char* p, mode_t m) {
  ENSURE();
  return do_mkdir(AT_FDCWD, p, m);
}
int mkdirat(int d, const char* p, mode_t m) {
  ENSURE();
  return do_mkdir(d, p, m);
}

/* Removes a file (dir_flag 0), a directory (AT_REMOVEDIR) or either (-1). */
static int do_remove(int dirfd, const char* path, int dir_flag, int (*fallback)(void)) {
  struct where w;
  if (t_inside || !resolve(dirfd, path, &w)) return fallback();
  pthread_mutex_lock(&g_mu);
  struct stat sb;
  if (lstat(w.full, &sb) != 0) {
    pthread_mutex_unlock(&g_mu);
    return fallback();
  }
  count_op();
  w.gen = dir_gen(w.rel);
  int is_dir = S_ISDIR(sb.st_mode);
  if (dir_flag == -1) dir_flag = is_dir ? AT_REMOVEDIR : 0;
  int r;
  if (dir_flag == AT_REMOVEDIR) {
    char rel[2 * PATH_MAX];
    if (!strcmp(w.rel, ".")) snprintf(rel, sizeof rel, "%s", w.name);
    else snprintf(rel, sizeof rel, "%s/%s", w.rel, w.name);
    uint64_t child = dir_gen(rel);
    r = r_rmdir(w.full);
    if (r == 0) {
      emit("R %llu %s %llu %s %llu", (unsigned long long)++g_seq, w.rel, (unsigned long long)w.gen,
           w.name, (unsigned long long)child);
      set_dir_gen(rel, 0);
      /* A later mkdir gives it a new gen; 0 here is never consulted since the
       * path no longer exists. */
    }
  } else {
    if (S_ISREG(sb.st_mode)) side_link_path(sb.st_ino, w.full);
    else if (!is_dir)
      emit("X %llu unlink of a non-regular file %s", (unsigned long long)++g_seq, w.full);
    r = r_unlink(w.full);
    if (r == 0) {
      emit("U %llu %s %llu %s %llu", (unsigned long long)++g_seq, w.rel, (unsigned long long)w.gen,
           w.name, (unsigned long long)sb.st_ino);
    }
  }
  int saved = errno;
  pthread_mutex_unlock(&g_mu);
  errno = saved;
  return r;
}

static __thread int a_dirfd;
static __thread const char* a_path;
static __thread int a_flags;
static int fb_unlink(void) { return r_unlink(a_path); }
static int fb_unlinkat(void) { return r_unlinkat(a_dirfd, a_path, a_flags); }
static int fb_rmdir(void) { return r_rmdir(a_path); }
static int fb_remove(void) { return r_remove(a_path); }

int unlink(const char* p) {
  ENSURE();
  a_path = p;
  return do_remove(AT_FDCWD, p, 0, fb_unlink);
}
int unlinkat(int d, const char* p, int flags) {
  ENSURE();
  a_dirfd = d;
  a_path = p;
  a_flags = flags;
  return do_remove(d, p, flags & AT_REMOVEDIR, fb_unlinkat);
}
int rmdir(const char* p) {
  ENSURE();
  a_path = p;
  return do_remove(AT_FDCWD, p, AT_REMOVEDIR, fb_rmdir);
}
int remove(const char* p) {
  ENSURE();
  a_path = p;
  return do_remove(AT_FDCWD, p, -1, fb_remove);
}

static int do_rename(int da, const char* a, int db, const char* b, unsigned flags) {
  struct where wa, wb;
  int ta = !t_inside && resolve(da, a, &wa);
  int tb = !t_inside && resolve(db, b, &wb);
  if (!ta && !tb) return r_renameat2 ? r_renameat2(da, a, db, b, flags) : r_renameat(da, a, db, b);
  pthread_mutex_lock(&g_mu);
  count_op();
  if (ta) wa.gen = dir_gen(wa.rel);
  if (tb) wb.gen = dir_gen(wb.rel);
  if (!ta || !tb || (flags & RENAME_EXCHANGE)) {
    emit("X %llu rename across the root boundary or exchange: %s -> %s",
         (unsigned long long)++g_seq, a, b);
  }
  struct stat sa, sb;
  int have_a = ta && lstat(wa.full, &sa) == 0;
  int have_b = tb && lstat(wb.full, &sb) == 0;
  if (have_a && !S_ISREG(sa.st_mode)) {
    emit("X %llu rename of a directory or special file %s", (unsigned long long)++g_seq, wa.full);
  }
  if (have_a && S_ISREG(sa.st_mode)) side_link_path(sa.st_ino, wa.full);
  if (have_b && S_ISREG(sb.st_mode)) side_link_path(sb.st_ino, wb.full);
  int r = flags ? r_renameat2(AT_FDCWD, ta ? wa.full : a, AT_FDCWD, tb ? wb.full : b, flags)
                : r_rename(ta ? wa.full : a, tb ? wb.full : b);
  int saved = errno;
  if (r == 0 && ta && tb) {
    emit("M %llu %s %llu %s %s %llu %s %llu %llu", (unsigned long long)++g_seq, wa.rel,
         (unsigned long long)wa.gen, wa.name, wb.rel, (unsigned long long)wb.gen, wb.name,
         (unsigned long long)(have_a ? sa.st_ino : 0),
         (unsigned long long)(have_b && S_ISREG(sb.st_mode) && (!have_a || sb.st_ino != sa.st_ino)
                                  ? sb.st_ino
                                  : 0));
  }
  pthread_mutex_unlock(&g_mu);
  errno = saved;
  return r;
}

int rename(const char* a, const char* b) {
  ENSURE();
  return do_rename(AT_FDCWD, a, AT_FDCWD, b, 0);
}
int renameat(int da, const char* a, int db, const char* b) {
  ENSURE();
  return do_rename(da, a, db, b, 0);
}
int renameat2(int da, const char* a, int db, const char* b, unsigned flags) {
  ENSURE();
  return do_rename(da, a, db, b, flags);
}

/* ---------------- what the model does not cover ---------------- */

static void unsupported_path(int dirfd, const char* p, const char* what) {
  struct where w;
  if (t_inside || !resolve(dirfd, p, &w)) return;
  pthread_mutex_lock(&g_mu);
  emit("X %llu %s %s", (unsigned long long)++g_seq, what, w.full);
  pthread_mutex_unlock(&g_mu);
}

int link(const char* a, const char* b) {
  ENSURE();
  unsupported_path(AT_FDCWD, b, "link to");
  return r_link(a, b);
}
int linkat(int da, const char* a, int db, const char* b, int flags) {
  ENSURE();
  unsupported_path(db, b, "link to");
  return r_linkat(da, a, db, b, flags);
}
int symlink(const char* a, const char* b) {
  ENSURE();
  unsupported_path(AT_FDCWD, b, "symlink");
  return r_symlink(a, b);
}
int symlinkat(const char* a, int d, const char* b) {
  ENSURE();
  unsupported_path(d, b, "symlink");
  return r_symlinkat(a, d, b);
}

static void unsupported_fd(int fd, const char* what) {
  struct stat sb;
  if (!fd_tracked(fd, &sb)) return;
  pthread_mutex_lock(&g_mu);
  emit("X %llu %s on a tracked file", (unsigned long long)++g_seq, what);
  pthread_mutex_unlock(&g_mu);
}

void* mmap(void* a, size_t n, int prot, int flags, int fd, off_t off) {
  ENSURE();
  if (fd >= 0 && (prot & PROT_WRITE) && (flags & MAP_SHARED))
    unsupported_fd(fd, "shared writable mmap");
  return r_mmap(a, n, prot, flags, fd, off);
}
void* mmap64(void* a, size_t n, int prot, int flags, int fd, off_t off) {
  ENSURE();
  if (fd >= 0 && (prot & PROT_WRITE) && (flags & MAP_SHARED))
    unsupported_fd(fd, "shared writable mmap");
  return r_mmap64(a, n, prot, flags, fd, off);
}
ssize_t copy_file_range(int in, off_t* oi, int out, off_t* oo, size_t n, unsigned f) {
  ENSURE();
  unsupported_fd(out, "copy_file_range");
  return r_copy_file_range(in, oi, out, oo, n, f);
}
