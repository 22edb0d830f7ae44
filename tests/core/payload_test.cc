#include "core/payload.h"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <iterator>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace aidb::payload {
namespace {

std::string Canon(std::string_view json) {
  std::string out;
  Status st = Canonicalize(json, &out);
  EXPECT_TRUE(st.ok()) << json << ": " << st.ToString();
  return out;
}

Status Reject(std::string_view json) {
  std::string out = "untouched";
  Status st = Canonicalize(json, &out);
  EXPECT_FALSE(st.ok()) << "accepted: " << json;
  EXPECT_TRUE(st.IsInvalidArgument()) << st.ToString();
  EXPECT_EQ(out, "untouched");
  return st;
}

TEST(PayloadTest, MinifiesObjects) {
  EXPECT_EQ(Canon("{}"), "{}");
  EXPECT_EQ(Canon("  {  }  "), "{}");
  EXPECT_EQ(Canon("{\n  \"a\" : 1,\n  \"b\" : [ 1 , 2 , { } ],\n  \"c\" : { \"d\" : null }\n}\n"),
            "{\"a\":1,\"b\":[1,2,{}],\"c\":{\"d\":null}}");
  EXPECT_EQ(Canon("{\"s\": \"a b\\n\\\"q\\\"\", \"t\": true, \"f\": false}"),
            "{\"s\":\"a b\\n\\\"q\\\"\",\"t\":true,\"f\":false}");
  EXPECT_EQ(Canon("{\"u\": \"\\u00e9\"}"), "{\"u\":\"\xc3\xa9\"}");  // unescaped to UTF-8
  EXPECT_EQ(Canon("{\"big\": 12345678901234567890, \"neg\": -9223372036854775808}"),
            "{\"big\":12345678901234567890,\"neg\":-9223372036854775808}");
  EXPECT_EQ(Canon("{\"x\":0.5}"), "{\"x\":0.5}");
}

TEST(PayloadTest, CanonicalFormIsAFixedPoint) {
  std::string once = Canon("{ \"a\" : [1, 2.5, \"x\", {\"b\": [true, null]}], \"c\": -3e2 }");
  EXPECT_EQ(Canon(once), once);
}

// What simdjson::minify prints for `json` (the canonical form), or nothing
// when simdjson rejects it.
std::optional<std::string> Minified(std::string_view json) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (parser.parse(json.data(), json.size()).get(root)) return std::nullopt;
  return simdjson::minify(root);
}

// A random JSON value; `spaced` puts white space between tokens.
void RandomValue(std::mt19937_64& rng, int depth, bool spaced, std::string* out) {
  static const char* kAtoms[] = {"0",
                                 "7",
                                 "-5",
                                 "42",
                                 "-0",
                                 "-0.0",
                                 "0.5",
                                 "1.0",
                                 "1e2",
                                 "-3E-2",
                                 "1.5e+10",
                                 "true",
                                 "false",
                                 "null",
                                 "123456789012345678",
                                 "-123456789012345678",
                                 "1234567890123456789",
                                 "-1234567890123456789",
                                 "9223372036854775807",
                                 "-9223372036854775808",
                                 "18446744073709551615",
                                 "12345678901234567890"};
  static const char* kStrings[] = {"\"\"",
                                   "\"a\"",
                                   "\"a/b\"",
                                   "\"a\\/b\"",
                                   "\"\\u0041\"",
                                   "\"q\\\"q\"",
                                   "\"tab\\there\"",
                                   "\"\\\\\"",
                                   "\"\xc3\xa9\"",
                                   "\"\xe2\x82\xac\"",
                                   "\"\xf0\x9f\x98\x80\"",
                                   "\"\x7f del\"",
                                   "\"e.E-0 12\"",
                                   "\"{}[]:,\"",
                                   "\"\\u00e9\\n\""};
  auto space = [&] {
    if (spaced && rng() % 2) out->append(rng() % 2 ? " " : "\n\t ");
  };
  const uint64_t kind = depth >= 4 ? rng() % 2 : rng() % 4;
  space();
  if (kind == 0) {
    *out += kAtoms[rng() % std::size(kAtoms)];
  } else if (kind == 1) {
    *out += kStrings[rng() % std::size(kStrings)];
  } else if (kind == 2) {
    *out += '[';
    const int n = static_cast<int>(rng() % 4);
    for (int i = 0; i < n; ++i) {
      if (i > 0) *out += ',';
      RandomValue(rng, depth + 1, spaced, out);
    }
    space();
    *out += ']';
  } else {
    *out += '{';
    const int n = static_cast<int>(rng() % 4);
    for (int i = 0; i < n; ++i) {
      if (i > 0) *out += ',';
      space();
      *out += kStrings[rng() % std::size(kStrings)];
      space();
      *out += ':';
      RandomValue(rng, depth + 1, spaced, out);
    }
    space();
    *out += '}';
  }
  space();
}

// Payloads that are already minified keep their text (a fast path that
// skips printing them); whichever path a payload takes, the result must be
// what minify prints.
TEST(PayloadTest, CanonicalFormIsMinifyOutputForGeneratedPayloads) {
  std::mt19937_64 rng(20261130);
  int compared = 0, kept = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string doc = "{";
    const int n = 1 + static_cast<int>(rng() % 4);
    const bool spaced = rng() % 4 == 0;
    for (int k = 0; k < n; ++k) {
      if (k > 0) doc += ',';
      doc += "\"k" + std::to_string(k % 3) + "\":";  // duplicate keys too
      RandomValue(rng, 1, spaced, &doc);
    }
    doc += '}';
    std::optional<std::string> want = Minified(doc);
    std::string out;
    Status st = Canonicalize(doc, &out);
    ASSERT_EQ(st.ok(), want.has_value()) << doc << ": " << st.ToString();
    if (!want) continue;
    ASSERT_EQ(out, *want) << doc;
    ++compared;
    kept += doc == *want;
  }
  // Both paths ran many times.
  EXPECT_GT(compared, 15000);
  EXPECT_GT(kept, 2000);
  EXPECT_GT(compared - kept, 2000);
}

TEST(PayloadTest, KeepsOnlyTextMinifyWouldPrintTheSame) {
  const char* docs[] = {"{\"a\":-0}",
                        "{\"a\":-0.0}",
                        "{\"a\":1.0}",
                        "{\"a\":1e2}",
                        "{\"a\":1E2}",
                        "{\"a\":\"\\u0041\"}",
                        "{\"a\":\"\\/\"}",
                        "{\"a\":[1,-2,3]}",
                        "{\"a\":true,\"b\":false,\"c\":null}",
                        "{\"a\":1234567890123456789}",
                        "{\"a\":-9223372036854775808}",
                        "{\"a\":18446744073709551615}",
                        "{\"a\":\"x\"}\n",
                        " {\"a\":1}"};
  for (const char* d : docs) {
    std::optional<std::string> want = Minified(d);
    ASSERT_TRUE(want.has_value()) << d;
    EXPECT_EQ(Canon(d), *want) << d;
  }
}

// Integers past 64 bits are valid JSON that simdjson rejects; payloads keep
// them as the nearest double (as the original server's reader did), in
// their place among the keys. Numbers past the double range stay errors,
// and so does a document too deep to read.
TEST(PayloadTest, IntegersPast64BitsBecomeDoubles) {
  EXPECT_EQ(Canon(R"({"b":1,"big":123456789012345678901234567890,"a":[-99999999999999999999999]})"),
            R"({"b":1,"big":1.2345678901234568e+29,"a":[-9.999999999999999e+22]})");
  EXPECT_EQ(Canon(R"({ "n" : 18446744073709551616 })"), R"({"n":1.8446744073709552e+19})");
  EXPECT_EQ(Canon(R"({"n":18446744073709551615})"), R"({"n":18446744073709551615})");
  EXPECT_EQ(Canon(Canon(R"({"n":123456789012345678901234567890})")),
            R"({"n":1.2345678901234568e+29})");
  EXPECT_NE(Reject(R"({"n":1e400})").message().find("not valid JSON"), std::string::npos);
  EXPECT_NE(
      Reject(R"({"n":123456789012345678901234567890,"bad":})").message().find("not valid JSON"),
      std::string::npos);
  EXPECT_EQ(Reject("[123456789012345678901234567890]").message(),
            "payload must be a JSON object, got array");
  std::string deep = R"({"n":123456789012345678901234567890,"d":)";
  for (int i = 0; i < 2000; ++i) deep += "[";
  for (int i = 0; i < 2000; ++i) deep += "]";
  deep += "}";
  EXPECT_NE(Reject(deep).message().find("not valid JSON"), std::string::npos);
}

TEST(PayloadTest, RejectsNonObjectsNamingTheType) {
  EXPECT_EQ(Reject("[1,2]").message(), "payload must be a JSON object, got array");
  EXPECT_EQ(Reject("\"s\"").message(), "payload must be a JSON object, got string");
  EXPECT_EQ(Reject("42").message(), "payload must be a JSON object, got number");
  EXPECT_EQ(Reject("-1.5").message(), "payload must be a JSON object, got number");
  EXPECT_EQ(Reject("true").message(), "payload must be a JSON object, got boolean");
  EXPECT_EQ(Reject("null").message(), "payload must be a JSON object, got null");
}

TEST(PayloadTest, RejectsInvalidJson) {
  const char* bad[] = {
      "{",
      "}",
      "{\"a\":}",
      "{\"a\" 1}",
      "{\"a\":1,}",
      "{a:1}",
      "{'a':1}",
      "{\"a\":01}",
      "{\"a\":1e400}",
      "{\"a\":NaN}",
      "{\"a\":\"\\ud800\"}",    // lone surrogate
      "{\"a\":\"\xff\"}",       // not UTF-8
      "{\"a\":\"tab\there\"}",  // raw control character
      "{\"a\":tru}",
      "{\"a\":[1,2}",
  };
  for (const char* j : bad) {
    Status st = Reject(j);
    EXPECT_EQ(st.message().rfind("payload is not valid JSON: ", 0), 0u) << st.message();
  }
}

TEST(PayloadTest, RejectsEmptyInput) {
  EXPECT_EQ(Reject("").message(), "payload is not valid JSON: empty document");
  EXPECT_EQ(Reject("  \n").message(), "payload is not valid JSON: empty document");
}

TEST(PayloadTest, RejectsTrailingGarbage) {
  const char* bad[] = {"{} x", "{}{}", "{\"a\":1} 1", "{}]", "{} \"s\"", "{},"};
  for (const char* j : bad) {
    Status st = Reject(j);
    EXPECT_NE(st.message().find("not valid JSON"), std::string::npos) << st.message();
  }
  // Trailing white space is fine.
  EXPECT_EQ(Canon("{} \n\t\r "), "{}");
}

TEST(PayloadTest, RejectsPayloadsOverTheLimit) {
  // A valid object one byte over the limit.
  std::string big = "{\"a\":\"";
  big.append(kMaxPayloadBytes + 1 - big.size() - 2, 'x');
  big += "\"}";
  ASSERT_EQ(big.size(), kMaxPayloadBytes + 1);
  Status st = Reject(big);
  EXPECT_EQ(st.message(), "payload is too large: 16777217 bytes (limit 16777216)");
}

TEST(PayloadTest, AcceptsPayloadsAtTheLimit) {
  std::string big = "{\"a\":\"";
  big.append(kMaxPayloadBytes - big.size() - 2, 'x');
  big += "\"}";
  ASSERT_EQ(big.size(), kMaxPayloadBytes);
  std::string out;
  ASSERT_TRUE(Canonicalize(big, &out).ok());
  EXPECT_EQ(out, big);
  // A small one afterwards still works (the large one used its own parser).
  EXPECT_EQ(Canon("{ \"k\" : 1 }"), "{\"k\":1}");
}

TEST(PayloadTest, DeepNesting) {
  auto nested = [](int depth) {
    std::string s;
    for (int i = 0; i < depth; ++i) s += "{\"a\":";
    s += "1";
    for (int i = 0; i < depth; ++i) s += "}";
    return s;
  };
  EXPECT_EQ(Canon(nested(100)), nested(100));
  EXPECT_EQ(Canon(nested(1000)), nested(1000));
  Status st = Reject(nested(5000));
  EXPECT_NE(st.message().find("nested deeper than 1024 levels"), std::string::npos) << st.message();
}

TEST(PayloadTest, InputNeedsNoPaddingOrTerminator) {
  // The view ends right before bytes that would make the JSON invalid.
  std::string buf = "{\"a\":[1,2]}GARBAGE";
  std::string out;
  ASSERT_TRUE(Canonicalize(std::string_view(buf.data(), 11), &out).ok());
  EXPECT_EQ(out, "{\"a\":[1,2]}");
  // And one that is cut short is an error, not a read past the end.
  EXPECT_FALSE(Canonicalize(std::string_view(buf.data(), 10), &out).ok());
}

TEST(PayloadTest, ConcurrentUseIsSafe) {
  std::vector<std::thread> threads;
  std::vector<int> failures(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([t, &failures] {
      for (int i = 0; i < 2000; ++i) {
        std::string in =
            "{ \"t\" : " + std::to_string(t) + ", \"i\" : [" + std::to_string(i) + "] }";
        std::string want = "{\"t\":" + std::to_string(t) + ",\"i\":[" + std::to_string(i) + "]}";
        std::string out;
        if (!Canonicalize(in, &out).ok() || out != want) ++failures[t];
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int f : failures) EXPECT_EQ(f, 0);
}

}  // namespace
}  // namespace aidb::payload
