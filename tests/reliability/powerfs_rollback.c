/* aidb_powerfs_rollback: after a power cut made by the powerfs shim
 * (powerfs.c), rewinds the tracked directory to what a disk could hold.
 *
 *   aidb_powerfs_rollback ROOT SIDE VARIANT SEED
 *
 * - Directory entries created, removed or renamed since their directory's
 *   last fsync are put back as they were (newest first). A rename counts as
 *   synced once both its directories were synced after it.
 * - Each file's data changed since its last fsync/fdatasync is rewound:
 *   overwritten bytes get their pre-images back, truncations and fallocates
 *   are undone. What the file held beyond its synced size (unsynced appends)
 *   depends on VARIANT:
 *     drop   dropped (the synced size comes back)
 *     keep   kept whole
 *     torn   kept up to a random 512-byte sector boundary (or not at all)
 *     zero   the size survives but the data only up to a random sector
 *            boundary: the rest reads as zeros (what XFS / ext4 writeback can
 *            show)
 *     mix    one of the four, drawn per file
 * - The side directory is emptied for the next run.
 * Prints one summary line; exits 1 if the journal names an operation the
 * model does not cover (an X line) or the tree does not match the journal.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct ev {
  char type;
  uint64_t seq;
  uint64_t a, b, c, d, e; /* numbers, by type */
  char *dir, *name;
  uint64_t gen;
  char *dir2, *name2;
  uint64_t gen2;
};

static struct ev* evs;
static size_t nevs, capevs;
static const char* root;
static const char* side;
static int failures;
static uint64_t rng = 88172645463325252ULL;

static uint64_t rnd(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

static void fail(const char* fmt, const char* a, const char* b) {
  fprintf(stderr, "powerfs_rollback: ");
  fprintf(stderr, fmt, a, b);
  fputc('\n', stderr);
  ++failures;
}

static void path_of(char* out, size_t cap, const char* dir, const char* name) {
  if (!strcmp(dir, ".")) snprintf(out, cap, "%s/%s", root, name);
  else snprintf(out, cap, "%s/%s/%s", root, dir, name);
}

static void ino_path(char* out, size_t cap, uint64_t ino) {
  snprintf(out, cap, "%s/ino/%llu", side, (unsigned long long)ino);
}

/* Latest start of a sync covering (dir, gen); A records count for all. */
static uint64_t all_start;
static size_t* dsyncs; /* indexes of D events */
static size_t ndsyncs;
static uint64_t dir_synced(const char* dir, uint64_t gen) {
  uint64_t best = all_start;
  for (size_t k = 0; k < ndsyncs; ++k) {
    const struct ev* e = &evs[dsyncs[k]];
    if (e->gen == gen && !strcmp(e->dir, dir) && e->a > best) best = e->a;
  }
  return best;
}

/* Per inode: the latest sync start and whether it was rewound. */
struct inode {
  uint64_t ino;
  uint64_t synced;
  int done;
};
static struct inode* inos;
static size_t capinos = 1 << 12, ninos;
static struct inode* inode(uint64_t ino) {
  if (!inos) inos = calloc(capinos, sizeof *inos);
  if (2 * (ninos + 1) > capinos) {
    struct inode* old = inos;
    size_t oldcap = capinos;
    capinos *= 2;
    inos = calloc(capinos, sizeof *inos);
    ninos = 0;
    for (size_t i = 0; i < oldcap; ++i) {
      if (old[i].ino) *inode(old[i].ino) = old[i];
    }
    free(old);
  }
  size_t h = (size_t)(ino * 0x9E3779B97F4A7C15ULL) & (capinos - 1);
  while (inos[h].ino && inos[h].ino != ino) h = (h + 1) & (capinos - 1);
  if (!inos[h].ino) {
    inos[h].ino = ino;
    ++ninos;
  }
  return &inos[h];
}
static uint64_t file_synced(uint64_t ino) {
  uint64_t s = inode(ino)->synced;
  return s > all_start ? s : all_start;
}

static char b_dir[PATH_MAX], b_name[NAME_MAX + 1], b_dir2[PATH_MAX], b_name2[NAME_MAX + 1];

static int parse(const char* line, struct ev* e) {
  memset(e, 0, sizeof *e);
  b_dir[0] = b_name[0] = b_dir2[0] = b_name2[0] = 0;
  unsigned long long seq, a = 0, b = 0, c = 0, d = 0, g = 0, g2 = 0;
  char t = line[0];
  e->type = t;
  char k[8];
  switch (t) {
    case 'C':
      if (sscanf(line, "C %llu %llu %llu %llu %llu %llu", &seq, &a, &b, &c, &d,
                 (unsigned long long*)&e->e) != 6)
        return 0;
      break;
    case 'S':
      if (sscanf(line, "S %llu %llu %llu", &seq, &a, &b) != 3) return 0;
      break;
    case 'D':
      if (sscanf(line, "D %llu %4095s %llu %llu", &seq, b_dir, &g, &a) != 4) return 0;
      break;
    case 'A':
      if (sscanf(line, "A %llu %llu", &seq, &a) != 2) return 0;
      break;
    case 'N':
      if (sscanf(line, "N %llu %4095s %llu %255s %llu %7s", &seq, b_dir, &g, b_name, &a, k) != 6)
        return 0;
      b = k[0] == 'd';
      break;
    case 'U':
      if (sscanf(line, "U %llu %4095s %llu %255s %llu", &seq, b_dir, &g, b_name, &a) != 5) return 0;
      break;
    case 'R':
      if (sscanf(line, "R %llu %4095s %llu %255s %llu", &seq, b_dir, &g, b_name, &a) != 5) return 0;
      break;
    case 'M':
      if (sscanf(line, "M %llu %4095s %llu %255s %4095s %llu %255s %llu %llu", &seq, b_dir, &g,
                 b_name, b_dir2, &g2, b_name2, &a, &b) != 9)
        return 0;
      break;
    case 'X':
    case 'K':
      if (sscanf(line + 2, "%llu", &seq) != 1) return 0;
      break;
    default: return 0;
  }
  e->seq = seq;
  e->dir = strdup(b_dir);
  e->name = strdup(b_name);
  e->dir2 = strdup(b_dir2);
  e->name2 = strdup(b_name2);
  e->a = a;
  e->b = b;
  e->c = c;
  e->d = d;
  e->gen = g;
  e->gen2 = g2;
  return 1;
}

static int is_durable_dir_op(const struct ev* e) {
  if (dir_synced(e->dir, e->gen) <= e->seq) return 0;
  if (e->type == 'M' && dir_synced(e->dir2, e->gen2) <= e->seq) return 0;
  return 1;
}

/* Directory incarnations (path, gen) whose removal stands. */
struct deaddir {
  char* path;
  uint64_t gen;
};
static struct deaddir* dead;
static size_t ndead, capdead;
static int is_dead(const char* path, uint64_t gen) {
  for (size_t i = 0; i < ndead; ++i) {
    if (dead[i].gen == gen && !strcmp(dead[i].path, path)) return 1;
  }
  return 0;
}
static void mark_dead(const char* path, uint64_t gen) {
  if (ndead == capdead) {
    capdead = capdead ? capdead * 2 : 64;
    dead = realloc(dead, capdead * sizeof *dead);
  }
  dead[ndead].path = strdup(path);
  dead[ndead].gen = gen;
  ++ndead;
}

static long long entries_undone, files_rewound, bytes_dropped, bytes_reverted, tails_kept;

static void undo_dir_op(const struct ev* e) {
  char p[2 * PATH_MAX], q[2 * PATH_MAX], s[PATH_MAX + 64];
  struct stat sb;
  ++entries_undone;
  path_of(p, sizeof p, e->dir, e->name);
  switch (e->type) {
    case 'N':
      if (lstat(p, &sb) != 0) return; /* gone already */
      if (e->b) {
        if (rmdir(p) != 0) {
          /* Not empty: its entries were synced in it, but it is not. */
          snprintf(s, sizeof s, "%s/trash", side);
          mkdir(s, 0755);
          snprintf(s, sizeof s, "%s/trash/%llu", side, (unsigned long long)e->seq);
          if (rename(p, s) != 0) fail("cannot move away %s: %s", p, strerror(errno));
        }
      } else {
        if ((uint64_t)sb.st_ino != e->a) fail("%s is not the file created there (%s)", p, "inode");
        else if (unlink(p) != 0) fail("cannot unlink %s: %s", p, strerror(errno));
      }
      return;
    case 'U':
      ino_path(s, sizeof s, e->a);
      if (link(s, p) != 0) fail("cannot bring back %s: %s", p, strerror(errno));
      return;
    case 'R':
      if (mkdir(p, 0755) != 0) fail("cannot bring back directory %s: %s", p, strerror(errno));
      return;
    case 'M':
      path_of(q, sizeof q, e->dir2, e->name2);
      if (lstat(p, &sb) == 0) {
        fail("cannot undo a rename onto %s: %s exists", q, p);
        return;
      }
      if (rename(q, p) != 0) fail("cannot undo a rename to %s: %s", q, strerror(errno));
      if (e->b) {
        ino_path(s, sizeof s, e->b);
        if (link(s, q) != 0) fail("cannot bring back %s: %s", q, strerror(errno));
      }
      return;
  }
}

static int blobs_fd = -1;

static void copy_blob(int fd, uint64_t blob_off, uint64_t len, uint64_t at) {
  char buf[1 << 16];
  uint64_t done = 0;
  while (done < len) {
    size_t want = len - done < sizeof buf ? (size_t)(len - done) : sizeof buf;
    ssize_t r = pread(blobs_fd, buf, want, (off_t)(blob_off + done));
    if (r <= 0) {
      fail("short pre-image blob%s%s", "", "");
      return;
    }
    if (pwrite(fd, buf, (size_t)r, (off_t)(at + done)) != r) {
      fail("cannot restore bytes%s%s", "", "");
      return;
    }
    done += (uint64_t)r;
  }
  bytes_reverted += (long long)len;
}

static const char* variant;

static void rewind_file(uint64_t ino) {
  uint64_t start = file_synced(ino);
  size_t first = nevs;
  for (size_t i = 0; i < nevs; ++i) {
    if (evs[i].type == 'C' && evs[i].a == ino && evs[i].seq >= start) {
      first = i;
      break;
    }
  }
  if (first == nevs) return;
  char p[PATH_MAX + 64];
  ino_path(p, sizeof p, ino);
  int fd = open(p, O_RDWR);
  if (fd < 0) {
    fail("cannot open %s: %s", p, strerror(errno));
    return;
  }
  ++files_rewound;
  struct stat sb;
  fstat(fd, &sb);
  const uint64_t cur = (uint64_t)sb.st_size;
  const uint64_t synced = evs[first].b;
  /* The unsynced tail as it is now, and how much of it a disk kept. */
  const char* v = variant;
  if (!strcmp(v, "mix")) {
    static const char* vs[] = {"drop", "keep", "torn", "zero"};
    v = vs[rnd() % 4];
  }
  uint64_t keep = 0, zeros = 0;
  if (cur > synced) {
    uint64_t extra = cur - synced;
    if (!strcmp(v, "keep")) {
      keep = extra;
    } else if (!strcmp(v, "torn") || !strcmp(v, "zero")) {
      /* Candidates: synced, each sector boundary in between, cur. */
      uint64_t first_b = (synced / 512 + 1) * 512;
      uint64_t nb = first_b < cur ? (cur - 1 - first_b) / 512 + 1 : 0;
      uint64_t pick = rnd() % (nb + 2);
      uint64_t end = pick == 0 ? synced : pick == nb + 1 ? cur : first_b + (pick - 1) * 512;
      keep = end - synced;
      if (!strcmp(v, "zero")) zeros = cur - end;
    }
  }
  char* tail = NULL;
  if (keep) {
    tail = malloc(keep);
    if (pread(fd, tail, keep, (off_t)synced) != (ssize_t)keep)
      fail("cannot read the tail of %s%s", p, "");
    ++tails_kept;
  }
  for (size_t i = nevs; i-- > first;) {
    const struct ev* e = &evs[i];
    if (e->type != 'C' || e->a != ino) continue;
    if (e->d) copy_blob(fd, e->e, e->d, e->c);
  }
  if (ftruncate(fd, (off_t)synced) != 0) fail("cannot truncate %s: %s", p, strerror(errno));
  if (cur > synced) bytes_dropped += (long long)(cur - synced - keep);
  if (keep && pwrite(fd, tail, keep, (off_t)synced) != (ssize_t)keep)
    fail("cannot write the tail of %s%s", p, "");
  if (zeros && ftruncate(fd, (off_t)(synced + keep + zeros)) != 0)
    fail("cannot extend %s%s", p, "");
  free(tail);
  close(fd);
}

static void empty_dir(const char* dir) {
  DIR* d = opendir(dir);
  if (!d) return;
  struct dirent* e;
  while ((e = readdir(d)) != NULL) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    char p[PATH_MAX + NAME_MAX + 2];
    snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
    struct stat sb;
    if (lstat(p, &sb) == 0 && S_ISDIR(sb.st_mode)) {
      empty_dir(p);
      rmdir(p);
    } else {
      unlink(p);
    }
  }
  closedir(d);
}

int main(int argc, char** argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: %s ROOT SIDE drop|keep|torn|zero|mix SEED\n", argv[0]);
    return 2;
  }
  root = argv[1];
  side = argv[2];
  variant = argv[3];
  rng ^= strtoull(argv[4], NULL, 10) * 0x9E3779B97F4A7C15ULL;
  if (!rng) rng = 1;
  char p[PATH_MAX + 64];
  snprintf(p, sizeof p, "%s/journal", side);
  FILE* f = fopen(p, "r");
  if (!f) {
    printf("powerfs_rollback: no journal, nothing to do\n");
    return 0;
  }
  snprintf(p, sizeof p, "%s/blobs", side);
  blobs_fd = open(p, O_RDONLY);
  char line[3 * PATH_MAX];
  int cut = 0;
  while (fgets(line, sizeof line, f)) {
    size_t n = strlen(line);
    if (n == 0 || line[n - 1] != '\n') break; /* torn last line */
    line[n - 1] = 0;
    if (nevs == capevs) {
      capevs = capevs ? capevs * 2 : 1024;
      evs = realloc(evs, capevs * sizeof *evs);
    }
    if (!parse(line, &evs[nevs])) {
      fail("bad journal line: %s%s", line, "");
      continue;
    }
    if (evs[nevs].type == 'X') fail("not covered by the model: %s%s", line, "");
    if (evs[nevs].type == 'K') cut = 1;
    if (evs[nevs].type == 'A' && evs[nevs].a > all_start) all_start = evs[nevs].a;
    if (evs[nevs].type == 'S' && evs[nevs].b > inode(evs[nevs].a)->synced)
      inode(evs[nevs].a)->synced = evs[nevs].b;
    ++nevs;
  }
  fclose(f);
  dsyncs = malloc((nevs + 1) * sizeof *dsyncs);
  for (size_t i = 0; i < nevs; ++i) {
    if (evs[i].type == 'D') dsyncs[ndsyncs++] = i;
  }
  /* 1. Directory entries, newest first. A directory whose removal stays
   * (its parent was synced after it, or the parent is gone too) takes its
   * entries with it: nothing is undone inside it. */
  for (size_t i = nevs; i-- > 0;) {
    const struct ev* e = &evs[i];
    if (e->type != 'N' && e->type != 'U' && e->type != 'R' && e->type != 'M') continue;
    int gone = is_dead(e->dir, e->gen) || (e->type == 'M' && is_dead(e->dir2, e->gen2));
    if (e->type == 'R' && (gone || is_durable_dir_op(e))) {
      char child[2 * PATH_MAX];
      if (!strcmp(e->dir, ".")) snprintf(child, sizeof child, "%s", e->name);
      else snprintf(child, sizeof child, "%s/%s", e->dir, e->name);
      mark_dead(child, e->a);
      continue;
    }
    if (gone) continue;
    if (!is_durable_dir_op(e)) undo_dir_op(e);
  }
  /* 2. File data, through the side links (wherever the names are now). */
  for (size_t i = 0; i < nevs; ++i) {
    if (evs[i].type != 'C' || inode(evs[i].a)->done) continue;
    inode(evs[i].a)->done = 1;
    rewind_file(evs[i].a);
  }
  if (blobs_fd >= 0) close(blobs_fd);
  /* AIDB_POWERFS_KEEP_JOURNAL=PATH keeps a copy of the journal (debugging). */
  const char* keep = getenv("AIDB_POWERFS_KEEP_JOURNAL");
  if (keep) {
    snprintf(p, sizeof p, "%s/journal", side);
    rename(p, keep);
  }
  empty_dir(side);
  printf(
      "powerfs_rollback: %zu events%s, %lld entries undone, %lld files rewound (%lld bytes "
      "reverted, %lld unsynced bytes dropped, %lld tails kept)%s\n",
      nevs, cut ? " up to a cut" : "", entries_undone, files_rewound, bytes_reverted, bytes_dropped,
      tails_kept, failures ? ", FAILED" : "");
  return failures ? 1 : 0;
}
