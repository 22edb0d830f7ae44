#include "core/filter.h"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "core/payload.h"

namespace aidb::filter {
namespace {

const Uuid kId1 = [] {
  Uuid u;
  EXPECT_TRUE(Uuid::Parse("11111111-1111-4111-8111-111111111111", &u).ok());
  return u;
}();
const Uuid kId2 = [] {
  Uuid u;
  EXPECT_TRUE(Uuid::Parse("22222222-2222-4222-8222-222222222222", &u).ok());
  return u;
}();

std::unique_ptr<Filter> F(std::string_view json) {
  std::unique_ptr<Filter> f;
  Status st = Filter::Parse(json, &f);
  EXPECT_TRUE(st.ok()) << json << ": " << st.ToString();
  return f;
}

// Whether `filter` matches a point with payload `payload` (canonicalized
// first, as stored; "" = no payload).
bool M(std::string_view filter, std::string_view payload, const Uuid& id = kId1) {
  auto f = F(filter);
  if (!f) return false;
  std::string canon;
  if (!payload.empty()) {
    Status st = payload::Canonicalize(payload, &canon);
    EXPECT_TRUE(st.ok()) << st.ToString();
  }
  return f->Matches(id, canon);
}

// The parse error message of a malformed filter.
std::string Bad(std::string_view json) {
  std::unique_ptr<Filter> f;
  Status st = Filter::Parse(json, &f);
  EXPECT_FALSE(st.ok()) << "accepted: " << json;
  EXPECT_TRUE(st.IsInvalidArgument()) << json << ": " << st.ToString();
  EXPECT_EQ(f, nullptr);
  EXPECT_FALSE(st.message().empty());
  return st.message();
}

// ---------------------------------------------------------------- short form

TEST(FilterShortForm, EveryKeyMustEqualItsValue) {
  EXPECT_TRUE(M(R"({"color":"red"})", R"({"color":"red","size":3})"));
  EXPECT_FALSE(M(R"({"color":"red"})", R"({"color":"blue"})"));
  EXPECT_TRUE(M(R"({"color":"red","size":3})", R"({"color":"red","size":3})"));
  EXPECT_FALSE(M(R"({"color":"red","size":4})", R"({"color":"red","size":3})"));
  EXPECT_TRUE(M(R"({"ok":true})", R"({"ok":true})"));
  EXPECT_FALSE(M(R"({"ok":true})", R"({"ok":false})"));
  EXPECT_FALSE(M(R"({"color":"red"})", R"({})"));
}

TEST(FilterShortForm, NullMeansIsNull) {
  EXPECT_TRUE(M(R"({"gone":null})", R"({"gone":null})"));
  EXPECT_TRUE(M(R"({"gone":null})", R"({"other":1})"));
  EXPECT_FALSE(M(R"({"gone":null})", R"({"gone":0})"));
}

TEST(FilterShortForm, DottedPathsAndArrays) {
  EXPECT_TRUE(M(R"({"a.b":1})", R"({"a":{"b":1}})"));
  EXPECT_TRUE(M(R"({"tags":"x"})", R"({"tags":["y","x"]})"));
  EXPECT_TRUE(M(R"({"a.b":2})", R"({"a":[{"b":1},{"b":2}]})"));
}

TEST(FilterShortForm, RejectsNonScalarValues) {
  std::string m = Bad(R"({"color":["red"]})");
  EXPECT_EQ(m.rfind("filter: value of key 'color' must be a string, number, boolean or null, "
                    "got array",
                    0),
            0u)
      << m;
  EXPECT_NE(Bad(R"({"color":{"x":1}})").find("got object"), std::string::npos);
}

TEST(FilterShortForm, RejectsBadKeys) {
  EXPECT_NE(Bad(R"({"":1})").find("is empty"), std::string::npos);
  EXPECT_NE(Bad(R"({"a..b":1})").find("empty path segment"), std::string::npos);
  EXPECT_NE(Bad(R"({".a":1})").find("empty path segment"), std::string::npos);
  EXPECT_NE(Bad(R"({"a.":1})").find("empty path segment"), std::string::npos);
}

// ------------------------------------------------------------ full form: basics

TEST(FilterFullForm, EmptyFiltersMatchEverything) {
  for (const char* j : {"{}", R"({"must":[]})", R"({"should":[]})", R"({"must_not":[]})",
                        R"({"must":[],"should":[],"must_not":[]})", R"({"must":[{"must":[]}]})",
                        R"({"should":[{"should":[]}]})"}) {
    auto f = F(j);
    ASSERT_TRUE(f) << j;
    EXPECT_TRUE(f->MatchesAll()) << j;
    EXPECT_TRUE(f->Matches(kId1, "")) << j;
    EXPECT_TRUE(f->Matches(kId1, R"({"a":1})")) << j;
  }
  EXPECT_FALSE(F(R"({"a":1})")->MatchesAll());
  EXPECT_FALSE(F(R"({"must_not":[{"must":[]}]})")->MatchesAll());
  EXPECT_FALSE(F(R"({"must_not":[{"must":[]}]})")->Matches(kId1, R"({"a":1})"));
  EXPECT_FALSE(F(R"({"should":[{"has_id":[]}]})")->MatchesAll());
  EXPECT_TRUE(F(R"({"should":[{"has_id":[]},{"must":[]}]})")->MatchesAll());
}

TEST(FilterFullForm, MatchValueTypesMustAgree) {
  const char* payload = R"({"s":"1","n":1,"b":true,"f":1.0,"z":0})";
  EXPECT_TRUE(M(R"({"must":[{"key":"s","match":{"value":"1"}}]})", payload));
  EXPECT_FALSE(M(R"({"must":[{"key":"s","match":{"value":1}}]})", payload));
  EXPECT_TRUE(M(R"({"must":[{"key":"n","match":{"value":1}}]})", payload));
  EXPECT_TRUE(M(R"({"must":[{"key":"n","match":{"value":1.0}}]})", payload));  // 1 == 1.0
  EXPECT_TRUE(M(R"({"must":[{"key":"f","match":{"value":1}}]})", payload));
  EXPECT_TRUE(M(R"({"must":[{"key":"n","match":{"value":1e0}}]})", payload));
  EXPECT_FALSE(M(R"({"must":[{"key":"n","match":{"value":"1"}}]})", payload));
  EXPECT_FALSE(M(R"({"must":[{"key":"n","match":{"value":true}}]})", payload));
  EXPECT_TRUE(M(R"({"must":[{"key":"b","match":{"value":true}}]})", payload));
  EXPECT_FALSE(M(R"({"must":[{"key":"b","match":{"value":"true"}}]})", payload));
  EXPECT_FALSE(M(R"({"must":[{"key":"b","match":{"value":1}}]})", payload));
  EXPECT_FALSE(M(R"({"must":[{"key":"z","match":{"value":false}}]})", payload));
  EXPECT_TRUE(M(R"({"must":[{"key":"z","match":{"value":-0.0}}]})", payload));
  EXPECT_FALSE(M(R"({"must":[{"key":"missing","match":{"value":1}}]})", payload));
}

TEST(FilterFullForm, LargeIntegersCompareAsDoubles) {
  EXPECT_TRUE(M(R"({"must":[{"key":"n","match":{"value":12345678901234567890}}]})",
                R"({"n":12345678901234567890})"));
  EXPECT_TRUE(M(R"({"must":[{"key":"n","match":{"value":-9007199254740993}}]})",
                R"({"n":-9007199254740993})"));
  EXPECT_TRUE(M(R"({"n":1.5e3})", R"({"n":1500})"));
}

// Integers past 64 bits are valid JSON: payloads and filters read them as
// doubles (as the original server did), so they match each other; a number
// past the double range is still an error.
TEST(FilterFullForm, IntegersPast64BitsAreDoubles) {
  EXPECT_TRUE(M(R"({"must":[{"key":"n","match":{"value":123456789012345678901234567890}}]})",
                R"({"n":123456789012345678901234567890})"));
  EXPECT_TRUE(M(R"({"n":-99999999999999999999999})", R"({"n":-1e23})"));
  EXPECT_TRUE(M(R"({"must":[{"key":"n","range":{"gt":18446744073709551616}}]})",
                R"({"n":36893488147419103232})"));
  EXPECT_FALSE(M(R"({"must":[{"key":"n","range":{"gt":18446744073709551616}}]})",
                 R"({"n":18446744073709551615})"));
  EXPECT_NE(Bad(R"({"n":1e400})").find("not valid JSON"), std::string::npos);
  // A payload index finds such a point through the filter's hint.
  auto f = F(R"({"n":123456789012345678901234567890})");
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(f->equality_hints().size(), 1u);
  std::string canon;
  ASSERT_TRUE(payload::Canonicalize(R"({"n":123456789012345678901234567890})", &canon).ok());
  std::vector<std::string> values;
  CollectKeyValues(canon, "n", &values);
  EXPECT_EQ(values, f->equality_hints()[0].values_json);
}

TEST(FilterFullForm, StringsCompareExactlyAfterUnescaping) {
  EXPECT_TRUE(M(R"({"s":"caf\u00e9"})", "{\"s\":\"caf\xc3\xa9\"}"));
  EXPECT_TRUE(M(R"({"s":"a\"b"})", R"({"s":"a\"b"})"));
  EXPECT_FALSE(M(R"({"s":"Red"})", R"({"s":"red"})"));
  EXPECT_FALSE(M(R"({"s":"re"})", R"({"s":"red"})"));
  EXPECT_TRUE(M(R"({"s":""})", R"({"s":""})"));
}

TEST(FilterFullForm, MatchAny) {
  const char* f = R"({"must":[{"key":"c","match":{"any":["red","green",3,true]}}]})";
  EXPECT_TRUE(M(f, R"({"c":"red"})"));
  EXPECT_TRUE(M(f, R"({"c":"green"})"));
  EXPECT_TRUE(M(f, R"({"c":3.0})"));
  EXPECT_TRUE(M(f, R"({"c":true})"));
  EXPECT_FALSE(M(f, R"({"c":false})"));
  EXPECT_FALSE(M(f, R"({"c":"blue"})"));
  EXPECT_FALSE(M(f, R"({"c":"3"})"));
  EXPECT_FALSE(M(f, R"({"c":null})"));
  EXPECT_FALSE(M(f, R"({})"));
  EXPECT_TRUE(M(f, R"({"c":["blue","green"]})"));
  EXPECT_FALSE(M(f, R"({"c":["blue","yellow"]})"));
  // An empty list matches nothing.
  EXPECT_FALSE(M(R"({"must":[{"key":"c","match":{"any":[]}}]})", R"({"c":"red"})"));
}

TEST(FilterFullForm, MatchAnyWithManyValues) {
  std::string f = R"({"must":[{"key":"c","match":{"any":[)";
  for (int i = 0; i < 100; ++i) {
    if (i) f += ",";
    f += "\"v" + std::to_string(i) + "\"," + std::to_string(i * 10);
  }
  f += "]}}]}";
  EXPECT_TRUE(M(f, R"({"c":"v0"})"));
  EXPECT_TRUE(M(f, R"({"c":"v57"})"));
  EXPECT_TRUE(M(f, R"({"c":"v99"})"));
  EXPECT_FALSE(M(f, R"({"c":"v100"})"));
  EXPECT_FALSE(M(f, R"({"c":"v"})"));
  EXPECT_TRUE(M(f, R"({"c":990})"));
  EXPECT_FALSE(M(f, R"({"c":991})"));
}

TEST(FilterFullForm, MatchExcept) {
  const char* f = R"({"must":[{"key":"c","match":{"except":["red",1]}}]})";
  EXPECT_TRUE(M(f, R"({"c":"blue"})"));
  EXPECT_FALSE(M(f, R"({"c":"red"})"));
  EXPECT_FALSE(M(f, R"({"c":1.0})"));
  EXPECT_TRUE(M(f, R"({"c":2})"));
  EXPECT_TRUE(M(f, R"({"c":"1"})"));
  EXPECT_TRUE(M(f, R"({"c":false})"));
  // Arrays: some element is not excluded.
  EXPECT_TRUE(M(f, R"({"c":["red","blue"]})"));
  EXPECT_FALSE(M(f, R"({"c":["red",1]})"));
  // A missing key, null, [] or an object do not match except.
  EXPECT_FALSE(M(f, R"({})"));
  EXPECT_FALSE(M(f, R"({"c":null})"));
  EXPECT_FALSE(M(f, R"({"c":[]})"));
  EXPECT_FALSE(M(f, R"({"c":{"x":1}})"));
  EXPECT_FALSE(M(f, ""));
  // An empty except list matches any scalar value.
  EXPECT_TRUE(M(R"({"must":[{"key":"c","match":{"except":[]}}]})", R"({"c":"x"})"));
}

TEST(FilterFullForm, Range) {
  auto in = [](const char* range, const char* payload) {
    return M(std::string(R"({"must":[{"key":"p","range":)") + range + "}]}", payload);
  };
  EXPECT_TRUE(in(R"({"gt":1})", R"({"p":2})"));
  EXPECT_FALSE(in(R"({"gt":1})", R"({"p":1})"));
  EXPECT_TRUE(in(R"({"gte":1})", R"({"p":1})"));
  EXPECT_TRUE(in(R"({"gte":1})", R"({"p":1.0})"));
  EXPECT_FALSE(in(R"({"gte":1})", R"({"p":0.999})"));
  EXPECT_TRUE(in(R"({"lt":1})", R"({"p":0.5})"));
  EXPECT_FALSE(in(R"({"lt":1})", R"({"p":1})"));
  EXPECT_TRUE(in(R"({"lte":1})", R"({"p":1})"));
  EXPECT_FALSE(in(R"({"lte":1})", R"({"p":1.5})"));
  EXPECT_TRUE(in(R"({"gte":10,"lt":20})", R"({"p":15})"));
  EXPECT_FALSE(in(R"({"gte":10,"lt":20})", R"({"p":20})"));
  EXPECT_FALSE(in(R"({"gte":10,"lt":20})", R"({"p":9})"));
  EXPECT_TRUE(in(R"({"gt":-1.5,"lte":-1})", R"({"p":-1})"));
  EXPECT_TRUE(in(R"({"gt":1e18})", R"({"p":12345678901234567890})"));
  // Only numbers match.
  EXPECT_FALSE(in(R"({"gte":0})", R"({"p":"5"})"));
  EXPECT_FALSE(in(R"({"gte":0})", R"({"p":true})"));
  EXPECT_FALSE(in(R"({"gte":0})", R"({"p":null})"));
  EXPECT_FALSE(in(R"({"gte":0})", R"({"p":{"v":1}})"));
  EXPECT_FALSE(in(R"({"gte":0})", R"({})"));
  EXPECT_FALSE(in(R"({"gte":0})", ""));
  // Arrays: one element must satisfy every bound.
  EXPECT_TRUE(in(R"({"gte":10,"lt":20})", R"({"p":[1,15,30]})"));
  EXPECT_FALSE(in(R"({"gte":10,"lt":20})", R"({"p":[1,30]})"));
  EXPECT_TRUE(in(R"({"gte":10})", R"({"p":["x",10]})"));
}

TEST(FilterFullForm, IsNull) {
  const char* f = R"({"must":[{"is_null":{"key":"a.b"}}]})";
  EXPECT_TRUE(M(f, R"({"a":{"b":null}})"));
  EXPECT_TRUE(M(f, R"({"a":{}})"));
  EXPECT_TRUE(M(f, R"({})"));
  EXPECT_TRUE(M(f, R"({"a":5})"));  // the path does not exist
  EXPECT_TRUE(M(f, ""));
  EXPECT_FALSE(M(f, R"({"a":{"b":0}})"));
  EXPECT_FALSE(M(f, R"({"a":{"b":""}})"));
  EXPECT_FALSE(M(f, R"({"a":{"b":[]}})"));
  EXPECT_FALSE(M(f, R"({"a":{"b":{}}})"));
  EXPECT_TRUE(M(f, R"({"a":{"b":[1,null]}})"));
  EXPECT_TRUE(M(f, R"({"a":[{"b":1},{"b":null}]})"));
  EXPECT_TRUE(M(f, R"({"a":[{"c":1}]})"));
  EXPECT_FALSE(M(f, R"({"a":[{"b":1},{"c":1}]})"));
}

TEST(FilterFullForm, IsEmpty) {
  const char* f = R"({"must":[{"is_empty":{"key":"t"}}]})";
  EXPECT_TRUE(M(f, R"({})"));
  EXPECT_TRUE(M(f, ""));
  EXPECT_TRUE(M(f, R"({"t":null})"));
  EXPECT_TRUE(M(f, R"({"t":[]})"));
  EXPECT_FALSE(M(f, R"({"t":[1]})"));
  EXPECT_FALSE(M(f, R"({"t":[null]})"));
  EXPECT_FALSE(M(f, R"({"t":[[]]})"));
  EXPECT_FALSE(M(f, R"({"t":""})"));
  EXPECT_FALSE(M(f, R"({"t":0})"));
  EXPECT_FALSE(M(f, R"({"t":{}})"));
  const char* nested = R"({"must":[{"is_empty":{"key":"a.b"}}]})";
  EXPECT_TRUE(M(nested, R"({"a":[{"b":[]},{"b":null},{}]})"));
  EXPECT_FALSE(M(nested, R"({"a":[{"b":[]},{"b":2}]})"));
}

TEST(FilterFullForm, HasId) {
  const char* f = R"({"must":[{"has_id":["11111111-1111-4111-8111-111111111111",
                                         "{33333333-3333-4333-8333-333333333333}"]}]})";
  EXPECT_TRUE(M(f, "", kId1));
  EXPECT_TRUE(M(f, R"({"a":1})", kId1));
  EXPECT_FALSE(M(f, "", kId2));
  Uuid id3;
  ASSERT_TRUE(Uuid::Parse("33333333333343338333333333333333", &id3).ok());
  EXPECT_TRUE(M(f, "", id3));
  EXPECT_FALSE(M(R"({"must":[{"has_id":[]}]})", "", kId1));
  EXPECT_TRUE(M(R"({"must_not":[{"has_id":["22222222-2222-4222-8222-222222222222"]}]})", "", kId1));
  EXPECT_FALSE(
      M(R"({"must_not":[{"has_id":["22222222-2222-4222-8222-222222222222"]}]})", "", kId2));
}

TEST(FilterFullForm, ShouldNeedsOneMustNotNeedsNone) {
  const char* should = R"({"should":[{"key":"a","match":{"value":1}},
                                     {"key":"b","match":{"value":2}}]})";
  EXPECT_TRUE(M(should, R"({"a":1})"));
  EXPECT_TRUE(M(should, R"({"b":2})"));
  EXPECT_TRUE(M(should, R"({"a":1,"b":2})"));
  EXPECT_FALSE(M(should, R"({"a":2,"b":1})"));
  const char* must_not = R"({"must_not":[{"key":"a","match":{"value":1}},
                                         {"key":"b","match":{"value":2}}]})";
  EXPECT_TRUE(M(must_not, R"({"a":2,"b":1})"));
  EXPECT_FALSE(M(must_not, R"({"a":1})"));
  EXPECT_FALSE(M(must_not, R"({"b":2})"));
  EXPECT_TRUE(M(must_not, R"({})"));
  EXPECT_TRUE(M(must_not, ""));
}

TEST(FilterFullForm, ClausesCombine) {
  const char* f = R"({"must":[{"key":"kind","match":{"value":"shoe"}}],
                      "should":[{"key":"color","match":{"value":"red"}},
                                {"key":"color","match":{"value":"blue"}}],
                      "must_not":[{"key":"size","range":{"gt":44}}]})";
  EXPECT_TRUE(M(f, R"({"kind":"shoe","color":"red","size":42})"));
  EXPECT_TRUE(M(f, R"({"kind":"shoe","color":"blue"})"));
  EXPECT_FALSE(M(f, R"({"kind":"shoe","color":"green","size":42})"));
  EXPECT_FALSE(M(f, R"({"kind":"hat","color":"red","size":42})"));
  EXPECT_FALSE(M(f, R"({"kind":"shoe","color":"red","size":45})"));
}

TEST(FilterFullForm, NestedClauses) {
  // kind == shoe AND (color == red OR (size >= 40 AND NOT brand == x))
  const char* f = R"({"must":[
      {"key":"kind","match":{"value":"shoe"}},
      {"should":[
        {"key":"color","match":{"value":"red"}},
        {"must":[{"key":"size","range":{"gte":40}}],
         "must_not":[{"key":"brand","match":{"value":"x"}}]}
      ]}
  ]})";
  EXPECT_TRUE(M(f, R"({"kind":"shoe","color":"red"})"));
  EXPECT_TRUE(M(f, R"({"kind":"shoe","size":41,"brand":"y"})"));
  EXPECT_FALSE(M(f, R"({"kind":"shoe","size":41,"brand":"x"})"));
  EXPECT_FALSE(M(f, R"({"kind":"shoe","size":39})"));
  EXPECT_FALSE(M(f, R"({"kind":"boot","color":"red"})"));
  // Double negation.
  const char* nn = R"({"must_not":[{"must_not":[{"key":"a","match":{"value":1}}]}]})";
  EXPECT_TRUE(M(nn, R"({"a":1})"));
  EXPECT_FALSE(M(nn, R"({"a":2})"));
}

TEST(FilterFullForm, DottedPathsThroughArraysOfObjects) {
  const char* f = R"({"must":[{"key":"items.tags.name","match":{"value":"x"}}]})";
  EXPECT_TRUE(M(f, R"({"items":[{"tags":[{"name":"y"}]},{"tags":[{"name":"x"}]}]})"));
  EXPECT_TRUE(M(f, R"({"items":{"tags":{"name":["z","x"]}}})"));
  EXPECT_FALSE(M(f, R"({"items":[{"tags":[{"name":"y"}]},{"tags":"x"}]})"));
  EXPECT_FALSE(M(f, R"({"items":"x"})"));
  // Nested arrays at the end of the path.
  EXPECT_TRUE(M(R"({"m":3})", R"({"m":[[1,2],[3]]})"));
  // A literal dotted key is not addressed by the path.
  EXPECT_FALSE(M(R"({"a.b":1})", R"({"a.b":1})"));
}

TEST(FilterFullForm, NoPayloadOnlyMatchesAbsenceConditions) {
  EXPECT_FALSE(M(R"({"a":1})", ""));
  EXPECT_TRUE(M(R"({"a":null})", ""));
  EXPECT_TRUE(M(R"({"must_not":[{"key":"a","match":{"value":1}}]})", ""));
  EXPECT_FALSE(M(R"({"must":[{"key":"a","match":{"any":[1]}}]})", ""));
  EXPECT_TRUE(M(R"({"must":[{"is_empty":{"key":"a"}}]})", ""));
  EXPECT_TRUE(M(R"({"must":[{"has_id":["11111111-1111-4111-8111-111111111111"]}]})", "", kId1));
}

TEST(FilterFullForm, MatchesPayloadsThatAreNotPaddedOrTerminated) {
  auto f = F(R"({"a":1})");
  std::string buf = R"({"a":1}{"a":2})";
  EXPECT_TRUE(f->Matches(kId1, std::string_view(buf.data(), 7)));
  EXPECT_FALSE(f->Matches(kId1, std::string_view(buf.data() + 7, 7)));
}

TEST(FilterFullForm, OneFilterManyPointsAndThreads) {
  auto f = F(
      R"({"must":[{"key":"i","range":{"gte":500}}],"must_not":[{"key":"odd","match":{"value":true}}]})");
  ASSERT_TRUE(f);
  std::vector<std::string> payloads;
  for (int i = 0; i < 1000; ++i) {
    payloads.push_back("{\"i\":" + std::to_string(i) + ",\"odd\":" + (i % 2 ? "true" : "false") +
                       "}");
  }
  std::vector<int> counts(4, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 5; ++round) {
        for (const std::string& p : payloads) counts[t] += f->Matches(kId1, p);
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int c : counts) EXPECT_EQ(c, 5 * 250);
}

// ------------------------------------------------------------- malformed filters

TEST(FilterErrors, NotJson) {
  EXPECT_EQ(Bad("").rfind("filter is not valid JSON: empty document", 0), 0u);
  EXPECT_EQ(Bad("{").rfind("filter is not valid JSON: ", 0), 0u);
  EXPECT_EQ(Bad("{\"a\":}").rfind("filter is not valid JSON: ", 0), 0u);
  EXPECT_EQ(Bad("{a:1}").rfind("filter is not valid JSON: ", 0), 0u);
  EXPECT_EQ(Bad("{} {}").rfind("filter is not valid JSON: ", 0), 0u);
  EXPECT_EQ(Bad("{\"a\":1} x").rfind("filter is not valid JSON: ", 0), 0u);
}

TEST(FilterErrors, NotAnObject) {
  EXPECT_EQ(Bad("[]"), "filter must be a JSON object, got array");
  EXPECT_EQ(Bad("\"x\""), "filter must be a JSON object, got string");
  EXPECT_EQ(Bad("1"), "filter must be a JSON object, got number");
  EXPECT_EQ(Bad("null"), "filter must be a JSON object, got null");
  EXPECT_EQ(Bad("true"), "filter must be a JSON object, got boolean");
}

TEST(FilterErrors, UnknownConditionsAndFields) {
  EXPECT_EQ(Bad(R"({"must":[{"key":"a","match":{"value":1}},{"x":1},{"foo":2}]})"),
            "filter: unknown condition 'x' in must[1]");
  EXPECT_EQ(Bad(R"({"must":[{"foo":{}}]})"), "filter: unknown condition 'foo' in must[0]");
  EXPECT_EQ(Bad(R"({"should":[{"must":[{"bar":1}]}]})"),
            "filter: unknown condition 'bar' in should[0].must[0]");
  EXPECT_EQ(Bad(R"({"must":[{"key":"a","match":{"value":1},"boost":2}]})"),
            "filter: unknown field 'boost' in must[0] (a key condition has key and match or "
            "range)");
  EXPECT_EQ(Bad(R"({"must":[],"color":"red"})"),
            "filter: unknown top-level field 'color' (a filter with must/should/must_not holds "
            "nothing else; put key conditions inside must)");
  EXPECT_EQ(Bad(R"({"must":[{"must":[],"filter":[]}]})"),
            "filter: unknown condition 'filter' in must[0]");
  EXPECT_EQ(Bad(R"({"must":[{"key":"a","match":{"text":"x"}}]})"),
            "filter: unknown field 'text' in must[0].match (expected value, any or except)");
  EXPECT_EQ(Bad(R"({"must":[{"key":"a","range":{"gt":1,"ge":2}}]})"),
            "filter: unknown range bound 'ge' in must[0].range (expected gt, gte, lt, lte)");
  EXPECT_EQ(Bad(R"({"must":[{"is_null":{"key":"a","x":1}}]})"),
            "filter: unknown field 'x' in must[0].is_null (expected key)");
}

TEST(FilterErrors, WrongTypes) {
  EXPECT_EQ(Bad(R"({"must":{"key":"a"}})"),
            "filter: must must be an array of conditions, got object");
  EXPECT_EQ(Bad(R"({"should":"x"})"), "filter: should must be an array of conditions, got string");
  EXPECT_EQ(Bad(R"({"must_not":null})"),
            "filter: must_not must be an array of conditions, got null");
  EXPECT_EQ(Bad(R"({"must":[1]})"), "filter: must[0] must be a condition object, got number");
  EXPECT_EQ(Bad(R"({"must":[[]]})"), "filter: must[0] must be a condition object, got array");
  EXPECT_EQ(Bad(R"({"must":[{"key":1,"match":{"value":1}}]})"),
            "filter: must[0].key must be a string, got number");
  EXPECT_EQ(Bad(R"({"must":[{"key":"a","match":"x"}]})"),
            "filter: must[0].match must be an object like {\"value\": ...}, got string");
  EXPECT_EQ(Bad(R"({"must":[{"key":"a","match":{"value":null}}]})"),
            "filter: must[0].match.value must be a string, number or boolean, got null (use "
            "is_null to match null)");
  EXPECT_EQ(Bad(R"({"must":[{"key":"a","match":{"value":[1]}}]})"),
            "filter: must[0].match.value must be a string, number or boolean, got array");
  EXPECT_EQ(Bad(R"({"must":[{"key":"a","match":{"value":{}}}]})"),
            "filter: must[0].match.value must be a string, number or boolean, got object");
  EXPECT_EQ(Bad(R"({"must":[{"key":"a","match":{"any":"x"}}]})"),
            "filter: must[0].match.any must be an array of strings, numbers or booleans, got "
            "string");
  EXPECT_EQ(Bad(R"({"must":[{"key":"a","match":{"any":[1,{"x":1}]}}]})"),
            "filter: must[0].match.any[1] must be a string, number or boolean, got object");
  EXPECT_EQ(Bad(R"({"must":[{"key":"a","match":{"except":[null]}}]})"),
            "filter: must[0].match.except[0] must be a string, number or boolean, got null (use "
            "is_null to match null)");
  EXPECT_EQ(Bad(R"({"must":[{"key":"a","range":[1,2]}]})"),
            "filter: must[0].range must be an object like {\"gte\": 1}, got array");
  EXPECT_EQ(Bad(R"({"must":[{"is_null":"a"}]})"),
            "filter: must[0].is_null must be an object like {\"key\": \"field\"}, got string");
  EXPECT_EQ(Bad(R"({"must":[{"is_empty":{"key":false}}]})"),
            "filter: must[0].is_empty.key must be a string, got boolean");
  EXPECT_EQ(Bad(R"({"must":[{"has_id":"11111111-1111-4111-8111-111111111111"}]})"),
            "filter: must[0].has_id must be an array of point ids, got string");
  EXPECT_EQ(Bad(R"({"must":[{"has_id":[1]}]})"),
            "filter: must[0].has_id[0] must be a point id string, got number");
}

TEST(FilterErrors, RangeNeedsNumbers) {
  EXPECT_EQ(Bad(R"({"must":[{"key":"a","range":{"gt":"1"}}]})"),
            "filter: must[0].range.gt must be a number, got string");
  EXPECT_EQ(Bad(R"({"must":[{"key":"a","range":{"gte":1,"lt":null}}]})"),
            "filter: must[0].range.lt must be a number, got null");
  EXPECT_EQ(Bad(R"({"must":[{"key":"a","range":{"lte":true}}]})"),
            "filter: must[0].range.lte must be a number, got boolean");
  EXPECT_EQ(Bad(R"({"must":[{"key":"a","range":{}}]})"),
            "filter: must[0].range needs at least one of gt, gte, lt, lte");
}

TEST(FilterErrors, StructuralMistakes) {
  EXPECT_EQ(Bad(R"({"must":[{}]})"),
            "filter: empty condition in must[0] (expected key, is_null, is_empty, has_id, must, "
            "should or must_not)");
  EXPECT_EQ(Bad(R"({"must":[{"key":"a"}]})"),
            "filter: must[0] has 'key' but neither 'match' nor 'range'");
  EXPECT_EQ(Bad(R"({"must":[{"match":{"value":1}}]})"), "filter: must[0] has 'match' but no 'key'");
  EXPECT_EQ(Bad(R"({"must":[{"range":{"gt":1}}]})"), "filter: must[0] has 'range' but no 'key'");
  EXPECT_EQ(Bad(R"({"must":[{"key":"a","match":{"value":1},"range":{"gt":1}}]})"),
            "filter: must[0] has both 'match' and 'range'; use one");
  EXPECT_EQ(Bad(R"({"must":[{"key":"a","match":{}}]})"),
            "filter: must[0].match is empty; expected one of value, any, except");
  EXPECT_EQ(Bad(R"({"must":[{"key":"a","match":{"value":1,"any":[2]}}]})"),
            "filter: must[0].match must hold exactly one of value, any, except");
  EXPECT_EQ(Bad(R"({"must":[{"is_null":{"key":"a"},"is_empty":{"key":"a"}}]})"),
            "filter: must[0] mixes 'is_null' and 'is_empty'; put each condition in its own "
            "object");
  EXPECT_EQ(Bad(R"({"must":[{"key":"a","match":{"value":1},"must":[]}]})"),
            "filter: must[0] mixes 'key' and 'must'; put each condition in its own object");
  EXPECT_EQ(Bad(R"({"must":[{"is_null":{}}]})"), "filter: must[0].is_null needs a \"key\"");
  EXPECT_EQ(Bad(R"({"must":[],"must":[]})"), "filter: duplicate field 'must' in the filter");
  EXPECT_EQ(Bad(R"({"a":1,"a":2})"), "filter: duplicate field 'a' in the filter");
  EXPECT_EQ(Bad(R"({"must":[{"key":"a","key":"b","match":{"value":1}}]})"),
            "filter: duplicate field 'key' in must[0]");
}

TEST(FilterErrors, EmptyOrMalformedKeys) {
  EXPECT_EQ(Bad(R"({"must":[{"key":"","match":{"value":1}}]})"),
            "filter: must[0].key is empty; expected a payload key such as \"color\" or \"a.b\"");
  EXPECT_EQ(Bad(R"({"must":[{"is_null":{"key":""}}]})"),
            "filter: must[0].is_null.key is empty; expected a payload key such as \"color\" or "
            "\"a.b\"");
  EXPECT_EQ(Bad(R"({"must":[{"key":"a..b","range":{"gt":1}}]})"),
            "filter: key 'a..b' in must[0].key has an empty path segment");
  EXPECT_EQ(Bad(R"({"a.":1})"), "filter: key 'a.' in key 'a.' has an empty path segment");
}

TEST(FilterErrors, InvalidIdsInHasId) {
  EXPECT_EQ(Bad(R"({"should":[{"has_id":["11111111-1111-4111-8111-111111111111","../x"]}]})"),
            "filter: should[0].has_id[1]: invalid point id '../x': expected a UUID like "
            "8-4-4-4-12 hex digits");
}

TEST(FilterErrors, DeepPathsInMessages) {
  EXPECT_EQ(
      Bad(R"({"must":[{"should":[{"key":"a","match":{"value":1}},{"must_not":[{"key":"b","range":{"gt":"x"}}]}]}]})"),
      "filter: must[0].should[1].must_not[0].range.gt must be a number, got string");
}

TEST(FilterErrors, ReservedNamesCannotBeShortFormKeys) {
  EXPECT_EQ(Bad(R"({"must":"red"})"), "filter: must must be an array of conditions, got string");
  // A bare condition at the top is read as the short form and rejected.
  EXPECT_NE(Bad(R"({"key":"a","match":{"value":1}})").find("value of key 'match'"),
            std::string::npos);
}

// ------------------------------------------------------------------ hints

std::vector<EqualityHint> Hints(std::string_view json) {
  auto f = F(json);
  return f ? f->equality_hints() : std::vector<EqualityHint>{};
}

TEST(FilterHints, FromShortForm) {
  auto h = Hints(R"({"color":"red","size":3,"ok":true,"gone":null,"a.b":2.50})");
  ASSERT_EQ(h.size(), 4u);
  EXPECT_EQ(h[0].key, "color");
  EXPECT_EQ(h[0].values_json, std::vector<std::string>{"\"red\""});
  EXPECT_EQ(h[1].key, "size");
  EXPECT_EQ(h[1].values_json, std::vector<std::string>{"3"});
  EXPECT_EQ(h[2].key, "ok");
  EXPECT_EQ(h[2].values_json, std::vector<std::string>{"true"});
  EXPECT_EQ(h[3].key, "a.b");
  EXPECT_EQ(h[3].values_json, std::vector<std::string>{"2.5"});
}

TEST(FilterHints, FromTopLevelMustOnly) {
  auto h = Hints(R"({"must":[{"key":"c","match":{"value":"red"}},
                             {"key":"n","match":{"any":[1,1.0,"1",false,1]}},
                             {"key":"x","match":{"except":["a"]}},
                             {"key":"r","range":{"gt":1}},
                             {"is_null":{"key":"z"}},
                             {"must":[{"key":"deep","match":{"value":1}}]}],
                     "should":[{"key":"s","match":{"value":1}}],
                     "must_not":[{"key":"m","match":{"value":1}}]})");
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h[0].key, "c");
  EXPECT_EQ(h[0].values_json, std::vector<std::string>{"\"red\""});
  EXPECT_EQ(h[1].key, "n");
  EXPECT_EQ(h[1].values_json, (std::vector<std::string>{"1", "\"1\"", "false"}));
  EXPECT_TRUE(Hints("{}").empty());
  EXPECT_TRUE(Hints(R"({"should":[{"key":"s","match":{"value":1}}]})").empty());
  auto empty_any = Hints(R"({"must":[{"key":"c","match":{"any":[]}}]})");
  ASSERT_EQ(empty_any.size(), 1u);
  EXPECT_TRUE(empty_any[0].values_json.empty());
}

TEST(FilterHints, NumbersAreCanonical) {
  EXPECT_EQ(Hints(R"({"n":3})")[0].values_json[0], "3");
  EXPECT_EQ(Hints(R"({"n":3.0})")[0].values_json[0], "3");
  EXPECT_EQ(Hints(R"({"n":3e0})")[0].values_json[0], "3");
  EXPECT_EQ(Hints(R"({"n":-0})")[0].values_json[0], "0");
  EXPECT_EQ(Hints(R"({"n":-0.0})")[0].values_json[0], "0");
  EXPECT_EQ(Hints(R"({"n":0.1})")[0].values_json[0], "0.1");
  EXPECT_EQ(Hints(R"({"n":-2.5})")[0].values_json[0], "-2.5");
  EXPECT_EQ(Hints(R"({"n":1e300})")[0].values_json[0], "1e+300");
  EXPECT_EQ(CanonicalNumberJson(3.0), "3");
  EXPECT_EQ(CanonicalNumberJson(-0.0), "0");
  EXPECT_EQ(CanonicalNumberJson(123456789.0), "123456789");
}

TEST(FilterHints, StringsAreCanonical) {
  EXPECT_EQ(Hints(R"({"s":"a\"b\\c\n\u0001\u00e9\/"})")[0].values_json[0],
            "\"a\\\"b\\\\c\\n\\u0001\xc3\xa9/\"");
  EXPECT_EQ(CanonicalStringJson("red"), "\"red\"");
  EXPECT_EQ(CanonicalStringJson(""), "\"\"");
  EXPECT_EQ(CanonicalStringJson(std::string_view("\t\x1f", 2)), "\"\\t\\u001f\"");
}

TEST(FilterHints, CollectKeyValuesAgreesWithHints) {
  std::vector<std::string> v;
  CollectKeyValues(
      R"({"c":"red","n":3.0,"t":[1,"1",true,null,{"x":1},[2]],"a":[{"b":1},{"b":1.0}]})", "t", &v);
  EXPECT_EQ(v, (std::vector<std::string>{"1", "\"1\"", "true", "2"}));
  CollectKeyValues(R"({"c":"red"})", "c", &v);
  EXPECT_EQ(v, std::vector<std::string>{"\"red\""});
  CollectKeyValues(R"({"n":3.0})", "n", &v);
  EXPECT_EQ(v, Hints(R"({"n":3})")[0].values_json);
  CollectKeyValues(R"({"a":[{"b":1},{"b":1.0},{"b":2}]})", "a.b", &v);
  EXPECT_EQ(v, (std::vector<std::string>{"1", "2"}));
  CollectKeyValues(R"({"a":1})", "missing", &v);
  EXPECT_TRUE(v.empty());
  CollectKeyValues("", "a", &v);
  EXPECT_TRUE(v.empty());
  CollectKeyValues(R"({"a":1})", "", &v);
  EXPECT_TRUE(v.empty());
  CollectKeyValues(R"({"a":null})", "a", &v);
  EXPECT_TRUE(v.empty());
}

}  // namespace
}  // namespace aidb::filter
