/* Loads libaidb.so.<ABI> with dlopen() and reaches the API only through
 * dlsym(): the way Python ctypes, Rust's `dlopen` feature and other FFI
 * users load it. aidb.h is included for its types and constants only; the
 * program is not linked against libaidb. Exit code 0 = pass. */
#define _POSIX_C_SOURCE 200809L
#include <aidb.h>

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#define STR2(x) #x
#define STR(x) STR2(x)

static void* lib;

static void* sym(const char* name) {
  void* p = dlsym(lib, name);
  if (!p) fprintf(stderr, "dlsym(%s): %s\n", name, dlerror());
  return p;
}

/* Declares a function pointer with the header's exact type and resolves it. */
#define LOAD(name)                   \
  __typeof__(&name) p_##name;        \
  *(void**)(&p_##name) = sym(#name); \
  if (!p_##name) return 1

int main(int argc, char** argv) {
  const char* file = argc > 1 ? argv[1] : "libaidb.so." STR(AIDB_ABI_VERSION);
  lib = dlopen(file, RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    fprintf(stderr, "dlopen(%s): %s\n", file, dlerror());
    return 1;
  }
  LOAD(aidb_version_number);
  LOAD(aidb_status_name);
  LOAD(aidb_free);
  LOAD(aidb_collection_options_init);
  LOAD(aidb_collection_open);
  LOAD(aidb_collection_upsert);
  LOAD(aidb_collection_search);
  LOAD(aidb_search_result_hits);
  LOAD(aidb_search_result_free);
  LOAD(aidb_collection_close);

  if (p_aidb_version_number() != AIDB_VERSION_NUMBER) {
    fprintf(stderr, "library %d != header %d\n", p_aidb_version_number(), AIDB_VERSION_NUMBER);
    return 1;
  }
  aidb_collection_options o;
  p_aidb_collection_options_init(&o);
  o.name = "dl";
  o.dim = 2;
  aidb_collection* c = NULL;
  char* msg = NULL;
  int rc = p_aidb_collection_open(&o, &c, &msg);
  if (rc != AIDB_OK) {
    fprintf(stderr, "open: %s %s\n", p_aidb_status_name(rc), msg ? msg : "");
    return 1;
  }
  const float v[2] = {0.6f, 0.8f};
  const char* id = "6e9b1b0c-5c1a-4f0e-9d7e-1b2c3d4e5f60";
  rc = p_aidb_collection_upsert(c, id, v, 2, "{\"via\":\"dlsym\"}", (size_t)-1, &msg);
  if (rc != AIDB_OK) return 1;
  /* Bad input through dlsym still comes back as a status and a message. */
  rc = p_aidb_collection_upsert(c, "not-a-uuid", v, 2, NULL, 0, &msg);
  if (rc != AIDB_INVALID_ARGUMENT || msg == NULL) return 1;
  p_aidb_free(msg);
  aidb_search_result* r = NULL;
  if (p_aidb_collection_search(c, v, 2, NULL, &r, NULL) != AIDB_OK) return 1;
  const aidb_hit* hits;
  size_t n;
  if (p_aidb_search_result_hits(r, 0, &hits, &n) != AIDB_OK || n != 1 ||
      strcmp(hits[0].id, id) != 0 || hits[0].payload == NULL ||
      strstr(hits[0].payload, "dlsym") == NULL)
    return 1;
  p_aidb_search_result_free(r);
  p_aidb_collection_close(c);
  dlclose(lib);
  printf("dlopen consumer: ok\n");
  return 0;
}
