// The web console served by aidbd (GET / and /console): one page whose files
// are compiled into the binary (console/), and the data it draws beyond the
// REST API: the history of each collection (GET /collections/:name/history,
// Api::GetHistory in api_console.cc). See docs/http-api.md.
#pragma once

#include "handler.h"

namespace aidbd {

// Loop thread, before authentication (the page holds no data; every call it
// makes goes through the API and needs the key). Answers GET/HEAD of /,
// /console, /console/ (the page) and /console/<file> (its assets, 404 for
// unknown ones), 405 for other methods on them, and returns true; returns
// false for every other path.
bool ServeConsole(HttpRequest* req, HttpResponse* resp);

}  // namespace aidbd
