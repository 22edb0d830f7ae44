package aidb

/*
#include <aidb.h>

// Defined in log.go (//export); a file with //export may only declare C
// functions, so the registration lives here.
extern void aidbGoLog(void*, int, char*, char*, char*);

static void aidb_go_set_log_callback(int min_level) {
  aidb_set_log_callback((aidb_log_fn)aidbGoLog, NULL, min_level);
}
*/
import "C"

func setGoLogCallback(minLevel LogLevel) { C.aidb_go_set_log_callback(C.int(minLevel)) }
