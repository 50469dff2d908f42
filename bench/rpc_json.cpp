// Which JSON library the JSON-RPC layer (npipe::rpc) uses: each candidate Debian packages, on the
// layer's own work. A round is: parse a small request, read its method/id/params, build and
// serialize the response; then parse + serialize a request whose params hold a 100 KiB string
// array. Prints ns per round (median of 7 runs). Build by hand (header-only libraries, Boost.JSON
// through its src.hpp):
//   g++ -O2 -std=c++20 bench/rpc_json.cpp -o /tmp/rpc_json && /tmp/rpc_json
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <simdjson.h>
#include <algorithm>
#include <boost/json.hpp>
#include <boost/json/src.hpp>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace {

const std::string small_request =
    R"({"jsonrpc":"2.0","id":42,"method":"add","params":{"a":17,"b":25,"label":"sum of two"}})";

std::string big_request() {
    std::string s = R"({"jsonrpc":"2.0","id":7,"method":"store","params":[)";
    for (int i = 0; s.size() < 100 * 1024; ++i) {
        if (i)
            s += ',';
        s += "\"item-" + std::to_string(i) + "-abcdefghijklmnopqrstuvwxyz\"";
    }
    return s + "]}";
}

volatile std::size_t sink;

template <class F>
double ns_per_round(F round, int rounds) {
    std::vector<double> runs;
    for (int r = 0; r < 7; ++r) {
        auto t0 = std::chrono::steady_clock::now();
        for (int i = 0; i < rounds; ++i)
            round();
        auto t1 = std::chrono::steady_clock::now();
        runs.push_back(std::chrono::duration<double, std::nano>(t1 - t0).count() / rounds);
    }
    std::sort(runs.begin(), runs.end());
    return runs[3];
}

std::size_t nlohmann_small(const std::string& in) {
    auto req = nlohmann::json::parse(in);
    auto sum = req["params"]["a"].get<int>() + req["params"]["b"].get<int>();
    nlohmann::json resp = {{"jsonrpc", "2.0"}, {"id", req["id"]}, {"result", sum}};
    return resp.dump().size() + req["method"].get_ref<const std::string&>().size();
}
std::size_t nlohmann_big(const std::string& in) {
    return nlohmann::json::parse(in).dump().size();
}

std::size_t boost_small(const std::string& in) {
    auto req = boost::json::parse(in).as_object();
    auto& p = req.at("params").as_object();
    auto sum = boost::json::value_to<int>(p.at("a")) + boost::json::value_to<int>(p.at("b"));
    boost::json::object resp{{"jsonrpc", "2.0"}, {"id", req.at("id")}, {"result", sum}};
    return boost::json::serialize(resp).size() + req.at("method").as_string().size();
}
std::size_t boost_big(const std::string& in) {
    return boost::json::serialize(boost::json::parse(in)).size();
}

std::string rapid_dump(const rapidjson::Value& v) {
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    v.Accept(w);
    return std::string(buf.GetString(), buf.GetSize());
}
std::size_t rapid_small(const std::string& in) {
    rapidjson::Document req;
    req.Parse(in.c_str(), in.size());
    auto sum = req["params"]["a"].GetInt() + req["params"]["b"].GetInt();
    rapidjson::Document resp(rapidjson::kObjectType);
    auto& a = resp.GetAllocator();
    resp.AddMember("jsonrpc", "2.0", a);
    resp.AddMember("id", rapidjson::Value(req["id"], a), a);
    resp.AddMember("result", sum, a);
    return rapid_dump(resp).size() + req["method"].GetStringLength();
}
std::size_t rapid_big(const std::string& in) {
    rapidjson::Document d;
    d.Parse(in.c_str(), in.size());
    return rapid_dump(d).size();
}

// simdjson only parses; the response is written with its string builder's minifier of the
// parsed element (the closest it has to a serializer).
simdjson::dom::parser simd_parser;
std::size_t simd_small(const std::string& in) {
    simdjson::dom::element req = simd_parser.parse(in);
    int64_t sum = int64_t(req["params"]["a"]) + int64_t(req["params"]["b"]);
    std::string resp = R"({"jsonrpc":"2.0","id":)" + simdjson::minify(req["id"]) + R"(,"result":)" +
                       std::to_string(sum) + "}";
    return resp.size() + std::string_view(req["method"]).size();
}
std::size_t simd_big(const std::string& in) {
    return simdjson::minify(simd_parser.parse(in)).size();
}

}  // namespace

int main() {
    const auto big = big_request();
    std::printf("%-14s %14s %14s\n", "library", "small ns/call", "100KiB us/doc");
    auto row = [&](const char* name, auto small, auto large) {
        double s = ns_per_round([&] { sink = small(small_request); }, 200000);
        double l = ns_per_round([&] { sink = large(big); }, 300) / 1000;
        std::printf("%-14s %14.0f %14.1f\n", name, s, l);
    };
    row("nlohmann", nlohmann_small, nlohmann_big);
    row("boost.json", boost_small, boost_big);
    row("rapidjson", rapid_small, rapid_big);
    row("simdjson", simd_small, simd_big);
}
