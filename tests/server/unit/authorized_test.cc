// The API key check both routers use (request.h, Authorized): aidbd's Api
// and the cluster Router's /cluster and /internal routes accept the key the
// same ways (docs/http-api.md, "Authentication").
#include <gtest/gtest.h>

#include <string>
#include <utility>

#include "request.h"

namespace aidbd {
namespace {

const std::string kKey = "s3cret-key";

HttpRequest With(std::string name, std::string value) {
  HttpRequest req;
  req.method = "GET";
  req.path = "/cluster";
  req.headers.emplace_back(std::move(name), std::move(value));
  return req;
}

bool Admits(const HttpRequest& req) {
  HttpResponse resp;
  return Authorized(req, kKey, &resp);
}

TEST(Authorized, AcceptsTheKeyHeaderAndABearerTokenInAnyCase) {
  EXPECT_TRUE(Admits(With("api-key", kKey)));
  for (const char* scheme : {"Bearer ", "bearer ", "BEARER ", "bEaReR "}) {
    EXPECT_TRUE(Admits(With("authorization", scheme + kKey))) << scheme;
  }
  // Spaces between the scheme and the token are skipped.
  EXPECT_TRUE(Admits(With("authorization", "Bearer   " + kKey)));
}

TEST(Authorized, RefusesWithA401NamingWhatIsWrong) {
  HttpResponse resp;
  EXPECT_FALSE(Authorized(With("authorization", "Bearer wrong"), kKey, &resp));
  EXPECT_EQ(resp.status, 401);
  EXPECT_NE(resp.body.find("invalid API key"), std::string::npos) << resp.body;
  ASSERT_EQ(resp.headers.size(), 1u);
  EXPECT_EQ(resp.headers[0].first, "WWW-Authenticate");
  EXPECT_EQ(resp.headers[0].second, "Bearer");

  for (const HttpRequest& req :
       {With("authorization", "Basic " + kKey), With("authorization", "Bearer"),
        With("x-api-key", kKey), HttpRequest()}) {
    HttpResponse r;
    EXPECT_FALSE(Authorized(req, kKey, &r));
    EXPECT_EQ(r.status, 401);
    EXPECT_NE(r.body.find("missing API key"), std::string::npos) << r.body;
  }
  EXPECT_FALSE(Admits(With("api-key", kKey + "x")));
  EXPECT_FALSE(Admits(With("api-key", kKey.substr(1))));
  EXPECT_FALSE(Admits(With("api-key", "")));
}

TEST(Authorized, AnEmptyKeyAdmitsEveryRequest) {
  HttpResponse resp;
  EXPECT_TRUE(Authorized(HttpRequest(), "", &resp));
  EXPECT_EQ(resp.status, 200);
}

}  // namespace
}  // namespace aidbd
